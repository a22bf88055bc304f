package ingest

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/wagate/wagate/message"
)

const chatAppPath = "/api/v1/chatapp/send"

// requestIDShape is the shape of Alibaba's RequestId.
var requestIDShape = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

const checkoutReminder = `{"name":"checkout_reminder","language":"en","category":"UTILITY","status":"APPROVED","components":[
	{"type":"BODY","text":"Checkout is at {{1}}. Need more time?"},
	{"type":"BUTTONS","buttons":[{"type":"QUICK_REPLY","text":"Late checkout"},{"type":"QUICK_REPLY","text":"No thanks"}]}]}`

// TestSeed004SendAPI: seed 004's send call, as its users write it, is
// queued as wagate's own sends are and answered in that API's style.
func TestSeed004SendAPI(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", append(hotelTemplates, checkoutReminder)...)
	ctx := context.Background()
	tests := []struct {
		name    string
		body    string
		check   func(t *testing.T, content map[string]any, st map[string]string)
		typ     message.Type
		preview string
	}{
		{name: "text, Content a JSON string, numbers without +",
			body: `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","From":"15550001000","To":"1234567890",
				"Content":"{\"text\":\"Your room 205 is ready\"}"}`,
			typ: message.TypeText, preview: "Your room 205 is ready"},
		{name: "image, MessageType inside Content (seed 004's shape)",
			body: `{"ChannelType":"whatsapp","Type":"message","From":"+15550001000","To":"+1234567890",
				"Content":{"MessageType":"image","Link":"https://cdn.grandplaza.example/room-205.jpg","Caption":"Room 205"}}`,
			typ: message.TypeImage, preview: "Room 205",
			check: func(t *testing.T, c map[string]any, _ map[string]string) {
				if c["link"] != "https://cdn.grandplaza.example/room-205.jpg" || c["caption"] != "Room 205" {
					t.Fatalf("image content %v", c)
				}
			}},
		{name: "document with its FileName",
			body: `{"ChannelType":"whatsapp","Type":"message","MessageType":"document","To":"1234567890",
				"Content":{"Link":"https://cdn.grandplaza.example/invoice.pdf","FileName":"invoice.pdf"}}`,
			typ: message.TypeDocument,
			check: func(t *testing.T, c map[string]any, _ map[string]string) {
				if c["filename"] != "invoice.pdf" {
					t.Fatalf("document content %v", c)
				}
			}},
		{name: "template with TemplateParams, SMS fallback after 120 s",
			body: `{"ChannelType":"whatsapp","Type":"template","From":"15550001000","To":"14155550123","TemplateCode":"service_confirmation",
				"Language":"en","TemplateParams":{"service_type":"Spa Massage","appointment_time":"Tomorrow at 2:00 PM",
				"location":"Wellness Center","estimated_duration":"90 minutes"},"FallBackId":"S00001",
				"FallBackContent":"Your spa massage is confirmed for tomorrow at 2 PM.","FallBackDuration":120,"TaskId":"spa-0612"}`,
			typ: message.TypeTemplate,
			check: func(t *testing.T, c map[string]any, st map[string]string) {
				if c["name"] != "service_confirmation" || !strings.Contains(mustJSON(c["components"]), "Spa Massage") {
					t.Fatalf("template content %v", c)
				}
			}},
		{name: "template by TemplateName, ChatApp's own TemplateCode beside it",
			body: `{"ChannelType":"whatsapp","Type":"template","To":"14155550123","TemplateCode":"744c4b5c79c9432497a075bdfca3a1b2",
				"TemplateName":"service_confirmation","Language":"en","TemplateParams":{"service_type":"Spa Massage","appointment_time":"2 PM",
				"location":"Wellness Center","estimated_duration":"90 minutes"}}`,
			typ: message.TypeTemplate,
			check: func(t *testing.T, c map[string]any, _ map[string]string) {
				if c["name"] != "service_confirmation" {
					t.Fatalf("template content %v", c)
				}
			}},
		{name: "template with Payload for its quick replies, TemplateParams a JSON string",
			body: `{"ChannelType":"whatsapp","Type":"template","To":"14155550124","TemplateCode":"checkout_reminder","Language":"en",
				"TemplateParams":"{\"1\":\"11:00\"}","Payload":["late_checkout","no_thanks"]}`,
			typ: message.TypeTemplate,
			check: func(t *testing.T, c map[string]any, _ map[string]string) {
				s := mustJSON(c["components"])
				if !strings.Contains(s, `"payload":"late_checkout"`) || !strings.Contains(s, `"payload":"no_thanks"`) {
					t.Fatalf("payloads not on the buttons: %s", s)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v, _ := h.do("POST", chatAppPath, staffToken, tt.body)
			if code != 200 || v["Code"] != "OK" || !requestIDShape.MatchString(v["RequestId"].(string)) {
				t.Fatalf("%d %v", code, v)
			}
			id := v["MessageId"].(string)
			st, err := h.store.State(ctx, id)
			must(t, err)
			if st.Type != tt.typ || st.TenantID != "grand-plaza" || st.Sender != "+15550001000" {
				t.Fatalf("state %+v", st)
			}
			var c map[string]any
			must(t, json.Unmarshal(st.Content, &c))
			if tt.check != nil {
				tt.check(t, c, nil)
			}
			if code, sv, _ := h.do("GET", "/api/v1/whatsapp/messages/"+id+"/status", staffToken, ""); code != 200 || sv["status"] != "queued" {
				t.Fatalf("its status: %d %v", code, sv)
			}
		})
	}
	// The fallback of the template send.
	code, v, _ := h.do("POST", chatAppPath, staffToken, tests[3].body)
	if code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	st, err := h.store.State(ctx, v["MessageId"].(string))
	must(t, err)
	if st.FallbackText != "Your spa massage is confirmed for tomorrow at 2 PM." || st.FallbackAfterS != 120 {
		t.Fatalf("fallback: %+v", st)
	}
}

// TestSeed004SendAPIRefusals: what the call refuses, in that API's style,
// queuing nothing.
func TestSeed004SendAPIRefusals(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	before := h.queued()
	tests := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no token", "", `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","To":"1234567890","Content":{"text":"hi"}}`, 401, "Unauthorized"},
		{"no ChannelType", staffToken, `{"Type":"message","MessageType":"text","To":"1234567890","Content":{"text":"hi"}}`, 400, "InvalidParameter"},
		{"viber", staffToken, `{"ChannelType":"viber","Type":"message","MessageType":"text","To":"1234567890","Content":{"text":"hi"}}`, 400, "InvalidParameter"},
		{"unknown Type", staffToken, `{"ChannelType":"whatsapp","Type":"sms","To":"1234567890"}`, 400, "InvalidParameter"},
		{"a field the API does not have", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","To":"1234567890","Content":{"text":"hi"},"Priority":"high"}`, 400, "InvalidParameter"},
		{"document without FileName", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"document","To":"1234567890","Content":{"Link":"https://x.example/a.pdf"}}`, 400, "InvalidParameter"},
		{"interactive", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"interactive","To":"1234567890","Content":{"type":"button"}}`, 400, "InvalidParameter"},
		{"an unknown template", staffToken, `{"ChannelType":"whatsapp","Type":"template","To":"1234567890","TemplateCode":"no_such","Language":"en"}`, 404, "DetailError.TemplateNotExist"},
		{"a template's parameter missing", staffToken, `{"ChannelType":"whatsapp","Type":"template","To":"1234567890","TemplateCode":"service_confirmation","Language":"en","TemplateParams":{"service_type":"Spa"}}`, 400, "InvalidParameter"},
		{"a short fallback", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","To":"1234567890","Content":{"text":"hi"},"FallBackContent":"hi","FallBackDuration":30}`, 400, "InvalidParameter"},
		{"a number of another tenant", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","From":"15550002000","To":"1234567890","Content":{"text":"hi"}}`, 400, "InvalidParameter"},
		{"a guest outside the window", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","To":"14155550999","Content":{"text":"hi"}}`, 403, "MESSAGE_WINDOW_EXPIRED"},
		{"a bad number", staffToken, `{"ChannelType":"whatsapp","Type":"message","MessageType":"text","To":"hotel","Content":{"text":"hi"}}`, 400, "InvalidParameter"},
	}
	for _, tt := range tests {
		code, v, _ := h.do("POST", chatAppPath, tt.token, tt.body)
		if code != tt.status || v["Code"] != tt.code || v["Message"] == "" || !requestIDShape.MatchString(v["RequestId"].(string)) {
			t.Errorf("%s: %d %v, want %d %s", tt.name, code, v, tt.status, tt.code)
		}
	}
	if n := h.queued(); n != before {
		t.Fatalf("%d messages queued by refused calls", n-before)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzChatAppFields: the seed-004 API's flexible fields (an object or a
// JSON string of one; a number or a numeric string) never panic, and what
// they take is valid JSON of the right kind.
func FuzzChatAppFields(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `"{\"text\":\"hi\"}"`, `["a","b"]`, `"[\"a\"]"`, `120`, `"120"`, `null`, `""`, `"x"`, `"{"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// What encoding/json hands over is valid JSON.
		if !json.Valid(raw) {
			return
		}
		quoted := strings.TrimSpace(string(raw))[0] == '"'
		if v, e := unquoteJSON(raw, "Content"); e == nil && len(v) > 0 {
			// What it takes is JSON; out of a string, an object or array.
			if !json.Valid(v) || quoted && v[0] != '{' && v[0] != '[' {
				t.Fatalf("unquoteJSON(%q) took %q", raw, v)
			}
		}
		if ps, e := chatAppPayloads(raw); e == nil && len(ps) > 0 && !quoted && strings.TrimSpace(string(raw))[0] != '[' {
			t.Fatalf("chatAppPayloads(%q) took %q from neither an array nor a string", raw, ps)
		}
		if n, e := jsonInt(raw, "FallBackDuration"); e == nil && n != 0 && strings.ContainsAny(string(raw), ".eE") {
			t.Fatalf("jsonInt(%q) took %d from a number that is not whole", raw, n)
		}
	})
}
