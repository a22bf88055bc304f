// Package webhooktest writes providers' webhook bodies as the providers
// post them, for the tests of their receipt (package ingest) and of their
// application (package inbound).
package webhooktest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Status is Meta's webhook of one status of message pid, at ts (Unix s),
// for the first number of the tests' hotel (phone number id
// 100000000000001).
func Status(pid, status string, ts int64) []byte {
	return []byte(fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001000","phone_number_id":"100000000000001"},"statuses":[{"id":%q,"status":%q,"timestamp":"%d","recipient_id":"1234567890","conversation":{"id":"CONVERSATION_ID","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"service"}}]}}]}]}`, pid, status, ts))
}

// InboundText is Meta's webhook of a guest's text to number pnid, sent at
// at by Maria Lopez from from.
func InboundText(pnid, from, wamid, text string, at time.Time) []byte {
	return inbound(pnid, from, map[string]any{"from": strings.TrimPrefix(from, "+"), "id": wamid, "timestamp": fmt.Sprint(at.Unix()),
		"type": "text", "text": map[string]any{"body": text}})
}

// InboundMedia is Meta's webhook of a guest's media (or contacts) message
// to number pnid, sent now; obj is the type's object.
func InboundMedia(pnid, from, wamid, typ string, obj any) []byte {
	return inbound(pnid, from, map[string]any{"from": strings.TrimPrefix(from, "+"), "id": wamid, "timestamp": fmt.Sprint(time.Now().Unix()),
		"type": typ, typ: obj})
}

// inbound is Meta's webhook of guest message msg from Maria Lopez.
func inbound(pnid, from string, msg map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550001000", "phone_number_id": pnid},
			"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Maria Lopez"}, "wa_id": strings.TrimPrefix(from, "+")}},
			"messages":          []any{msg},
		}}},
	}}})
	return b
}

// TemplateStatus is Meta's message_template_status_update of account waba.
func TemplateStatus(waba, id, name, lang, event, reason string, at int64) []byte {
	return []byte(fmt.Sprintf(`{"entry":[{"id":%q,"time":%d,"changes":[{"value":{"event":%q,"message_template_id":%s,`+
		`"message_template_name":%q,"message_template_language":%q,"reason":%q},"field":"message_template_status_update"}]}],"object":"whatsapp_business_account"}`,
		waba, at, event, id, name, lang, reason))
}

// GallaboxStatus is a Message.WA.Status.Received body, as Gallabox's API
// reference shows it.
func GallaboxStatus(id, status string, ts int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"status":%q,"timestamp":"%d","errors":[],"message":{"recipient_id":"1234567890"},"recipient_id":"1234567890","localMessageId":"20fdf4ba-a363-43a2-940c-99e8a086da29"}`, id, status, ts))
}

// ChatAppReport is one ChatAppStatus report, as ChatApp's receipt page
// shows it.
func ChatAppReport(id, status string, tsMS int64) string {
	return fmt.Sprintf(`{"Status":%q,"MsgFrameType":"template","From":"15550001000","To":"1234567890","Timestamp":%d,"MessageId":%q,"TemplateCode":"744c4b5c79c9","Language":"en"}`, status, tsMS, id)
}

// Canon re-encodes JSON as encoding/json writes a decoded value, so that
// a body can be compared with what a reader decoded and wrote again.
func Canon(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("canon of %s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
