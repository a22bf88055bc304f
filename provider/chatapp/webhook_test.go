package chatapp

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// The examples of ChatApp's "ChatAppStatus" page for HTTP pushes, as
// written there (masked digits and all).
const (
	docPushTemplate = `[
    {    
    "Status":"Failed",
    "ErrorDescription":"131026:Receiver is incapable of receiving this message(Message Undeliverable.)",
    "MsgFrameType":"template",
    "TaskId":"202307030171*******9",
    "From":"86131*******8",
    "Timestamp":1691043638000,
    "OriginPhoneNumber":"86130*******8",
    "TemplateCode":"820561547132813184",
    "Type":"TEMPLATE",
    "Language":"id",
    "TemplateName":"wa_otp_v_0_0_3",
    "To":"86138*******8",
    "ErrorCode":"131026",
    "MessageId":"2023078469463703*******3"
    }
]`
	docPushMessage = `[
    {    
    "Status":"Read",
    "MsgFrameType":"message",
    "Type":"INTERACTIVE",
    "TaskId":"2023068473353098*******8",
    "From":"86131*******8",
    "To":"86138*******8",
    "Timestamp":1691132091000,
    "OriginPhoneNumber":"86131*******8",
    "MessageId":"2023038470553398*******8",
    "ConversationId":"72222201111****",
    "ConversationType": "service"
    }
]`
	// The older "Webhook parameters" page: lower-case statuses, the
	// timestamp a string, the error code under Error.
	docOldWebhook = `[{
"MessageId": "123456789",
"To": "123456789",
"From": "123456789",
"Status": "sent",
"StatusDescription": "The message is sent to the channel provider.",
"Timestamp": "1591861777000",
"MsgFrameType": "template",
"Type": "none"
}]`
)

func TestParseWebhook(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []provider.StatusUpdate
		err  error
	}{
		{name: "documented failure", body: docPushTemplate, want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "2023078469463703*******3",
			Status: message.StatusFailed, AtMS: 1691043638000, RecipientID: "86138*******8", ErrorCode: 131026,
			ErrorTitle: "Receiver is incapable of receiving this message(Message Undeliverable.)"}}},
		{name: "documented read", body: docPushMessage, want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "2023038470553398*******8",
			Status: message.StatusRead, AtMS: 1691132091000, RecipientID: "86138*******8", ConversationID: "72222201111****"}}},
		{name: "older page's sent", body: docOldWebhook, want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "123456789",
			Status: message.StatusSent, AtMS: 1591861777000, RecipientID: "123456789"}}},
		{name: "a batch, in order, deleted skipped", body: `[{"MessageId":"m1","Status":"Delivered","Timestamp":2},{"MessageId":"m1","Status":"Deleted","Timestamp":3},{"MessageId":"m2","Status":"READ","Timestamp":"1700000000"}]`,
			want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "m1", Status: message.StatusDelivered, AtMS: 2000},
				{Provider: "ca", ProviderMessageID: "m2", Status: message.StatusRead, AtMS: 1700000000000}}},
		{name: "one report, not in an array", body: `{"MessageId":"m1","Status":"Sent","Timestamp":1700000000000}`,
			want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "m1", Status: message.StatusSent, AtMS: 1700000000000}}},
		{name: "failure with a word for a code", body: `[{"MessageId":"m1","Status":"failed","Error":"OUT_OF_SERVICE","ErrorDescription":"The system is out of service."}]`,
			want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "m1", Status: message.StatusFailed, ErrorTitle: "OUT_OF_SERVICE The system is out of service."}}},
		{name: "failure without a description", body: `[{"MessageId":"m1","Status":"Failed","ErrorCode":131047}]`,
			want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "m1", Status: message.StatusFailed, ErrorCode: 131047, ErrorTitle: "ChatApp reported the message failed"}}},
		{name: "a bad report beside a good one", body: `[{"Status":"Read"},{"MessageId":"m1","Status":"Read"},{"MessageId":5}]`,
			want: []provider.StatusUpdate{{Provider: "ca", ProviderMessageID: "m1", Status: message.StatusRead}}},
		{name: "viber's subscribe is not a delivery status", body: `[{"MessageId":"m1","Status":"subscribe"}]`},
		{name: "an empty push", body: `[]`},
		{name: "no report names a message", body: `[{"Status":"Read"},{"MessageId":"m1"}]`, err: ErrMalformed},
		{name: "over-long id", body: `[{"MessageId":"` + strings.Repeat("9", 300) + `","Status":"Read"}]`, err: ErrMalformed},
		{name: "not JSON", body: `[{"MessageId":`, err: ErrMalformed},
		{name: "an object that is not JSON", body: `{"MessageId":"m1",`, err: ErrMalformed},
		{name: "a string", body: `"Read"`, err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWebhook([]byte(tc.body), "ca")
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestVerifyToken(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		ok        bool
	}{
		{"tok-1", "tok-1", true}, {"tok-2", "tok-1", false}, {"", "tok-1", false}, {"tok-1x", "tok-1", false}, {"", "", false},
	} {
		if VerifyToken([]byte(tc.got), []byte(tc.want)) != tc.ok {
			t.Errorf("VerifyToken(%q, %q) != %v", tc.got, tc.want, tc.ok)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(Answer), &v); err != nil || v["code"] != float64(0) {
		t.Fatalf("Answer %s", Answer)
	}
}

// TestSendTemplateCodes: a template the account maps goes by ChatApp's
// code with its name beside it; one it does not map, by its name.
func TestSendTemplateCodes(t *testing.T) {
	fc := startFake(t, false)
	c := newTestClient(t, fc, Config{TemplateCodes: map[string]map[string]string{
		"booking_confirmation": {"en_US": "744c4b5c79c9432497a075bdfca3a1b2", "de": "820561547132813184"},
	}})
	for _, tc := range []struct {
		content, code, name, lang string
	}{
		{`{"name":"booking_confirmation","language":{"code":"en_US"}}`, "744c4b5c79c9432497a075bdfca3a1b2", "booking_confirmation", "en_US"},
		{`{"name":"booking_confirmation","language":{"code":"de"}}`, "820561547132813184", "booking_confirmation", "de"},
		{`{"name":"booking_confirmation","language":{"code":"es"}}`, "booking_confirmation", "booking_confirmation", "es"},
		{`{"name":"hello_world","language":{"code":"en_US"}}`, "hello_world", "hello_world", "en_US"},
	} {
		if _, err := c.Send(context.Background(), msg(message.TypeTemplate, tc.content)); err != nil {
			t.Fatal(err)
		}
		r := fc.take(t)[0]
		if r.params["TemplateCode"] != tc.code || r.params["TemplateName"] != tc.name || r.params["Language"] != tc.lang {
			t.Fatalf("%s: TemplateCode %q TemplateName %q Language %q", tc.content, r.params["TemplateCode"], r.params["TemplateName"], r.params["Language"])
		}
	}
}

func TestConfigRegionAndCodes(t *testing.T) {
	base := Config{AccessKeyID: testKeyID, AccessKeySecret: testSecret}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		uri    string // "" when refused
	}{
		{"default region", func(*Config) {}, "https://cams.ap-southeast-1.aliyuncs.com/"},
		{"another region", func(c *Config) { c.Region = "cn-hangzhou" }, "https://cams.cn-hangzhou.aliyuncs.com/"},
		{"an endpoint wins over the region", func(c *Config) { c.Region = "cn-hangzhou"; c.Endpoint = "http://127.0.0.1:9" }, "http://127.0.0.1:9/"},
		{"a region that is no host name", func(c *Config) { c.Region = "ap/south" }, ""},
		{"codes", func(c *Config) { c.TemplateCodes = map[string]map[string]string{"t": {"en": "744c"}} }, "https://cams.ap-southeast-1.aliyuncs.com/"},
		{"a code with a space", func(c *Config) { c.TemplateCodes = map[string]map[string]string{"t": {"en": "74 4c"}} }, ""},
		{"an empty language", func(c *Config) { c.TemplateCodes = map[string]map[string]string{"t": {"": "744c"}} }, ""},
		{"a template without languages", func(c *Config) { c.TemplateCodes = map[string]map[string]string{"t": {}} }, ""},
	} {
		c := base
		tc.change(&c)
		cl, err := New(c)
		switch {
		case tc.uri == "" && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case tc.uri != "" && (err != nil || string(cl.uri) != tc.uri):
			t.Errorf("%s: %v, uri %v", tc.name, err, cl)
		}
	}
	// The client keeps its own copy of the codes.
	codes := map[string]map[string]string{"t": {"en": "code-1"}}
	c := base
	c.TemplateCodes = codes
	cl, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	codes["t"]["en"] = "changed"
	if cl.templateCodes["t"]["en"] != "code-1" {
		t.Fatal("the client shares the caller's map")
	}
}

