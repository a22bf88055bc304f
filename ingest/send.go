package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/wagate/wagate/internal/sendargs"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// sendRequest is the body of POST /api/v1/whatsapp/messages/send (seed 001).
type sendRequest struct {
	GuestPhone  string `json:"guest_phone"`
	MessageType string `json:"message_type"`
	// Content is the message type's object; see sendContent.
	Content        json.RawMessage `json:"content"`
	ConversationID string          `json:"conversation_id"`
	StaffMemberID  string          `json:"staff_member_id"`
	// From picks one of the tenant's numbers; empty means its default.
	From string `json:"from"`
	delivery
	// text is Content decoded, for a text message.
	text textContent
	// buf holds Content's bytes; it keeps its memory from request to
	// request.
	buf []byte
}

// textContent is the content of a text message.
type textContent struct {
	Text       string `json:"text"`
	PreviewURL bool   `json:"preview_url"`
}

// sendTypes are the message types messages/send takes; the others have
// their own endpoints (sendElsewhere).
var sendTypes = []string{"text", "image", "document", "audio", "video", "sticker", "location", "contacts", "reaction"}

// sendElsewhere names the endpoint of the types messages/send does not take.
func sendElsewhere(t string) string {
	switch t {
	case "template":
		return "/api/v1/whatsapp/templates/send"
	case "interactive", "buttons", "list", "cta_url":
		return "/api/v1/whatsapp/messages/send-interactive"
	}
	return ""
}

