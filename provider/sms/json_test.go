package sms

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

func TestAppendText(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		m := &message.Message{Type: message.TypeText, Content: []byte(content)}
		got, err := AppendText([]byte("keep:"), m)
		if err != nil {
			t.Fatalf("%s: %v", content, err)
		}
		if string(got) != "keep:"+want {
			t.Fatalf("%s: got %q, want %q", content, got[5:], want)
		}
	}
	f(`{"body":"hi","preview_url":false}`, "hi")
	f(` { "preview_url" : true , "body" : "a \"b\" \\ \/ \b\f\n\r\t" } `, "a \"b\" \\ / \b\f\n\r\t")
	f(`{"body":"\u00fc\u20ac\ud83d\ude00"}`, "ü€😀")
	f(`{"body":"lone \ud83d and \ude00 surrogates"}`, "lone \uFFFD and \uFFFD surrogates")
	f("{\"body\":\"bad \xff byte\"}", "bad \uFFFD byte")
	f(`{"x":{"body":"nested"},"y":["body","z"],"body":"top"}`, "top")
	f(`{"body":"first","body":"last"}`, "last")
	f(`{"bod\u0079":"escaped name"}`, "escaped name")

	bad := func(typ message.Type, content string) {
		t.Helper()
		m := &message.Message{Type: typ, Content: []byte(content)}
		got, err := AppendText([]byte("keep:"), m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Class != provider.ClassPermanent {
			t.Fatalf("%s %s: got %v, want a permanent error", typ, content, err)
		}
		if string(got) != "keep:" {
			t.Fatalf("%s %s: dst changed to %q", typ, content, got)
		}
	}
	bad(message.TypeImage, `{"link":"https://example.com/a.jpg"}`)
	bad(message.TypeText, ``)
	bad(message.TypeText, `"hi"`)
	bad(message.TypeText, `{"Body":"case matters"}`)
	bad(message.TypeText, `{"body":null}`)
	bad(message.TypeText, `{"body":["hi"]}`)
	bad(message.TypeText, `{"body":""}`)
	bad(message.TypeText, `{"body":"hi"}x`)
}

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
			if raw, ok := member(doc, "body"); ok {
				_, _ = appendUnquote(nil, raw)
			}
			return
		}
		raw, ok := member(doc, "body")
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
		if isStr != isString(raw) {
			t.Fatalf("%q: raw %q string=%v, encoding/json says %T", doc, raw, isString(raw), v)
		}
		if !isStr {
			return
		}
		got, ok := appendUnquote(nil, raw)
		if !ok || string(got) != ws {
			t.Fatalf("%q: unquoted %q (%v), encoding/json %q", doc, got, ok, ws)
		}
	})
}
