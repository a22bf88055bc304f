package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// collect is a Handler that keeps copies of what it is given.
type collect struct {
	items []any // provider.StatusUpdate or provider.Inbound, in call order
	fail  error
}

func (c *collect) HandleStatus(s *provider.StatusUpdate) error {
	c.items = append(c.items, *s)
	return c.fail
}

func (c *collect) HandleInbound(m *provider.Inbound) error {
	c.items = append(c.items, *m)
	return c.fail
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWebhook(t *testing.T) {
	f := func(file string, want ...any) {
		t.Helper()
		var c collect
		if err := ParseWebhook(readTestdata(t, file), &c); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !reflect.DeepEqual(c.items, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", file, c.items, want)
		}
	}
	f("status_sent.json", provider.StatusUpdate{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
		Status:            message.StatusSent,
		AtMS:              1750263773000,
		RecipientID:       "16505551234",
		PhoneNumberID:     "106540352242922",
		PricingCategory:   "utility",
		PricingModel:      "PMP",
		PricingType:       "regular",
		Billable:          true,
		ConversationID:    "6ceb9d929c1a8ddf5e2a7f37c0e2e7a3",
	})
	f("status_failed.json", provider.StatusUpdate{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE4RjcyRjNBRkY0QTM0RjcA",
		Status:            message.StatusFailed,
		AtMS:              1750263780000,
		RecipientID:       "16505551234",
		PhoneNumberID:     "106540352242922",
		ErrorCode:         131026,
		ErrorTitle:        "Message undeliverable",
	})
	// Several statuses in one envelope, several entries, metadata after
	// the statuses, a numeric timestamp, a status wagate does not know, and
	// a change of another field that must be skipped.
	f("statuses_batch.json",
		provider.StatusUpdate{
			ProviderMessageID: "wamid.AAA1", Status: message.StatusDelivered, AtMS: 1750263790000,
			RecipientID: "16505551234", PhoneNumberID: "106540352242922",
			PricingCategory: "service", PricingModel: "PMP", PricingType: "free_customer_service",
			ConversationID: "6ceb9d929c1a8ddf5e2a7f37c0e2e7a3",
		},
		provider.StatusUpdate{
			ProviderMessageID: "wamid.AAA2", Status: message.StatusRead, AtMS: 1750263795000,
			RecipientID: "16505551235", PhoneNumberID: "106540352242922",
		},
		provider.StatusUpdate{
			ProviderMessageID: "wamid.AAA3", Status: "deleted", AtMS: 1750263799000,
			RecipientID: "16505551236", PhoneNumberID: "106540352242922",
		},
		provider.StatusUpdate{
			ProviderMessageID: "wamid.BBB1", Status: message.StatusSent, AtMS: 1750263800000,
			RecipientID: "4915112345678", PhoneNumberID: "106540352242923",
		},
	)
	f("inbound_text.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "text",
		Text:              "Does it come in another color?",
		AtMS:              1749416383000,
	})
	f("inbound_image.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgB=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "image",
		Text:              "Here's the pic",
		MediaID:           "1003383421387256",
		MimeType:          "image/jpeg",
		SHA256:            "ZXJ3c3R1b21vbnR1ZWRvbnRzZW5kbWVoZXJl",
		AtMS:              1750090702000,
	})
	f("inbound_document.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgD=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "document",
		Text:              "My booking",
		MediaID:           "2621233374848975",
		MimeType:          "application/pdf",
		SHA256:            "b1f7a0c2b5d6c4c3e0d6f0a7b1d1b0f3d6c7e2a8f1b9c0d2e3f4a5b6c7d8e9f0",
		Filename:          "Booking RB123456.pdf",
		AtMS:              1750090703000,
	})
	f("inbound_contacts.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgE=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "contacts",
		Contacts: []provider.Contact{{
			Name: provider.ContactName{FormattedName: "Kerry Fitzgerald", FirstName: "Kerry", LastName: "Fitzgerald"},
			Phones: []provider.ContactPhone{{Phone: "+1 (650) 555-1234", Type: "CELL", WaID: "16505551234"},
				{Phone: "+1 (650) 555-5678", Type: "WORK"}},
			Emails: []provider.ContactEmail{{Email: "kfitz@example.com", Type: "WORK"}},
			URLs:   []provider.ContactURL{{URL: "https://taxi.example.com", Type: "WORK"}},
			Addresses: []provider.ContactAddress{{Street: "1 Hacker Way", City: "Menlo Park", State: "CA", Zip: "94025",
				Country: "United States", CountryCode: "us", Type: "WORK"}},
			Org:      &provider.ContactOrg{Company: "Example Taxi", Department: "Dispatch", Title: "Driver"},
			Birthday: "2012-08-18",
		}},
		AtMS: 1750090704000,
	})
	f("inbound_button_reply.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "interactive",
		Text:              "Cancel",
		ReplyID:           "cancel-button",
		ContextID:         "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA",
		AtMS:              1750025136000,
	})
	f("inbound_list_reply.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTIyMDlGNDIzNUZBM0Y1RkZBMgA=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "interactive",
		Text:              "Express Shipping",
		ReplyID:           "priority_express",
		ContextID:         "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJFRkQ2MkQyOEYzNzRENzM4QkEA",
		AtMS:              1750032413000,
	})
	f("inbound_location.json", provider.Inbound{
		ProviderMessageID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgC=",
		PhoneNumberID:     "106540352242922",
		From:              "+16505551234",
		Name:              "Sheena Nelson",
		Type:              "location",
		Text:              "geo:40.782910059774,-73.959075808525 (Solomon R. Guggenheim Museum, 1071 5th Ave, New York, NY 10128)",
		AtMS:              1744344496000,
	})
}

