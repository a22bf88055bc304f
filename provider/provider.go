// Package provider defines what the dispatcher needs from a WhatsApp (or SMS)
// provider and the provider-neutral shapes of what providers report back.
// Each provider lives in its own subfolder; the simulator in provider/sim.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wagate/wagate/message"
)

// Provider sends one message. Implementations are safe for concurrent use.
type Provider interface {
	// Send delivers m to the provider and returns the provider's message id.
	// A failure is an *Error whenever the provider answered; anything else
	// (a dial error, a timeout) is treated as ClassRetry.
	Send(ctx context.Context, m *message.Message) (Result, error)
	// Name is recorded with every event ("meta", "gallabox", "sms"…).
	Name() string
}

// Carrier is a provider that cannot send every message (a secondary
// WhatsApp provider without interactive messages, say): a fallback chain
// passes what a step cannot carry on to its next step instead of failing it.
type Carrier interface {
	// Carries reports whether Send can send m at all (its type, and what
	// its content needs).
	Carries(m *message.Message) bool
}

// Result is a provider's acceptance of a message.
type Result struct {
	// ProviderMessageID is the provider's id ("wamid.…"), used to match
	// status webhooks to the message.
	ProviderMessageID string
}

// Class tells the dispatcher what to do about a failed send.
type Class uint8

// The retry classes of PROVIDERS.md.
const (
	// ClassRetry: transient; retry with backoff, counts against the budget.
	ClassRetry Class = iota
	// ClassThrottle: the sender is over its rate; slow it down and retry
	// without counting against the message's budget.
	ClassThrottle
	// ClassPairThrottle: too many messages to this recipient; defer the pair.
	ClassPairThrottle
	// ClassPermanent: the message will never be accepted as it is.
	ClassPermanent
	// ClassHoldSender: spam limit; hold the sender and alert, no hot retry.
	ClassHoldSender
	// ClassNoRetry24h: per-user marketing cap; do not retry within 24 hours.
	ClassNoRetry24h
	// ClassStopSender: account locked or blocked; stop the sender, alert.
	ClassStopSender
)

