package ingest

import (
	"encoding/json"
	"github.com/valyala/fastjson"
	"testing"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
)

// FuzzDecodeSend: any body either gets an error that names a code, or a
// request that is safe to queue: E.164 phone, text within the limit, and a
// content object that is valid JSON carrying the text unchanged.
func FuzzDecodeSend(f *testing.F) {
	f.Add([]byte(`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"Welcome to Grand Plaza Hotel!"},"conversation_id":"conv_abc123","staff_member_id":"staff_456"}`))
	f.Add([]byte(`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"a\"b\\c\u2028\n\u0000é😀","preview_url":true}}`))
	f.Add([]byte(`{"guest_phone":"1234567890","message_type":"text","content":{"text":"x"}}`))
	f.Add([]byte(`{"guest_phone":123,"message_type":[],"content":"x"}`))
	f.Add([]byte(`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"\xff\xfe"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r sendRequest
		var p fastjson.Parser
		if e := decodeSend(&p, body, &r); e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		if !message.ValidE164(r.GuestPhone) || r.MessageType != "text" {
			t.Fatalf("accepted %q / %q", r.GuestPhone, r.MessageType)
		}
		if n := utf8.RuneCountInString(r.text.Text); n == 0 || n > message.MaxTextRunes {
			t.Fatalf("accepted text of %d characters", n)
		}
		content := appendTextContent(nil, r.text.Text, r.text.PreviewURL)
		var back struct {
			Body string `json:"body"`
		}
		if err := json.Unmarshal(content, &back); err != nil {
			t.Fatalf("content %q is not JSON: %v", content, err)
		}
		if back.Body != r.text.Text && utf8.ValidString(r.text.Text) {
			t.Fatalf("text %q came back as %q", r.text.Text, back.Body)
		}
	})
}
