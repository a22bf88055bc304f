package jsonpeek

import (
	"encoding/json"
	"testing"
)

// FuzzMember checks the in-place reader against encoding/json: for any
// valid document, the string member "body" it finds is the one
// encoding/json decodes, with the same text.
func FuzzMember(f *testing.F) {
	for _, s := range []string{
		`{"body":"hi","preview_url":false}`,
		`{"a":[1,{"body":"x"}],"body":"\u00e9\ud83d\ude00\\\""}`,
		`{"body":"\ud800\udc00\ud800"}`,
		`{"bo\u0064y":"x","body":"y"}`,
		`[{"body":"x"}]`,
		`{"body":{"body":"inner"}}`,
		`{"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued"}`,
		"{\"body\":\"\xed\xa0\x80\"}",
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			// Invalid input must not panic; the answer means nothing.
			if raw, ok := Member(doc, "body"); ok {
				_, _ = AppendUnquote(nil, raw)
			}
			return
		}
		raw, ok := Member(doc, "body")
		var want map[string]any
		if err := json.Unmarshal(doc, &want); err != nil {
			if ok {
				t.Fatalf("%q: found body %q in a document that is not an object", doc, raw)
			}
			return
		}
		v, has := want["body"]
		if has != ok {
			t.Fatalf("%q: member found %v, encoding/json %v", doc, ok, has)
		}
		if !has {
			return
		}
		var exact any
		if err := json.Unmarshal(raw, &exact); err != nil {
			t.Fatalf("%q: raw member %q is not a JSON value: %v", doc, raw, err)
		}
		ws, isStr := v.(string)
		if isStr != IsString(raw) {
			t.Fatalf("%q: raw %q string=%v, encoding/json says %T", doc, raw, IsString(raw), v)
		}
		if !isStr {
			return
		}
		got, ok := AppendUnquote(nil, raw)
		if !ok || string(got) != ws {
			t.Fatalf("%q: unquoted %q (%v), encoding/json %q", doc, got, ok, ws)
		}
	})
}
