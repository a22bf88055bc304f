package gallabox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// The examples of Gallabox's API reference (the Webhooks tag of its
// OpenAPI document), as written there.
const (
	docStatusRead = `{
  "id": "66a7699b87b97af3ec4f2c7c",
  "status": "read",
  "timestamp": "1722247579",
  "errors": [],
  "message": {
    "recipient_id": "919080319148"
  },
  "recipient_id": "919080319148",
  "localMessageId": "20fdf4ba-a363-43a2-940c-99e8a086da29"
}`
	docStatusFailed = `{
  "id": "66a76a5487b97af3ec4f2d35",
  "status": "failed",
  "timestamp": "1722247764",
  "errors": [
    {
      "code": 131026,
      "title": "Message undeliverable",
      "message": "Message undeliverable",
      "error_data": {
        "details": "Message Undeliverable."
      },
      "time": "2024-07-29T10:09:29.318Z"
    }
  ],
  "message": {
    "recipient_id": "919080849148"
  },
  "recipient_id": "919080849148",
  "localMessageId": "8fc4c05a-f0d7-4c34-8940-0238f5989af5"
}`
)

func TestParseWebhook(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []provider.StatusUpdate
		err  error
	}{
		{name: "documented read", body: docStatusRead, want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "66a7699b87b97af3ec4f2c7c",
			Status: message.StatusRead, AtMS: 1722247579000, RecipientID: "919080319148"}}},
		{name: "documented failure", body: docStatusFailed, want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "66a76a5487b97af3ec4f2d35",
			Status: message.StatusFailed, AtMS: 1722247764000, RecipientID: "919080849148", ErrorCode: 131026, ErrorTitle: "Message undeliverable"}}},
		{name: "delivered, numeric timestamp, recipient in message only", body: `{"id":"a1","status":"Delivered","timestamp":1722247579,"message":{"recipient_id":"49151"}}`,
			want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "a1", Status: message.StatusDelivered, AtMS: 1722247579000, RecipientID: "49151"}}},
		{name: "sent without timestamp", body: `{"id":"a1","status":"sent"}`,
			want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "a1", Status: message.StatusSent}}},
		{name: "timestamp in milliseconds", body: `{"id":"a1","status":"read","timestamp":"1722247579123"}`,
			want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "a1", Status: message.StatusRead, AtMS: 1722247579123}}},
		{name: "error without errors", body: `{"id":"a1","status":"error","timestamp":"1"}`,
			want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "a1", Status: message.StatusFailed, AtMS: 1000, ErrorTitle: "Gallabox reported the message error"}}},
		{name: "error code as a string, title from details", body: `{"id":"a1","status":"failed","errors":[{"code":"131047","error_data":{"details":"Re-engagement message"}}]}`,
			want: []provider.StatusUpdate{{Provider: "gb", ProviderMessageID: "a1", Status: message.StatusFailed, ErrorCode: 131047, ErrorTitle: "Re-engagement message"}}},
		{name: "received is not a delivery status", body: `{"id":"a1","status":"received","timestamp":"1"}`},
		{name: "deleted is not recorded", body: `{"id":"a1","status":"deleted","timestamp":"1"}`},
		{name: "unknown is not recorded", body: `{"id":"a1","status":"unknown"}`},
		{name: "no id", body: `{"status":"read"}`, err: ErrMalformed},
		{name: "no status", body: `{"id":"a1"}`, err: ErrMalformed},
		{name: "not an object", body: `[{"id":"a1","status":"read"}]`, err: ErrMalformed},
		{name: "not JSON", body: `{"id":`, err: ErrMalformed},
		{name: "id of the wrong type", body: `{"id":5,"status":"read"}`, err: ErrMalformed},
		{name: "over-long id", body: `{"id":"` + strings.Repeat("x", 300) + `","status":"read"}`, err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWebhook([]byte(tc.body), "gb")
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(docStatusRead)
	secret := []byte("whsec-gallabox")
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	sum := mac.Sum(nil)
	b64 := base64.StdEncoding.EncodeToString(sum)
	if got := string(AppendSignature(nil, body, secret)); got != b64 {
		t.Fatalf("AppendSignature = %s, want %s", got, b64)
	}
	for _, tc := range []struct {
		name   string
		header string
		secret []byte
		body   []byte
		ok     bool
	}{
		{"base64, as documented", b64, secret, body, true},
		{"base64 with spaces around", " " + b64 + " ", secret, body, true},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString(sum), secret, body, true},
		{"hex", hex.EncodeToString(sum), secret, body, true},
		{"sha256= and hex", "sha256=" + hex.EncodeToString(sum), secret, body, true},
		{"another secret", b64, []byte("other"), body, false},
		{"another body", b64, secret, append([]byte(" "), body...), false},
		{"empty secret", b64, nil, body, false},
		{"empty header", "", secret, body, false},
		{"truncated", b64[:20], secret, body, false},
		{"not base64", "!!!!" + b64[4:], secret, body, false},
		{"not hex", "zz" + hex.EncodeToString(sum)[2:], secret, body, false},
	} {
		if got := VerifySignature(tc.body, []byte(tc.header), tc.secret); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestStatusEvent(t *testing.T) {
	for ev, want := range map[string]bool{
		"": true, "Message.WA.Status.Received": true, "Message.WA.status.received": true, "Message.WA.Status.Failed": true,
		"Message.Received": false, "Contact.Created": false, "Message.WA.Payment.Status.Received": false,
	} {
		if got := StatusEvent([]byte(ev)); got != want {
			t.Errorf("StatusEvent(%q) = %v, want %v", ev, got, want)
		}
	}
}

// FuzzParseWebhook checks that any body is either refused as malformed or
// gives statuses that name a message and are one of wagate's, and that
// parsing is deterministic.
func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{docStatusRead, docStatusFailed, ``, `{}`, `[]`, `null`, `{"id":"a","status":"READ","timestamp":-5}`,
		`{"id":"a","status":"failed","errors":[{"code":1e99}]}`, `{"id":"a","status":"sent","timestamp":"99999999999999999999"}`,
		`{"id":"\ud800","status":"delivered","errors":{}}`, `{"id":"a","status":"read","message":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ParseWebhook(body, "gallabox")
		if err != nil {
			if !errors.Is(err, ErrMalformed) || len(got) != 0 {
				t.Fatalf("%q: %v with %d statuses", body, err, len(got))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if len(got) > 1 {
			t.Fatalf("%q gave %d statuses", body, len(got))
		}
		for _, u := range got {
			switch {
			case u.ProviderMessageID == "" || len(u.ProviderMessageID) > maxIDLen:
				t.Fatalf("%q: id %q", body, u.ProviderMessageID)
			case u.Provider != "gallabox":
				t.Fatalf("%q: provider %q", body, u.Provider)
			case u.AtMS < 0:
				t.Fatalf("%q: time %d", body, u.AtMS)
			}
			switch u.Status {
			case message.StatusSent, message.StatusDelivered, message.StatusRead, message.StatusFailed:
			default:
				t.Fatalf("%q: status %q", body, u.Status)
			}
		}
		again, err2 := ParseWebhook(body, "gallabox")
		if err2 != nil || !reflect.DeepEqual(got, again) {
			t.Fatalf("%q: second parse differs: %v", body, err2)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(docStatusRead), []byte("secret"), []byte("x"))
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, body, secret, header []byte) {
		if VerifySignature(body, header, secret) && len(secret) == 0 {
			t.Fatal("an empty secret verified")
		}
		if len(secret) > 0 && !VerifySignature(body, AppendSignature(nil, body, secret), secret) {
			t.Fatal("its own signature does not verify")
		}
	})
}
