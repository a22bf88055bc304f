package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTextThatCannotPassAsWrittenIsRefused: text a decoder would rewrite
// (bytes that are not UTF-8, NUL, half a surrogate pair) is refused with
// 400 on every JSON call, and nothing is queued; a real pair (an emoji) is
// taken.
func TestTextThatCannotPassAsWrittenIsRefused(t *testing.T) {
	h := newHarness(t)
	send := func(text string) string {
		return `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"` + text + `"}}`
	}
	tests := []struct{ name, path, token, body string }{
		{"raw bytes that are not UTF-8", sendPath, staffToken, send("caf\xe9")},
		{"a raw NUL", sendPath, staffToken, send("a\x00b")},
		{"an escaped NUL", sendPath, staffToken, send(`a\u0000b`)},
		{"a lone high surrogate", sendPath, staffToken, send(`room \ud83d ready`)},
		{"a lone low surrogate", sendPath, staffToken, send(`room \uDE00 ready`)},
		{"a high surrogate before another escape", sendPath, staffToken, send(`\ud83d\u0041`)},
		{"a high surrogate at the end", sendPath, staffToken, send(`\ud83d`)},
		{"in a batch", "/api/v1/whatsapp/messages/batch-send", staffToken,
			`{"messages":[{"guest_phone":"+1234567890","message_type":"text","content":{"text":"\udfff"}}]}`},
		{"in a key", sendPath, staffToken, `{"guest_phone":"+1234567890","message_type":"text","content":{"te\u0000xt":"hi"}}`},
		{"in the settings", "/api/v1/whatsapp/settings", adminToken, `{"opt_out_reply":"bye\ud800"}`},
	}
	before := h.queued()
	for _, tt := range tests {
		method := "POST"
		if strings.HasSuffix(tt.path, "settings") {
			method = "PUT"
		}
		code, v, _ := h.do(method, tt.path, tt.token, tt.body)
		if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
			t.Errorf("%s: %d %v, want 400 INVALID_REQUEST", tt.name, code, v)
		}
	}
	if n := h.queued(); n != before {
		t.Fatalf("%d messages queued by refused requests", n-before)
	}
	code, v, _ := h.do("GET", "/api/v1/whatsapp/settings", adminToken, "")
	if code != 200 || strings.Contains(v["opt_out_reply"].(string), "\ufffd") {
		t.Fatalf("settings after the refusal: %d %v", code, v)
	}
	// An escaped backslash before "u0000" is text, not an escape; a real
	// pair is one character.
	for _, ok := range []string{`a \\u0000 b`, `\ud83d\ude00 welcome`, `\uD83D\uDE00`, `caf\u00e9`} {
		if code, v, _ := h.do("POST", sendPath, staffToken, send(ok)); code != 202 {
			t.Errorf("%s: %d %v, want 202", ok, code, v)
		}
	}
}

func TestHugeTTLIsRefused(t *testing.T) {
	h := newHarness(t)
	for _, ttl := range []string{"9223372036854775807", "9223372037", "3024001", "0", "-1"} {
		code, v, _ := h.do("POST", sendPath, staffToken,
			`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"},"ttl_seconds":`+ttl+`}`)
		if code != 400 || errDetails(v)["field"] != "ttl_seconds" {
			t.Errorf("ttl_seconds %s: %d %v, want 400 on ttl_seconds", ttl, code, v)
		}
	}
	if code, v, _ := h.do("POST", sendPath, staffToken,
		`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"},"ttl_seconds":3024000}`); code != 202 {
		t.Fatalf("35 days: %d %v", code, v)
	}
}

// FuzzCheckBodyText: what the check takes decodes as JSON to the same
// text, with no replacement character the body did not hold itself.
func FuzzCheckBodyText(f *testing.F) {
	for _, s := range []string{`"hi"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\\u0000"`, "\"caf\xe9\"", `"\u0000"`, `"\uDC00\uD800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkBodyText(body) != nil {
			return
		}
		if !utf8.Valid(body) || strings.IndexByte(string(body), 0) >= 0 {
			t.Fatalf("took %q", body)
		}
		var s string
		if json.Unmarshal(body, &s) != nil {
			return
		}
		if strings.ContainsRune(s, utf8.RuneError) && !strings.ContainsRune(string(body), utf8.RuneError) &&
			!strings.Contains(strings.ToLower(string(body)), `\ufffd`) {
			t.Fatalf("took %q, which decodes to %q", body, s)
		}
		if strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("took %q, which decodes to a NUL", body)
		}
	})
}