func TestParseWebhookBodies(t *testing.T) {
	f := func(body string, want ...any) {
		t.Helper()
		var c collect
		if err := ParseWebhook([]byte(body), &c); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !reflect.DeepEqual(c.items, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", body, c.items, want)
		}
	}
	const head = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"77"},`
	const tail = `}}]}]}`
	// Escapes are decoded, a surrogate pair included; fields are ignored
	// when unknown, whatever their type.
	f(head+`"contacts":[{"profile":{"name":"Jos\u00e9 \ud83d\ude00"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":"wamid.X","timestamp":1750000000,"type":"text","text":{"body":"line1\nline2 \"q\" \\ \/ \u20ac","x":[1,2.5e3,{"y":null}]},"unknown":{"a":[true,false,null,-0.1]}}]`+tail,
		provider.Inbound{ProviderMessageID: "wamid.X", PhoneNumberID: "77", From: "+4915112345678", Name: "José 😀", Type: "text",
			Text: "line1\nline2 \"q\" \\ / €", AtMS: 1750000000000})
	// A button (template quick reply) and a reaction.
	f(head+`"messages":[{"from":"4915112345678","id":"wamid.B","timestamp":"1","type":"button","button":{"payload":"STOP","text":"Stop promotions"},"context":{"from":"15550783881","id":"wamid.T"}},{"from":"4915112345678","id":"wamid.R","timestamp":"2","type":"reaction","reaction":{"message_id":"wamid.T","emoji":"\ud83d\udc4d"}}]`+tail,
		provider.Inbound{ProviderMessageID: "wamid.B", PhoneNumberID: "77", From: "+4915112345678", Type: "button", Text: "Stop promotions", ReplyID: "STOP", ContextID: "wamid.T", AtMS: 1000},
		provider.Inbound{ProviderMessageID: "wamid.R", PhoneNumberID: "77", From: "+4915112345678", Type: "reaction", Text: "👍", ContextID: "wamid.T", AtMS: 2000})
	// A failed status whose error has no title falls back to its message,
	// then to its details; a second error is ignored.
	f(head+`"statuses":[{"id":"wamid.F","status":"failed","timestamp":"3","recipient_id":"1","errors":[{"code":131049,"message":"This message was not delivered to maintain healthy ecosystem engagement."},{"code":1,"title":"other"}]},{"id":"wamid.G","status":"failed","timestamp":"4","recipient_id":"1","errors":[{"code":131047,"error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]`+tail,
		provider.StatusUpdate{ProviderMessageID: "wamid.F", Status: message.StatusFailed, AtMS: 3000, RecipientID: "1", PhoneNumberID: "77",
			ErrorCode: 131049, ErrorTitle: "This message was not delivered to maintain healthy ecosystem engagement."},
		provider.StatusUpdate{ProviderMessageID: "wamid.G", Status: message.StatusFailed, AtMS: 4000, RecipientID: "1", PhoneNumberID: "77",
			ErrorCode: 131047, ErrorTitle: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."})
	// Shared contacts are bounded (cards, items, text) and take numbers as
	// text; values of the wrong shape are skipped, not refused.
	many := strings.Repeat(`{"name":{"formatted_name":"A"}},`, 25)
	long := strings.Repeat("é", 200)
	f(head+`"messages":[{"from":"1","id":"wamid.C","timestamp":"5","type":"contacts","contacts":[`+many+`{}]},`+
		`{"from":"1","id":"wamid.D","timestamp":"6","type":"contacts","contacts":[{"name":{"formatted_name":"`+long+`","first_name":7},`+
		`"phones":[`+strings.Repeat(`{"phone":"1"},`, 12)+`3],"emails":"x","org":{},"urls":[{"url":{"a":1}}]},17]}]`+tail,
		provider.Inbound{ProviderMessageID: "wamid.C", PhoneNumberID: "77", From: "+1", Type: "contacts", AtMS: 5000,
			Contacts: slicesRepeat(provider.Contact{Name: provider.ContactName{FormattedName: "A"}}, 20)},
		provider.Inbound{ProviderMessageID: "wamid.D", PhoneNumberID: "77", From: "+1", Type: "contacts", AtMS: 6000,
			Contacts: []provider.Contact{{Name: provider.ContactName{FormattedName: strings.Repeat("é", 128), FirstName: "7"},
				Phones: slicesRepeat(provider.ContactPhone{Phone: "1"}, 10), URLs: []provider.ContactURL{{}}}}})
	// An envelope with nothing for us, and one with only other fields.
	f(`{"object":"whatsapp_business_account","entry":[]}`)
	f(`{"entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}],"object":"whatsapp_business_account"}`)
	f(` {"object":"whatsapp_business_account","entry":null} `)
}

func TestParseWebhookErrors(t *testing.T) {
	f := func(body string, want error) {
		t.Helper()
		var c collect
		err := ParseWebhook([]byte(body), &c)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", body, err, want)
		}
		if len(c.items) != 0 {
			t.Fatalf("%s: handler called %d times for a refused body", body, len(c.items))
		}
	}
	for _, body := range []string{
		``, `{`, `not json`, `{"object":"whatsapp_business_account"`, `{"object":"whatsapp_business_account",}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"id":"w","status":"sent","timestamp":"12x"}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"status":"sent"}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"id":"w","type":"text"}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"id":"w","status":"sent"}]}}]}]} x`,
		`{"object":"whatsapp_business_account","entry":"x"}`,
		`{"object":"whatsapp_business_account","entry":[1,]}`,
		`{"object":"whatsapp_business_account","x":"\x"}`,
		`{"object":"whatsapp_business_account","x":01}`,
		`{"object":"whatsapp_business_account","x":"a` + "\n" + `"}`,
		// A valid status before a broken one: nothing is handed out.
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"id":"w","status":"sent"},{"id":"v","status":"sent","timestamp":true}]}}]}]}`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		f(body, ErrMalformed)
	}
	for _, body := range []string{
		`{}`, `[]`, `"x"`, `{"object":"page","entry":[{"changes":[{"value":{"statuses":[{"id":"w","status":"sent"}]}}]}]}`,
		`{"object":"instagram","entry":[]}`,
	} {
		f(body, ErrNotWhatsApp)
	}
}

func TestParseWebhookHandlerError(t *testing.T) {
	boom := errors.New("boom")
	c := collect{fail: boom}
	err := ParseWebhook(readTestdata(t, "statuses_batch.json"), &c)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the handler's error", err)
	}
	if len(c.items) != 1 {
		t.Fatalf("handler called %d times, want 1: an error stops the walk", len(c.items))
	}
}

// TestParseWebhookReuse checks that a pooled parser leaves nothing of one
// body in the next.
func TestParseWebhookReuse(t *testing.T) {
	full := readTestdata(t, "status_failed.json")
	bare := []byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"w","status":"read"}]}}]}]}`)
	for i := 0; i < 20; i++ {
		var c collect
		if err := ParseWebhook(full, &c); err != nil {
			t.Fatal(err)
		}
		c.items = c.items[:0]
		if err := ParseWebhook(bare, &c); err != nil {
			t.Fatal(err)
		}
		want := []any{provider.StatusUpdate{ProviderMessageID: "w", Status: message.StatusRead}}
		if !reflect.DeepEqual(c.items, want) {
			t.Fatalf("got %+v, want %+v", c.items, want)
		}
	}
}

func sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	body := readTestdata(t, "status_sent.json")
	secret := []byte("app-secret")
	good := sign(body, "app-secret")
	v := NewVerifier(secret)
	f := func(name string, body []byte, header string, want bool) {
		t.Helper()
		if got := VerifySignature(body, header, secret); got != want {
			t.Fatalf("%s: got %v, want %v", name, got, want)
		}
		// Twice: the Verifier's reused HMAC must start clean each time.
		for i := 0; i < 2; i++ {
			if got := v.Verify(body, []byte(header)); got != want {
				t.Fatalf("%s: Verifier got %v, want %v", name, got, want)
			}
		}
	}
	f("valid", body, good, true)
	f("valid upper-case hex", body, "sha256="+strings.ToUpper(good[7:]), true)
	f("wrong secret", body, sign(body, "other-secret"), false)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 1
	f("tampered body", tampered, good, false)
	f("missing prefix", body, good[7:], false)
	f("other algorithm", body, "sha1="+good[7:], false)
	f("bad hex", body, good[:len(good)-1]+"z", false)
	f("short", body, good[:len(good)-2], false)
	f("long", body, good+"00", false)
	f("empty", body, "", false)
	if got := string(AppendSignature(nil, body, secret)); got != good {
		t.Fatalf("AppendSignature = %s, want %s", got, good)
	}
}

