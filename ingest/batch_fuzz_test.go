package ingest

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// FuzzDecodeBatch: any batch body of free-text messages either gets an
// error with a code, or items that are safe to queue: one per message, an
// E.164 phone each, and Meta's text object carrying a text within limits.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"messages":[{"phone":"+1234567890","content":"Message 1"},{"phone":"+1234567891","content":"Message 2"}],
		"rate_limit":{"messages_per_second":10,"batch_size":100},"delivery_options":{"retry_failed":true,"track_delivery":true}}`))
	f.Add([]byte(`{"messages":[{"guest_phone":"+1234567890","message_type":"text","content":{"text":"a\"b\\c\u2028é😀"}}]}`))
	f.Add([]byte(`{"messages":[{"phone":"1234567890","content":""}],"rate_limit":{"messages_per_second":-1}}`))
	f.Add([]byte(`{"messages":[{"phone":"+1234567890","content":{"text":5}}]}`))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":null,"from":7}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// Template messages need the tenant's catalogue: they have tests of
		// their own.
		var peek struct {
			TemplateName any `json:"template_name"`
			Messages     []struct {
				TemplateName any `json:"template_name"`
				MessageType  any `json:"message_type"`
			} `json:"messages"`
		}
		if json.Unmarshal(body, &peek) == nil {
			if peek.TemplateName != nil {
				return
			}
			for _, m := range peek.Messages {
				if m.TemplateName != nil || m.MessageType == "template" {
					return
				}
			}
		}
		var r batchRequest
		var a redis.BatchArgs
		if e := decodeBatch(body, &r, &a, nil); e != nil {
			if e.Code == "" || e.Message == "" || e.Code.HTTPStatus() >= 500 {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if len(a.Items) != len(r.Messages) || len(a.Items) == 0 || len(a.Items) > MaxBatch {
			t.Fatalf("%d items for %d messages", len(a.Items), len(r.Messages))
		}
		if a.RatePerSecond < 0 || a.RatePerSecond > 10_000 {
			t.Fatalf("rate %v", a.RatePerSecond)
		}
		for i, it := range a.Items {
			if !message.ValidE164(it.Recipient) || it.Type != message.TypeText {
				t.Fatalf("item %d: %q %q", i, it.Recipient, it.Type)
			}
			var c struct {
				Body string `json:"body"`
			}
			if err := json.Unmarshal(it.Content, &c); err != nil {
				t.Fatalf("item %d content %q: %v", i, it.Content, err)
			}
			if n := utf8.RuneCountInString(c.Body); n == 0 || n > message.MaxTextRunes || c.Body != it.Preview {
				t.Fatalf("item %d text %q (preview %q)", i, c.Body, it.Preview)
			}
		}
	})
}

// FuzzDecodeTemplateParams: parameters are an object or an array of
// scalars, each given back as the string it was; anything else is an error
// that names the field.
func FuzzDecodeTemplateParams(f *testing.F) {
	f.Add([]byte(`{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel","room_number":"205"}`))
	f.Add([]byte(`["Ana","1 PM",412,"$20"]`))
	f.Add([]byte(`{"a":{"b":1}}`))
	f.Add([]byte(`[true]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`"x"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		values, e := decodeTemplateParams(raw, "parameters")
		if e != nil {
			if e.Code != message.CodeInvalidRequest || e.Details["field"] == nil {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if len(values) > maxTemplateParams {
			t.Fatalf("%d values", len(values))
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for i := range list {
				if _, ok := values[strconv.Itoa(i+1)]; !ok {
					t.Fatalf("array value %d not given as %q: %v", i, strconv.Itoa(i+1), values)
				}
			}
		}
	})
}
