package chatapp

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// ChatApp pushes delivery receipts (ChatAppStatus) to the HTTP callback
// URL set in its console ("HTTP batch push"; docs/PROVIDERS-CHECKED.md
// says where each detail was read): a POST whose JSON body is an array of
// one or more reports,
//
//	[{"MessageId":"2023078469463703…","From":"86131…","To":"86138…",
//	  "Status":"Failed","StatusDescription":"…","Timestamp":1691043638000,
//	  "ErrorCode":"131026","ErrorDescription":"131026:Receiver is incapable…",
//	  "ConversationId":"…","ConversationType":"service","MsgFrameType":"template",
//	  "TemplateCode":"…","TemplateName":"…","Language":"id",…}]
//
// MessageId is the id SendChatappMessage answered with (which Client.Send
// returns as the provider message id); Status is Sent, Delivered, Read,
// Failed or Deleted (older pages write them in lower case; Viber adds
// subscribe and unsubscribe); Timestamp is Unix milliseconds. The
// receiver answers {"code":0,"msg":…} within 3 seconds (Answer).
//
// ChatApp documents no signature for these pushes. wagate therefore puts
// a secret token of the account's in the callback URL (TokenParam) and
// refuses pushes without it (VerifyToken): the URL is the one thing the
// console lets a user set.

// TokenParam is the query parameter of the callback URL that carries the
// account's webhook token: https://gateway.example/webhooks/chatapp?token=….
const TokenParam = "token"

// Answer is the body a receiver answers a push with, as ChatApp's
// receipt pages ask: code 0.
const Answer = `{"code":0,"msg":"success"}`

// ErrMalformed says a push body is not ChatApp's: not JSON, not an array
// of reports (or one report), or no report in it names a message and a
// status.
var ErrMalformed = errors.New("chatapp webhook: malformed status report")

// maxIDLen bounds a message id: it becomes part of a Redis key.
const maxIDLen = 256

// VerifyToken reports whether got is the account's webhook token want,
// in constant time. An empty token verifies nothing.
func VerifyToken(got, want []byte) bool {
	return len(want) > 0 && subtle.ConstantTimeCompare(got, want) == 1
}

// report is the part of a status report the parser reads.
type report struct {
	MessageID        string          `json:"MessageId"`
	To               string          `json:"To"`
	Status           string          `json:"Status"`
	Timestamp        json.RawMessage `json:"Timestamp"`
	ErrorCode        json.RawMessage `json:"ErrorCode"`
	Error            string          `json:"Error"`
	ErrorDescription string          `json:"ErrorDescription"`
	ConversationID   string          `json:"ConversationId"`
}

// ParseWebhook reads a push's body and returns its statuses for the
// account name (each StatusUpdate's Provider). A report without a message
// id or status, or of a status wagate does not track (Deleted, which
// WhatsApp never pushes anyway; subscribe, unsubscribe), gives none; the
// body is ErrMalformed only when nothing in it is a report. AtMS is zero
// when a report has no usable timestamp.
func ParseWebhook(body []byte, name string) ([]provider.StatusUpdate, error) {
	var items []json.RawMessage
	switch b := bytes.TrimLeft(body, " \t\r\n"); {
	case len(b) > 0 && b[0] == '{':
		if !json.Valid(body) {
			return nil, fmt.Errorf("%w: not JSON", ErrMalformed)
		}
		items = []json.RawMessage{body}
	default:
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	var out []provider.StatusUpdate
	bad := 0
	for _, raw := range items {
		var r report
		if err := json.Unmarshal(raw, &r); err != nil || r.MessageID == "" || len(r.MessageID) > maxIDLen || r.Status == "" {
			bad++
			continue
		}
		st, ok := message.DeliveryStatus(r.Status)
		if !ok {
			continue
		}
		u := provider.StatusUpdate{Provider: name, ProviderMessageID: r.MessageID, Status: st, AtMS: timestampMS(r.Timestamp),
			RecipientID: r.To, ConversationID: r.ConversationID}
		if st == message.StatusFailed {
			u.ErrorCode, u.ErrorTitle = failure(&r)
		}
		out = append(out, u)
	}
	if bad > 0 && bad == len(items) {
		return nil, fmt.Errorf("%w: none of %d reports names a message and a status", ErrMalformed, bad)
	}
	return out, nil
}

// failure is a failed report's error: the numeric code (Meta's, passed
// through) and its description without the "<code>:" ChatApp puts before
// it; a code that is not a number (OUT_OF_SERVICE) stays in the title.
func failure(r *report) (int, string) {
	code := string(bytes.Trim(bytes.TrimSpace(r.ErrorCode), `"`))
	if code == "" || code == "null" {
		code = r.Error
	}
	title := r.ErrorDescription
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 {
		n = 0
		if code != "" {
			title = strings.TrimSpace(code + " " + title)
		}
	} else {
		title = strings.TrimPrefix(title, code+":")
	}
	if title == "" {
		title = "ChatApp reported the message failed"
	}
	return n, title
}

// timestampMS reads Unix milliseconds given as a number or a string (a
// value below 10^12 is taken as seconds); 0 when there is none.
func timestampMS(raw json.RawMessage) int64 {
	s := string(bytes.Trim(bytes.TrimSpace(raw), `"`))
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil || n <= 0 || n > 1<<53:
		return 0
	case n < 1e12:
		return n * 1000
	}
	return n
}
