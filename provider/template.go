package provider

import (
	"errors"

	"github.com/wagate/wagate/message"
)

// TemplateStatus is one template status change a provider's webhook
// reports (Meta: a message_template_status_update change).
type TemplateStatus struct {
	// AccountID is the provider account holding the template (Meta: the
	// WhatsApp Business Account id of the webhook entry).
	AccountID string
	// TemplateID is the provider's id of the template.
	TemplateID string
	Name       string
	Language   string
	// Event is the provider's word for what happened (Meta: APPROVED,
	// REJECTED, PENDING, PAUSED, DISABLED, FLAGGED, REINSTATED…); see
	// message.TemplateStatusFromMeta.
	Event string
	// Reason explains a rejection, pause or disabling; empty otherwise
	// (Meta's "NONE" is left out).
	Reason string
	// AtMS is when the provider reported it, in Unix milliseconds (0 when
	// it did not say).
	AtMS int64
}

// TemplateResult is a provider's answer to a template submission.
type TemplateResult struct {
	// ID is the provider's id of the template.
	ID string
	// Status is where the review stands (usually PENDING), and Category
	// the category the provider gave it, which may differ from the one
	// asked for.
	Status   message.TemplateStatus
	Category message.TemplateCategory
}

// ErrTemplateExists says the provider already holds a template of that name
// and language: a submission repeated after a lost answer, or one made
// elsewhere. Adapters wrap it around their *Error.
var ErrTemplateExists = errors.New("provider: template already exists")