// delivery holds the fields every send takes about when and how it goes.
type delivery struct {
	// Priority: "transactional" (default) goes before "bulk" on a number.
	Priority string `json:"priority"`
	// CampaignID groups bulk messages: campaigns share a number fairly.
	CampaignID string `json:"campaign_id"`
	// SendAt schedules the send (RFC 3339, at most 35 days ahead).
	SendAt string `json:"send_at"`
	// ExpiresAt or TTLSeconds end the message's validity: not sent by
	// then, it ends "expired" and is never sent.
	ExpiresAt  string `json:"expires_at"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	// FallbackText goes by SMS if WhatsApp fails, or is not delivered
	// within FallbackAfterSeconds (60 to 43 200, as Alibaba ChatApp's).
	FallbackText         string `json:"fallback_text"`
	FallbackAfterSeconds int64  `json:"fallback_after_seconds"`
}

// maxSchedule is how far ahead a send may be scheduled or valid (Twilio's
// SendAt window).
const maxSchedule = 35 * 24 * time.Hour

// apply checks d and sets the enqueue arguments it governs.
func (d *delivery) apply(a *redis.EnqueueArgs, now time.Time) *apiError {
	switch d.Priority {
	case "", "transactional":
		a.Lane = message.LaneTx
		if d.CampaignID != "" {
			return invalidRequest("campaign_id is for bulk messages", map[string]any{"field": "campaign_id"})
		}
	case "bulk":
		a.Lane = message.LaneBulk
	default:
		return invalidRequest("priority must be transactional or bulk", map[string]any{"field": "priority", "allowed": []string{"transactional", "bulk"}})
	}
	if !validCampaign(d.CampaignID) {
		return invalidRequest("campaign_id may hold letters, digits, '.', '_' and '-', at most 64",
			map[string]any{"field": "campaign_id"})
	}
	a.Campaign = d.CampaignID
	start := now
	if d.SendAt != "" {
		t, err := time.Parse(time.RFC3339, d.SendAt)
		switch {
		case err != nil:
			return invalidRequest("send_at must be an RFC 3339 time, e.g. 2026-12-24T09:00:00Z", map[string]any{"field": "send_at"})
		case t.After(now.Add(maxSchedule)):
			return invalidRequest("send_at is more than 35 days ahead", map[string]any{"field": "send_at"})
		}
		if t.After(now) {
			a.DueMS, start = t.UnixMilli(), t
		}
	}
	switch {
	case d.ExpiresAt != "" && d.TTLSeconds != nil:
		return invalidRequest("give expires_at or ttl_seconds, not both", map[string]any{"field": "ttl_seconds"})
	case d.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, d.ExpiresAt)
		if err != nil {
			return invalidRequest("expires_at must be an RFC 3339 time", map[string]any{"field": "expires_at"})
		}
		if !t.After(start) {
			return invalidRequest("expires_at must be after the send time", map[string]any{"field": "expires_at"})
		}
		a.ExpiresMS = t.UnixMilli()
	case d.TTLSeconds != nil:
		// Compared in seconds: a huge value times a second would overflow.
		if *d.TTLSeconds < 1 || *d.TTLSeconds > int64(maxSchedule/time.Second) {
			return invalidRequest("ttl_seconds must be from 1 to 3024000 (35 days)", map[string]any{"field": "ttl_seconds"})
		}
		a.ExpiresMS = start.Add(time.Duration(*d.TTLSeconds) * time.Second).UnixMilli()
	}
	if n := utf8.RuneCountInString(d.FallbackText); n > 1600 {
		return invalidRequest("fallback_text is longer than an SMS may be (1600 characters)", map[string]any{"field": "fallback_text", "length": n})
	}
	if d.FallbackAfterSeconds != 0 {
		if d.FallbackText == "" {
			return invalidRequest("fallback_after_seconds needs a fallback_text", map[string]any{"field": "fallback_after_seconds"})
		}
		if d.FallbackAfterSeconds < 60 || d.FallbackAfterSeconds > 43200 {
			return invalidRequest("fallback_after_seconds must be from 60 to 43200", map[string]any{"field": "fallback_after_seconds"})
		}
	}
	a.FallbackText, a.FallbackAfter = d.FallbackText, time.Duration(d.FallbackAfterSeconds)*time.Second
	return nil
}

func validCampaign(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// maxRefLen bounds caller references (conversation, staff member) and the
// Idempotency-Key, which all end up in Redis keys or fields.
const maxRefLen = 255

// sendState is the per-request scratch of a send; it comes from sendPool and
// the handler owns it until it returns.
type sendState struct {
	parser  fastjson.Parser
	req     sendRequest
	o       outbound
	content []byte
	args    redis.EnqueueArgs
	out     []byte
}

var sendPool = sync.Pool{New: func() any { return &sendState{content: make([]byte, 0, 512), out: make([]byte, 0, 128)} }}

// decodeSend parses and checks a send body with p. The error names the
// field. Unknown fields are refused, as Meta does: a misspelt or misplaced
// field silently ignored would send something else than the caller meant.
func decodeSend(p *fastjson.Parser, body []byte, r *sendRequest) *apiError {
	*r = sendRequest{buf: r.buf[:0]}
	o, e := parseObject(p, body)
	if e != nil {
		return e
	}
	var fr fieldReader
	var content *fastjson.Value
	if e := fr.visit(o, "", func(k string, v *fastjson.Value) bool {
		switch k {
		case "guest_phone":
			fr.str(&r.GuestPhone, v, k)
		case "message_type":
			fr.str(&r.MessageType, v, k)
		case "content":
			content = v
			r.Content = fr.raw(&r.buf, v)
		case "conversation_id":
			fr.str(&r.ConversationID, v, k)
		case "staff_member_id":
			fr.str(&r.StaffMemberID, v, k)
		case "from":
			fr.str(&r.From, v, k)
		default:
			return fr.deliveryField(&r.delivery, k, v)
		}
		return true
	}); e != nil {
		return e
	}
	if r.MessageType == "text" && content != nil {
		if content.Type() != fastjson.TypeObject {
			return invalidRequest("content must be an object", map[string]any{"field": "content"})
		}
		if e := fr.visit(fr.object(content, "content"), "content", func(k string, v *fastjson.Value) bool {
			switch k {
			case "text":
				fr.str(&r.text.Text, v, "content.text")
			case "preview_url":
				fr.bool(&r.text.PreviewURL, v, "content.preview_url")
			default:
				return false
			}
			return true
		}); e != nil {
			return e
		}
	}
	if r.GuestPhone == "" {
		return &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is required",
			Details:         map[string]any{"field": "guest_phone"},
			RecoveryOptions: []string{"Give the guest's number in E.164 form, e.g. +14155550123"}}
	}
	if !message.ValidGuest(r.GuestPhone) {
		return &apiError{Code: message.CodeInvalidPhoneNumber,
			Message:         "guest_phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)",
			Details:         map[string]any{"field": "guest_phone", "value": r.GuestPhone, "expected": "+ then country code and number, 7 to 15 digits, no spaces; or a business-scoped user id such as BR.1502576394655843"},
			RecoveryOptions: []string{"Give the guest's number in E.164 form, e.g. +14155550123"}}
	}
	switch r.MessageType {
	case "":
		return invalidRequest("message_type is required", map[string]any{"field": "message_type", "allowed": sendTypes})
	case "text":
		if strings.TrimSpace(r.text.Text) == "" {
			return invalidRequest("content.text is required", map[string]any{"field": "content.text"})
		}
		if n := utf8.RuneCountInString(r.text.Text); n > message.MaxTextRunes {
			return invalidRequest("content.text is longer than WhatsApp allows",
				map[string]any{"field": "content.text", "length": n, "max_length": message.MaxTextRunes})
		}
	case "image", "document", "audio", "video", "sticker", "location", "contacts", "reaction":
		if len(bytes.TrimSpace(r.Content)) == 0 || bytes.Equal(bytes.TrimSpace(r.Content), []byte("null")) {
			return invalidRequest("content is required", map[string]any{"field": "content"})
		}
	default:
		d := map[string]any{"field": "message_type", "allowed": sendTypes}
		if ep := sendElsewhere(r.MessageType); ep != "" {
			d["endpoint"] = ep
			return invalidRequest("message_type "+quote(r.MessageType)+" is sent through "+ep, d)
		}
		return invalidRequest("message_type "+quote(r.MessageType)+" is not a message type of this API", d)
	}
	if len(r.ConversationID) > maxRefLen {
		return invalidRequest("conversation_id is too long", map[string]any{"field": "conversation_id", "max_length": maxRefLen})
	}
	if len(r.StaffMemberID) > maxRefLen {
		return invalidRequest("staff_member_id is too long", map[string]any{"field": "staff_member_id", "max_length": maxRefLen})
	}
	return nil
}

// decodeJSON decodes a request body that must be one JSON object into v,
// refusing unknown fields, with an answer that names what is wrong.
func decodeJSON(body []byte, v any) *apiError {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return invalidRequest("The request body must be a JSON object", nil)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return jsonError(err)
	}
	if d.More() {
		return invalidRequest("The request body holds more than one JSON value", nil)
	}
	return nil
}

// decodeField decodes raw, the value of an object field of a request, into
// v as decodeJSON does; errors name the field under its parent
// ("content.text").
func decodeField(raw json.RawMessage, v any, field string) *apiError { return decodeAt(raw, v, field) }

// jsonError turns a decoding error into an answer that names the field.
func jsonError(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalidRequest(te.Field+" must be "+jsonKind(te.Type.Kind()),
			map[string]any{"field": te.Field, "got": te.Value})
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return invalidRequest("Unknown field "+f, map[string]any{"field": f})
	}
	return invalidRequest("The request body is not valid JSON", map[string]any{"reason": err.Error()})
}

// jsonKind names a Go kind in JSON's words.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	}
	return "a number"
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + s + `"`
}

