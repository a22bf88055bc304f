package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/wagate/wagate/message"
)

// SignatureHeader carries a Meta webhook's signature.
const SignatureHeader = "X-Hub-Signature-256"

// AppendSignature appends the X-Hub-Signature-256 value of body: "sha256="
// and the hex HMAC-SHA256 of the raw body keyed by the app secret.
func AppendSignature(dst, body, appSecret []byte) []byte {
	mac := hmac.New(sha256.New, appSecret)
	mac.Write(body)
	var sum [sha256.Size]byte
	dst = append(dst, "sha256="...)
	return hex.AppendEncode(dst, mac.Sum(sum[:0]))
}

// Business is the business number a webhook reports for.
type Business struct {
	// WABAID is the WhatsApp Business Account id, the entry's id.
	WABAID string
	// DisplayPhoneNumber is the number in digits ("15550001000").
	DisplayPhoneNumber string
	// PhoneNumberID is Meta's id of the number ("100000000000001").
	PhoneNumberID string
}

// StatusItem is one status of a message in a webhook.
type StatusItem struct {
	// ProviderID is Meta's message id (wamid…) the send was answered with.
	ProviderID string
	// Status is "sent", "delivered", "read" or "failed".
	Status string
	// Timestamp is when it happened, Unix seconds (Meta's resolution).
	Timestamp int64
	// Recipient is the guest's number, digits without "+".
	Recipient string
}

// AppendStatusEnvelope appends Meta's status webhook body: one entry of
// b's account, one "messages" change with b's metadata, and the statuses
// in order, each with the conversation and pricing objects Meta adds to
// sent and delivered statuses, so the body is the size Meta's is.
func AppendStatusEnvelope(dst []byte, b Business, statuses []StatusItem) []byte {
	dst = append(dst, `{"object":"whatsapp_business_account","entry":[{"id":`...)
	dst = message.AppendJSONString(dst, b.WABAID)
	dst = append(dst, `,"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":`...)
	dst = message.AppendJSONString(dst, b.DisplayPhoneNumber)
	dst = append(dst, `,"phone_number_id":`...)
	dst = message.AppendJSONString(dst, b.PhoneNumberID)
	dst = append(dst, `},"statuses":[`...)
	for i, s := range statuses {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = message.AppendJSONString(dst, s.ProviderID)
		dst = append(dst, `,"status":`...)
		dst = message.AppendJSONString(dst, s.Status)
		dst = append(dst, `,"timestamp":"`...)
		dst = strconv.AppendInt(dst, s.Timestamp, 10)
		dst = append(dst, `","recipient_id":`...)
		dst = message.AppendJSONString(dst, s.Recipient)
		if s.Status == "sent" || s.Status == "delivered" {
			dst = append(dst, `,"conversation":{"id":"bench-conversation-`...)
			dst = append(dst, b.PhoneNumberID...)
			dst = append(dst, `","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, `]},"field":"messages"}]}]}`...)
}
