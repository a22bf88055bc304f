package message

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// WebhookConfig is a tenant's own webhook: where wagate posts the events
// the tenant subscribed to, signed with Secret.
type WebhookConfig struct {
	URL    string   `json:"webhook_url"`
	Events []string `json:"events"`
	// VerifyToken is sent back in every delivery's X-Wagate-Verify-Token
	// header, so that the receiver can tell wagate's calls from others.
	VerifyToken string `json:"verify_token,omitempty"`
	// Secret keys the X-Wagate-Signature-256 HMAC of every delivery
	// (SignWebhook).
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

// SignWebhook is the X-Wagate-Signature-256 header of a delivery made at
// t: "t=<unix seconds>,v1=<hex HMAC-SHA256>", the HMAC keyed by the
// webhook's secret over "<unix seconds>." and the exact body (Stripe's
// scheme). The time is signed with the body, so a receiver that refuses
// signatures older than a few minutes (VerifyWebhook) cannot be fed a
// captured delivery again later.
func SignWebhook(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + webhookMAC(secret, ts, body)
}

func webhookMAC(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// WebhookTolerance is how old a delivery's signature may be when its
// receiver checks it (VerifyWebhook's tolerance, as Stripe's default).
const WebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook.
var (
	// ErrWebhookSignature: the header is missing, malformed, or no v1
	// signature in it matches the body.
	ErrWebhookSignature = errors.New("webhook signature does not match")
	// ErrWebhookTooOld: the signature matches but was made more than the
	// tolerance before now (or as far in the future): a replay.
	ErrWebhookTooOld = errors.New("webhook signature is outside the tolerance")
)

// VerifyWebhook checks a delivery's X-Wagate-Signature-256 header against
// its body, as a receiver should: a v1 signature (several may be given
// while a secret is rotated) must match, and its time be within tolerance
// of now.
func VerifyWebhook(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
		case k == "t":
			ts = v
		case k == "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrWebhookSignature
	}
	want := webhookMAC(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal([]byte(sig), []byte(want)) {
			matched = true
		}
	}
	if !matched {
		return ErrWebhookSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrWebhookTooOld
	}
	return nil
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