// pickSender returns the tenant's number to send from.
func pickSender(p Principal, from string) (string, *apiError) {
	if from == "" {
		return p.Tenant.Senders[0], nil
	}
	if !p.Tenant.owns(from) {
		return "", invalidRequest("from is not one of this tenant's numbers",
			map[string]any{"field": "from", "value": from, "allowed": p.Tenant.Senders})
	}
	return from, nil
}

// idempotencyKey returns the request's Idempotency-Key header, checked.
func idempotencyKey(ctx *fasthttp.RequestCtx) (string, *apiError) {
	k := ctx.Request.Header.Peek("Idempotency-Key")
	if len(k) == 0 {
		return "", nil
	}
	if len(k) > maxRefLen {
		return "", invalidRequest("Idempotency-Key is longer than 255 characters", map[string]any{"header": "Idempotency-Key"})
	}
	for _, c := range k {
		if c <= ' ' || c > '~' {
			return "", invalidRequest("Idempotency-Key may hold only visible ASCII characters", map[string]any{"header": "Idempotency-Key"})
		}
	}
	return string(k), nil
}

// appendTextContent appends Meta's text object for body.
func appendTextContent(dst []byte, body string, preview bool) []byte {
	return sendargs.AppendText(dst, body, preview)
}

// fingerprint identifies what a request asks for, so that an
// Idempotency-Key reused for a different message is told apart.
func fingerprint(a *redis.EnqueueArgs) uint64 { return sendargs.Fingerprint(a) }

// handleSend serves POST /api/v1/whatsapp/messages/send: text, media,
// location, contacts and reactions.
func (s *Server) handleSend(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	st := sendPool.Get().(*sendState)
	defer sendPool.Put(st)
	if e := decodeSend(&st.parser, ctx.PostBody(), &st.req); e != nil {
		writeError(ctx, e)
		return
	}
	r := &st.req
	o := &st.o
	*o = outbound{GuestPhone: r.GuestPhone, From: r.From, Type: message.Type(r.MessageType),
		ConversationID: r.ConversationID, StaffMemberID: r.StaffMemberID, Delivery: &r.delivery}
	var e *apiError
	switch r.MessageType {
	case "text":
		st.content = appendTextContent(st.content[:0], r.text.Text, r.text.PreviewURL)
		o.Preview = r.text.Text
	case "location":
		st.content, o.Preview, e = s.buildLocation(p, r.Content, st.content[:0])
	case "contacts":
		st.content, o.Preview, e = s.buildContacts(p, r.Content, st.content[:0])
	case "reaction":
		st.content, o.Preview, e = s.buildReaction(p, o, r.Content, st.content[:0])
	default:
		st.content, o.Preview, e = s.buildMedia(p, o.Type, r.Content, st.content[:0])
	}
	if e != nil {
		writeError(ctx, e)
		return
	}
	o.Content = st.content
	st.out = s.enqueue(ctx, p, o, &st.args, st.out[:0])
}
