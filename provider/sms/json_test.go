package sms

import (
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
