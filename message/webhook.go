package message

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// WebhookConfig is a tenant's own webhook: where wagate posts the events
// the tenant subscribed to, signed with Secret.
type WebhookConfig struct {
	URL    string   `json:"webhook_url"`
	Events []string `json:"events"`
	// VerifyToken is sent back in every delivery's X-Wagate-Verify-Token
	// header, so that the receiver can tell wagate's calls from others.
	VerifyToken string `json:"verify_token,omitempty"`
	// Secret keys the X-Wagate-Signature-256 HMAC of every delivery.
	Secret string `json:"secret"`
	// MaxRetries is how many times a failed delivery is tried again;
	// RetryDelayMS the first wait, doubled each time.
	MaxRetries   int   `json:"max_retries"`
	RetryDelayMS int64 `json:"retry_delay_ms"`
	UpdatedMS    int64 `json:"updated_ms"`
}

// Wants reports whether the webhook subscribed to event.
func (c *WebhookConfig) Wants(event string) bool {
	for _, e := range c.Events {
		if e == event {
			return true
		}
	}
	return false
}

// Webhook event names.
const (
	EventMessageQueued       = "message_queued"
	EventMessageSent         = "message_sent"
	EventMessageDelivered    = "message_delivered"
	EventMessageRead         = "message_read"
	EventMessageFailed       = "message_failed"
	EventMessageExpired      = "message_expired"
	EventMessageCanceled     = "message_canceled"
	EventMessageFallback     = "message_fallback"
	EventInboundMessage      = "inbound_message"
	EventMediaReceived       = "media_received"
	EventGuestOptedOut       = "guest_opted_out"
	EventGuestOptedIn        = "guest_opted_in"
	EventConversationUpdated = "conversation_updated"
)

// WebhookEvents returns every event a webhook may subscribe to.
func WebhookEvents() []string {
	return []string{EventMessageQueued, EventMessageSent, EventMessageDelivered, EventMessageRead, EventMessageFailed,
		EventMessageExpired, EventMessageCanceled, EventMessageFallback, EventInboundMessage, EventMediaReceived,
		EventGuestOptedOut, EventGuestOptedIn, EventConversationUpdated}
}

// EventForStatus is the webhook event of a message reaching st ("" for
// none: "sending" is not an event).
func EventForStatus(st Status) string {
	switch st {
	case StatusQueued, StatusScheduled:
		return EventMessageQueued
	case StatusSent:
		return EventMessageSent
	case StatusDelivered:
		return EventMessageDelivered
	case StatusRead:
		return EventMessageRead
	case StatusFailed:
		return EventMessageFailed
	case StatusExpired:
		return EventMessageExpired
	case StatusCanceled:
		return EventMessageCanceled
	case StatusFallback:
		return EventMessageFallback
	}
	return ""
}

// SignWebhook is the X-Wagate-Signature-256 header of a delivery: "sha256="
// and the hex HMAC-SHA256 of the exact body, keyed by the webhook's secret
// (the scheme of Meta's X-Hub-Signature-256).
func SignWebhook(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Headers of a delivery to a tenant's webhook.
const (
	HeaderWebhookEvent       = "X-Wagate-Event"
	HeaderWebhookDelivery    = "X-Wagate-Delivery"
	HeaderWebhookSignature   = "X-Wagate-Signature-256"
	HeaderWebhookVerifyToken = "X-Wagate-Verify-Token"
)

// EventWebhookTest is the event POST /webhooks/test delivers.
const EventWebhookTest = "webhook_test"
