package gallabox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// Gallabox's webhooks (Settings → Webhooks in its app; docs/PROVIDERS-CHECKED.md
// says where each detail was read):
//
//   - the event's name travels in the x-event-name header; the delivery
//     statuses are Message.WA.Status.Received (delivered, read) and
//     Message.WA.Status.Failed — Gallabox sends none for "sent";
//   - with a Secret set on the webhook, x-gallabox-signature carries the
//     HMAC-SHA256 of the raw body keyed by it, base64-encoded;
//   - a status body is one object:
//
//     {"id":"66a7699b87b97af3ec4f2c7c","status":"read","timestamp":"1722247579",
//     "errors":[],"message":{"recipient_id":"919080319148"},
//     "recipient_id":"919080319148","localMessageId":"20fdf4ba-…"}
//
//     where id is Gallabox's message id, the one its send answered with
//     (which Client.Send returns as the provider message id), status is one
//     of unknown, sent, received, delivered, read, failed, deleted or error,
//     and timestamp is in Unix seconds; a failure's errors hold Meta's
//     {code, title, message, error_data.details}.

// Header names and event names of Gallabox's webhooks.
const (
	SignatureHeader     = "x-gallabox-signature"
	EventHeader         = "x-event-name"
	EventStatusReceived = "Message.WA.Status.Received"
	EventStatusFailed   = "Message.WA.Status.Failed"
)

// ErrMalformed says a webhook body is not a Gallabox status: not JSON, not
// an object, or without a message id or status.
var ErrMalformed = errors.New("gallabox webhook: malformed status body")

// maxIDLen bounds a message id: it becomes part of a Redis key.
const maxIDLen = 256

// StatusEvent reports whether event, the x-event-name header, names a
// delivery status webhook. Gallabox's own examples spell the names in
// more than one case, so case does not matter; no header at all counts as
// a status, and the body decides.
func StatusEvent(event []byte) bool {
	return len(event) == 0 || bytes.EqualFold(event, []byte(EventStatusReceived)) || bytes.EqualFold(event, []byte(EventStatusFailed))
}

// VerifySignature reports whether header is the HMAC-SHA256 of body keyed
// by secret. Gallabox documents it base64-encoded; the hex form (which
// some integrations read it as) is taken too, since either proves
// knowledge of the secret. An empty secret verifies nothing.
func VerifySignature(body, header, secret []byte) bool {
	if len(secret) == 0 {
		return false
	}
	h := bytes.TrimSpace(header)
	h = bytes.TrimPrefix(h, []byte("sha256="))
	var got [sha256.Size]byte
	switch len(h) {
	case hex.EncodedLen(sha256.Size):
		if _, err := hex.Decode(got[:], h); err != nil {
			return false
		}
	case base64.StdEncoding.EncodedLen(sha256.Size), base64.RawStdEncoding.EncodedLen(sha256.Size):
		var dec [sha256.Size + 2]byte
		n, err := base64.StdEncoding.Decode(dec[:], h)
		if err != nil {
			n, err = base64.RawStdEncoding.Decode(dec[:], h)
		}
		if err != nil || n != sha256.Size {
			return false
		}
		copy(got[:], dec[:n])
	default:
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got[:])
}

// AppendSignature appends the x-gallabox-signature of body keyed by secret
// to dst, as Gallabox computes it (the simulator signs with it).
func AppendSignature(dst, body, secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return base64.StdEncoding.AppendEncode(dst, mac.Sum(nil))
}

// statusBody is the part of a status webhook the parser reads.
type statusBody struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Timestamp   json.RawMessage `json:"timestamp"`
	RecipientID string          `json:"recipient_id"`
	Errors      []struct {
		Code      json.RawMessage `json:"code"`
		Title     string          `json:"title"`
		Message   string          `json:"message"`
		ErrorData *struct {
			Details string `json:"details"`
		} `json:"error_data"`
	} `json:"errors"`
	Message *struct {
		RecipientID string `json:"recipient_id"`
	} `json:"message"`
}

// ParseWebhook reads a status webhook's body and returns its status for
// the account name (the StatusUpdate's Provider). A status wagate does
// not track (received, deleted, unknown) gives none; failed and error
// give failed, with the first error's code and title. AtMS is zero when
// the body has no usable timestamp.
func ParseWebhook(body []byte, name string) ([]provider.StatusUpdate, error) {
	var b statusBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case b.ID == "" || len(b.ID) > maxIDLen:
		return nil, fmt.Errorf("%w: no message id (or one over %d bytes)", ErrMalformed, maxIDLen)
	case b.Status == "":
		return nil, fmt.Errorf("%w: no status", ErrMalformed)
	}
	st, ok := statusOf(b.Status)
	if !ok {
		return nil, nil
	}
	u := provider.StatusUpdate{Provider: name, ProviderMessageID: b.ID, Status: st, AtMS: timestampMS(b.Timestamp), RecipientID: b.RecipientID}
	if u.RecipientID == "" && b.Message != nil {
		u.RecipientID = b.Message.RecipientID
	}
	if st == message.StatusFailed && len(b.Errors) > 0 {
		e := &b.Errors[0]
		u.ErrorCode = intOf(e.Code)
		u.ErrorTitle = e.Title
		if u.ErrorTitle == "" {
			u.ErrorTitle = e.Message
		}
		if u.ErrorTitle == "" && e.ErrorData != nil {
			u.ErrorTitle = e.ErrorData.Details
		}
	}
	if st == message.StatusFailed && u.ErrorTitle == "" {
		u.ErrorTitle = "Gallabox reported the message " + strings.ToLower(b.Status)
	}
	return []provider.StatusUpdate{u}, nil
}

// statusOf maps Gallabox's status to wagate's ("error" is its failure
// too); false for one wagate does not record.
func statusOf(s string) (message.Status, bool) {
	if strings.EqualFold(s, "error") {
		return message.StatusFailed, true
	}
	return message.DeliveryStatus(s)
}

// timestampMS reads Unix seconds given as a string or a number (a value
// past year 33658 in seconds is taken as milliseconds already); 0 when
// there is none.
func timestampMS(raw json.RawMessage) int64 {
	n := intOf(raw)
	switch {
	case n <= 0:
		return 0
	case n >= 1e12:
		return int64(n)
	}
	return int64(n) * 1000
}

// intOf reads a JSON number or a string of digits; 0 otherwise.
func intOf(raw json.RawMessage) int {
	s := string(bytes.Trim(bytes.TrimSpace(raw), `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return 0
	}
	return int(n)
}