// FuzzParseWebhook checks that any body is either refused as malformed or
// gives statuses that name a message and are one of wagate's, and that
// parsing is deterministic.
func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{docPushTemplate, docPushMessage, docOldWebhook, ``, `{}`, `[]`, `null`, `[null]`, `[{}]`, `"x"`,
		`[{"MessageId":"m","Status":"failed","ErrorCode":-1,"Timestamp":-5}]`, `{"MessageId":"m","Status":"Read","Timestamp":1e99}`,
		`[{"MessageId":"\ud800","Status":"Delivered","ErrorCode":{}}]`, ` [{"MessageId":"m","Status":"Sent"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ParseWebhook(body, "chatapp")
		if err != nil {
			if !errors.Is(err, ErrMalformed) || len(got) != 0 {
				t.Fatalf("%q: %v with %d statuses", body, err, len(got))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		for _, u := range got {
			switch {
			case u.ProviderMessageID == "" || len(u.ProviderMessageID) > maxIDLen:
				t.Fatalf("%q: id %q", body, u.ProviderMessageID)
			case u.Provider != "chatapp":
				t.Fatalf("%q: provider %q", body, u.Provider)
			case u.AtMS < 0 || u.ErrorCode < 0:
				t.Fatalf("%q: time %d code %d", body, u.AtMS, u.ErrorCode)
			case u.Status == message.StatusFailed && u.ErrorTitle == "":
				t.Fatalf("%q: a failure without a title", body)
			}
			switch u.Status {
			case message.StatusSent, message.StatusDelivered, message.StatusRead, message.StatusFailed:
			default:
				t.Fatalf("%q: status %q", body, u.Status)
			}
		}
		again, err2 := ParseWebhook(body, "chatapp")
		if err2 != nil || !reflect.DeepEqual(got, again) {
			t.Fatalf("%q: second parse differs: %v", body, err2)
		}
	})
}