var classNames = [...]string{"retry", "throttle", "pair_throttle", "permanent", "hold_sender", "no_retry_24h", "stop_sender"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Error is a provider's refusal, in the provider's own terms plus the class
// wagate derived from them.
type Error struct {
	Class      Class
	HTTPStatus int
	// Code and Subcode are the provider's error numbers (Meta: error.code,
	// error.error_subcode).
	Code    int
	Subcode int
	// Title is the provider's short message, Details its long explanation.
	Title   string
	Details string
	// RetryAfter is the provider's Retry-After, zero when it gave none.
	RetryAfter time.Duration
	// TraceID is the provider's request trace (Meta: fbtrace_id).
	TraceID string
}

func (e *Error) Error() string {
	if e.Details != "" {
		return fmt.Sprintf("provider error %d (%s, http %d): %s: %s", e.Code, e.Class, e.HTTPStatus, e.Title, e.Details)
	}
	return fmt.Sprintf("provider error %d (%s, http %d): %s", e.Code, e.Class, e.HTTPStatus, e.Title)
}

// ClassOf returns the class of a Send error: the *Error's class, or
// ClassRetry for anything that is not a provider answer (network errors,
// timeouts), since those say nothing about the message itself.
func ClassOf(err error) Class {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ClassRetry
}

// StatusUpdate is one delivery status reported by a provider's webhook.
type StatusUpdate struct {
	// Provider names the account whose webhook reported it ("gallabox",
	// "chatapp"…), recorded with the status; empty means Meta, whose
	// parser predates the field (and whose parked statuses lack it).
	Provider          string
	ProviderMessageID string
	Status            message.Status
	// AtMS is the provider's timestamp in Unix milliseconds.
	AtMS        int64
	RecipientID string
	// RecipientUserID is the guest's business-scoped user id, when given.
	RecipientUserID string
	// PhoneNumberID is the provider's id of the business number.
	PhoneNumberID string
	ErrorCode     int
	ErrorTitle    string
	// PricingCategory, PricingModel and PricingType are Meta's pricing
	// object: the category charged (marketing, utility, authentication,
	// service…), the model ("PMP", per-message pricing since July 2025; "CBP"
	// before) and whether the message was charged ("regular") or free
	// ("free_customer_service", "free_entry_point").
	PricingCategory string
	PricingModel    string
	PricingType     string
	Billable        bool
	ConversationID  string
}

// MessagingLimit is a business portfolio's messaging limit as the
// provider announced it: the unique guests its numbers may start
// conversations with in a moving 24 hours (Meta's webhook fields
// business_capability_update and phone_number_quality_update).
type MessagingLimit struct {
	// AccountID is the business account (Meta's WABA) the webhook came for.
	AccountID string
	// Limit is the number of guests; Unlimited for none.
	Limit int
	// AtMS is when the provider announced it (Unix ms).
	AtMS int64
}

// Unlimited is a MessagingLimit without a bound.
const Unlimited = -1

// Inbound is one message a guest sent to a business number.
type Inbound struct {
	ProviderMessageID string
	PhoneNumberID     string
	// From is the guest's number in E.164, "" when the provider withheld
	// it (a WhatsApp user with a username).
	From string
	// UserID is the guest's business-scoped user id (Meta's BSUID, since
	// 2026), when the provider gives it: the guest's only identity when
	// From is "".
	UserID string
	// Name is the guest's profile name, when the provider gives it.
	Name string
	Type string
	// Text is the text body, the button or list reply title, or a caption.
	Text string
	// ReplyID is the id of an interactive reply (button or list row).
	ReplyID string
	// MediaID and MimeType describe an attached media object, as the
	// provider states them; SHA256 is its stated digest (Meta: base64 or
	// hex), Filename a document's file name.
	MediaID  string
	MimeType string
	SHA256   string
	Filename string
	// Contacts are the contact cards a guest shared (type contacts).
	Contacts []Contact
	// ContextID is the provider id of the message this one replies to.
	ContextID string
	AtMS      int64
}

// Contact is a contact card a guest shared, in Meta's (vCard) field names,
// so that it marshals to the object Meta sends and takes.
type Contact struct {
	Name      ContactName      `json:"name"`
	Phones    []ContactPhone   `json:"phones,omitempty"`
	Emails    []ContactEmail   `json:"emails,omitempty"`
	URLs      []ContactURL     `json:"urls,omitempty"`
	Addresses []ContactAddress `json:"addresses,omitempty"`
	Org       *ContactOrg      `json:"org,omitempty"`
	Birthday  string           `json:"birthday,omitempty"`
}

// ContactName is a contact's name.
type ContactName struct {
	FormattedName string `json:"formatted_name,omitempty"`
	FirstName     string `json:"first_name,omitempty"`
	LastName      string `json:"last_name,omitempty"`
	MiddleName    string `json:"middle_name,omitempty"`
	Suffix        string `json:"suffix,omitempty"`
	Prefix        string `json:"prefix,omitempty"`
}

// ContactPhone is one of a contact's numbers; WaID is its WhatsApp id.
type ContactPhone struct {
	Phone string `json:"phone,omitempty"`
	Type  string `json:"type,omitempty"`
	WaID  string `json:"wa_id,omitempty"`
}

// ContactEmail is one of a contact's addresses.
type ContactEmail struct {
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// ContactURL is one of a contact's web sites.
type ContactURL struct {
	URL  string `json:"url,omitempty"`
	Type string `json:"type,omitempty"`
}

// ContactAddress is one of a contact's postal addresses.
type ContactAddress struct {
	Street      string `json:"street,omitempty"`
	City        string `json:"city,omitempty"`
	State       string `json:"state,omitempty"`
	Zip         string `json:"zip,omitempty"`
	Country     string `json:"country,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	Type        string `json:"type,omitempty"`
}

// ContactOrg is a contact's employer.
type ContactOrg struct {
	Company    string `json:"company,omitempty"`
	Department string `json:"department,omitempty"`
	Title      string `json:"title,omitempty"`
}

// ErrMediaTooLarge says a media file is larger than the caller would take:
// the provider stated so, or the bytes ran past it.
var ErrMediaTooLarge = errors.New("media is larger than the limit")

// MediaDownload is a file a provider holds (a guest's photo), opened for
// reading. The caller reads Body and closes it.
type MediaDownload struct {
	Body io.ReadCloser
	// MIME, Size (-1 when not stated) and SHA256 are what the provider
	// states of the file: to be checked, not trusted.
	MIME   string
	Size   int64
	SHA256 string
}