// TestScannerStrings compares the scanner's string decoding with
// encoding/json's.
func TestScannerStrings(t *testing.T) {
	for _, lit := range []string{
		`""`, `"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u20ac"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"a\u0000b"`, `"ü日本"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		var s scanner
		s.reset([]byte(lit))
		got := string(s.str())
		s.end()
		if s.err != nil || got != want {
			t.Fatalf("%s: got %q (%v), want %q", lit, got, s.err, want)
		}
	}
}

func slicesRepeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// limits collects messaging limits besides statuses and messages.
type limits struct{ collect }

func (l *limits) HandleMessagingLimit(m *provider.MessagingLimit) error {
	l.items = append(l.items, *m)
	return nil
}

// TestParseMessagingLimits: the portfolio's messaging limit, as
// business_capability_update and phone_number_quality_update announce it
// (a number, a tier name, the older current_limit alone), with the WABA and
// time of its entry; a tier not set yet and other fields' look-alikes are
// not limits; a handler that takes no limits gets none.
func TestParseMessagingLimits(t *testing.T) {
	body := readTestdata(t, "messaging_limits.json")
	var l limits
	if err := ParseWebhook(body, &l); err != nil {
		t.Fatal(err)
	}
	at := int64(1765100000000)
	want := []any{
		provider.MessagingLimit{AccountID: "102290129340398", Limit: 2000, AtMS: at},
		provider.MessagingLimit{AccountID: "102290129340398", Limit: 10000, AtMS: at},
		provider.MessagingLimit{AccountID: "102290129340398", Limit: provider.Unlimited, AtMS: at},
	}
	if !reflect.DeepEqual(l.items, want) {
		t.Fatalf("got %+v\nwant %+v", l.items, want)
	}
	var c collect
	if err := ParseWebhook(body, &c); err != nil || len(c.items) != 0 {
		t.Fatalf("a handler without limits: %v %+v", err, c.items)
	}
}

// TestParseBSUIDs: a guest known by business-scoped user id only (no
// "from", no wa_id), one known by both, and a status of a message sent to
// a BSUID.
func TestParseBSUIDs(t *testing.T) {
	var c collect
	if err := ParseWebhook(readTestdata(t, "inbound_bsuid.json"), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.items) != 3 {
		t.Fatalf("items %+v", c.items)
	}
	a, b := c.items[0].(provider.Inbound), c.items[1].(provider.Inbound)
	if a.From != "" || a.UserID != "BR.1502576394655843" || a.Name != "Ana" || a.Text != "Do you have parking?" {
		t.Errorf("BSUID-only guest: %+v", a)
	}
	if b.From != "+5511999990000" || b.UserID != "BR.77" || b.Name != "Rui" {
		t.Errorf("guest with both: %+v", b)
	}
	if st := c.items[2].(provider.StatusUpdate); st.RecipientUserID != "BR.1502576394655843" || st.RecipientID != "" {
		t.Errorf("status to a BSUID: %+v", st)
	}
}
