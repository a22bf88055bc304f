package meta

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wagate/wagate/provider"
)

func FuzzParseWebhook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"object":"whatsapp_business_account"}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"id":"w","status":"sent","timestamp":1}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"contacts":[{"wa_id":"1"}],"messages":[{"id":"w","from":"1","text":{"body":"\ud83d\ude00\u00"}}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"id":"w","from":"+","location":{"latitude":"1","longitude":-1e5}}]}}]}]}`,
		`{"a":"\ud800\udc00\ud800"}`, `{"a":-01}`, `{"a":1.}`, `{"a":1e}`, `{"a":[1,]}`, `{"a":tru}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// limits takes every kind of item: statuses, messages, limits.
		var c1, c2 limits
		err := ParseWebhook(body, &c1)
		valid := json.Valid(body)
		switch {
		case err == nil || errors.Is(err, ErrNotWhatsApp):
			if !valid {
				t.Fatalf("accepted invalid JSON %q: %v", body, err)
			}
		case errors.Is(err, ErrMalformed):
			// Deep nesting is refused though valid.
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if !valid && !errors.Is(err, ErrMalformed) {
			t.Fatalf("invalid JSON %q not ErrMalformed: %v", body, err)
		}
		if err != nil && len(c1.items) != 0 {
			t.Fatalf("refused body handed out %d items", len(c1.items))
		}
		for _, it := range c1.items {
			if l, ok := it.(provider.MessagingLimit); ok && l.Limit == 0 || l.Limit < provider.Unlimited {
				t.Fatalf("a messaging limit of %d", l.Limit)
			}
		}
		err2 := ParseWebhook(body, &c2)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(c1.items, c2.items) {
			t.Fatalf("second parse differs: %v %v", err, err2)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(`{"object":"whatsapp_business_account"}`), []byte("secret"), "sha256=00")
	f.Add([]byte{}, []byte{}, "")
	f.Add([]byte("x"), []byte("k"), "sha256="+strings.Repeat("zz", 32))
	f.Fuzz(func(t *testing.T, body, secret []byte, header string) {
		good := string(AppendSignature(nil, body, secret))
		if !VerifySignature(body, good, secret) {
			t.Fatalf("own signature refused")
		}
		if VerifySignature(body, header, secret) && !strings.EqualFold(header, good) {
			t.Fatalf("accepted %q, want %q", header, good)
		}
	})
}

// FuzzParseMediaInfo: the answer of GET /{media-id} is read without a
// panic, and a url is only ever taken from a valid JSON object.
func FuzzParseMediaInfo(f *testing.F) {
	for _, s := range []string{
		`{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=3","mime_type":"image/jpeg","sha256":"ab","file_size":303833,"id":"2621233374848975"}`,
		`{"url":"http://127.0.0.1:8090/x","file_size":"303833"}`,
		`{"url":"u","file_size":null}`, `{"url":"u","file_size":-1}`, `{"url":"u","file_size":1.5}`,
		`{"url":""}`, `{"url":1}`, `{}`, `[]`, `null`, ``, `{"url":"\u0000"}`, `{"url":"u"}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, ok := parseMediaInfo(body)
		if ok && (!json.Valid(body) || info.url == "") {
			t.Fatalf("took %q from %q", info.url, body)
		}
		if ok && info.size < -1 {
			t.Fatalf("size %d", info.size)
		}
		if info2, ok2 := parseMediaInfo(body); ok2 != ok || info2 != info {
			t.Fatal("second parse differs")
		}
	})
}
