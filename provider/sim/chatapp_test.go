package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/chatapp"
	"github.com/wagate/wagate/provider/gallabox"
)

var chatappIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

func newChatAppClient(t *testing.T, s *Server, keyID, secret string, codes map[string]map[string]string) *chatapp.Client {
	t.Helper()
	c, err := chatapp.New(chatapp.Config{Endpoint: s.URL(), AccessKeyID: keyID, AccessKeySecret: secret, Timeout: 5 * time.Second, TemplateCodes: codes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChatAppClient sends through provider/chatapp's client, as the
// gateway does, and checks what the simulator received and the classes of
// its refusals.
func TestChatAppClient(t *testing.T) {
	s := startSim(t, Config{})
	c := newChatAppClient(t, s, DefaultChatAppAccessKeyID, DefaultChatAppAccessKeySecret,
		map[string]map[string]string{"booking_confirmation": {"en_US": "744c4b5c79c9432497a075bdfca3a1b2"}})
	text := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeText,
		Content: []byte(`{"body":"Zimmer 412 ist bereit – 100% \"fertig\" & sauber.","preview_url":false}`)}
	tmpl := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeTemplate,
		Content: []byte(`{"name":"booking_confirmation","language":{"code":"en_US"},"components":[` +
			`{"type":"body","parameters":[{"type":"text","parameter_name":"guest","text":"Ana"}]},` +
			`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"CONFIRM"}]}]}`)}
	doc := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeDocument,
		Content: []byte(`{"link":"https://example.com/inv/412.pdf","caption":"Invoice"}`)}
	var ids []string
	for _, m := range []*message.Message{text, tmpl, doc} {
		res, err := c.Send(context.Background(), m)
		if err != nil || !chatappIDRE.MatchString(res.ProviderMessageID) {
			t.Fatalf("%s: %+v %v", m.Type, res, err)
		}
		ids = append(ids, res.ProviderMessageID)
	}
	reqs := s.ChatAppRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	for i, want := range []map[string]string{
		{"Type": "message", "MessageType": "text", "Content": `{"text":"Zimmer 412 ist bereit – 100% \"fertig\" & sauber."}`},
		{"Type": "template", "TemplateCode": "744c4b5c79c9432497a075bdfca3a1b2", "TemplateName": "booking_confirmation", "Language": "en_US",
			"TemplateParams": `{"guest":"Ana"}`, "Payload": `["CONFIRM"]`},
		{"Type": "message", "MessageType": "document", "Content": `{"link":"https://example.com/inv/412.pdf","caption":"Invoice","fileName":"412.pdf"}`},
	} {
		r := reqs[i]
		if r.MessageID != ids[i] || r.Params["From"] != "15550001000" || r.Params["To"] != "4915112345678" || r.Params["Action"] != "SendChatappMessage" {
			t.Fatalf("recorded %d: %+v", i, r)
		}
		for k, v := range want {
			if r.Params[k] != v {
				t.Fatalf("recorded %d: %s = %q, want %q", i, k, r.Params[k], v)
			}
		}
	}

	for _, tc := range []struct {
		name   string
		client *chatapp.Client
		class  provider.Class
		status int
		code   string
	}{
		{"wrong secret", newChatAppClient(t, s, DefaultChatAppAccessKeyID, "wrong", nil), provider.ClassStopSender, 400, "SignatureDoesNotMatch"},
		{"unknown key", newChatAppClient(t, s, "LTAIunknown", DefaultChatAppAccessKeySecret, nil), provider.ClassStopSender, 404, "InvalidAccessKeyId.NotFound"},
	} {
		pe := providerError(t, tc.client, text)
		if pe.Class != tc.class || pe.HTTPStatus != tc.status || pe.Details != tc.code {
			t.Fatalf("%s: %+v", tc.name, pe)
		}
	}
	// Meta down does not touch ChatApp; ChatApp down is a retry.
	s.SetOutage(time.Now().Add(time.Minute))
	if _, err := c.Send(context.Background(), text); err != nil {
		t.Fatalf("during meta's outage: %v", err)
	}
	s.SetChatAppOutage(time.Now().Add(time.Minute))
	if pe := providerError(t, c, text); pe.Class != provider.ClassRetry || pe.HTTPStatus != 503 {
		t.Fatalf("chatapp outage: %+v", pe)
	}
	st := s.Stats()
	if st.ChatAppAccepted != 4 || st.ChatAppRejected["SignatureDoesNotMatch"] != 1 || st.ChatAppRejected["InvalidAccessKeyId.NotFound"] != 1 || st.ChatAppOutage != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// chatappForm builds a signed SendChatappMessage form from params over
// the defaults of a valid text send; a value "-" drops the parameter.
func chatappForm(params map[string]string, secret string) string {
	p := map[string]string{
		"AccessKeyId": DefaultChatAppAccessKeyID, "Action": "SendChatappMessage", "Version": "2020-06-06", "Format": "JSON",
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": time.Now().Format("150405.000000000") + params["To"] + params["Content"],
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "ChannelType": "whatsapp", "Type": "message",
		"MessageType": "text", "Content": `{"text":"hi"}`, "From": "15550001000", "To": "4915112345678",
	}
	for k, v := range params {
		if v == "-" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	var ps []chatapp.Param
	form := url.Values{}
	for k, v := range p {
		ps = append(ps, chatapp.Param{Key: k, Value: v})
		form.Set(k, v)
	}
	if _, ok := params["Signature"]; !ok {
		form.Set("Signature", chatapp.Sign("POST", ps, secret))
	} else if params["Signature"] == "-" {
		form.Del("Signature")
	}
	return form.Encode()
}

// TestChatAppEndpointChecks: the endpoint refuses what Alibaba's gateway
// and SendChatappMessage refuse, with their codes.
func TestChatAppEndpointChecks(t *testing.T) {
	s := startSim(t, Config{})
	post := func(form string) (int, map[string]string) {
		t.Helper()
		a := do(t, "POST", s.URL()+"/", "", "application/x-www-form-urlencoded", []byte(form))
		var v map[string]string
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Fatalf("answer %d %s is not JSON", a.status, a.body)
		}
		return a.status, v
	}
	secret := DefaultChatAppAccessKeySecret
	old := time.Now().Add(-20 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	for _, tc := range []struct {
		name   string
		form   string
		status int
		code   string
	}{
		{"valid text", chatappForm(nil, secret), 200, "OK"},
		{"valid template", chatappForm(map[string]string{"Type": "template", "MessageType": "-", "Content": "-", "TemplateCode": "744c", "Language": "en", "TemplateParams": `{"1":"Ana"}`, "Payload": `["A","B"]`}, secret), 200, "OK"},
		{"no signature", chatappForm(map[string]string{"Signature": "-"}, secret), 400, "MissingSignature"},
		{"wrong signature", chatappForm(map[string]string{"Signature": "AAAA"}, secret), 400, "SignatureDoesNotMatch"},
		{"signed with another secret", chatappForm(nil, "other"), 400, "SignatureDoesNotMatch"},
		{"no access key", chatappForm(map[string]string{"AccessKeyId": "-"}, secret), 400, "MissingAccessKeyId"},
		{"unknown access key", chatappForm(map[string]string{"AccessKeyId": "LTAIx"}, secret), 404, "InvalidAccessKeyId.NotFound"},
		{"old timestamp", chatappForm(map[string]string{"Timestamp": old}, secret), 400, "InvalidTimeStamp.Expired"},
		{"bad timestamp", chatappForm(map[string]string{"Timestamp": "yesterday"}, secret), 400, "InvalidTimeStamp.Format"},
		{"sha256", chatappForm(map[string]string{"SignatureMethod": "HMAC-SHA256"}, secret), 400, "InvalidParameter"},
		{"another action", chatappForm(map[string]string{"Action": "SendChatappMassMessage"}, secret), 404, "InvalidAction.NotFound"},
		{"another version", chatappForm(map[string]string{"Version": "2021-01-01"}, secret), 404, "InvalidAction.NotFound"},
		{"sms channel", chatappForm(map[string]string{"ChannelType": "sms"}, secret), 200, "InvalidParameter.ChannelType"},
		{"to with a plus", chatappForm(map[string]string{"To": "+4915112345678"}, secret), 200, "InvalidParameter.PhoneNumberError"},
		{"no type", chatappForm(map[string]string{"Type": "-"}, secret), 200, "InvalidParameter.Type"},
		{"template without code", chatappForm(map[string]string{"Type": "template", "Language": "en"}, secret), 200, "InvalidParameter.TemplateCode"},
		{"template without language", chatappForm(map[string]string{"Type": "template", "TemplateCode": "744c"}, secret), 200, "InvalidParameter.LanguageNotSupport"},
		{"template params not an object", chatappForm(map[string]string{"Type": "template", "TemplateCode": "744c", "Language": "en", "TemplateParams": `["Ana"]`}, secret), 200, "InvalidParameter.TemplateParams"},
		{"payload not an array", chatappForm(map[string]string{"Payload": `"A,B"`}, secret), 200, "InvalidParameter.Payload"},
		{"unknown message type", chatappForm(map[string]string{"MessageType": "poll"}, secret), 200, "InvalidParameter.MessageType"},
		{"content not JSON", chatappForm(map[string]string{"Content": `text=hi`}, secret), 200, "InvalidParameter.Content"},
		{"text with a caption", chatappForm(map[string]string{"Content": `{"text":"hi","caption":"c"}`}, secret), 200, "InvalidParameter.Content"},
		{"text too long", chatappForm(map[string]string{"Content": `{"text":"` + strings.Repeat("x", 4097) + `"}`}, secret), 200, "InvalidParameter.Content"},
		{"document without file name", chatappForm(map[string]string{"MessageType": "document", "Content": `{"link":"https://e.com/a.pdf"}`}, secret), 200, "InvalidParameter.Content"},
		{"location without longitude", chatappForm(map[string]string{"MessageType": "location", "Content": `{"latitude":1}`}, secret), 200, "InvalidParameter.Content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, v := post(tc.form)
			if status != tc.status || v["Code"] != tc.code || v["RequestId"] == "" {
				t.Fatalf("%d %v, want %d %s", status, v, tc.status, tc.code)
			}
			if tc.code == "OK" && !chatappIDRE.MatchString(v["MessageId"]) {
				t.Fatalf("MessageId %q", v["MessageId"])
			}
		})
	}
	// A nonce is taken once.
	form := chatappForm(map[string]string{"SignatureNonce": "once-only"}, secret)
	if status, v := post(form); status != 200 || v["Code"] != "OK" {
		t.Fatalf("first: %d %v", status, v)
	}
	if status, v := post(form); status != 400 || v["Code"] != "SignatureNonceUsed" {
		t.Fatalf("replayed: %d %v", status, v)
	}
	// The SDKs put Content and Payload in the query and sign them with the
	// body's parameters.
	q, _ := url.ParseQuery(chatappForm(nil, secret))
	content := q.Get("Content")
	q.Del("Content")
	a := do(t, "POST", s.URL()+"/?Content="+url.QueryEscape(content), "", "application/x-www-form-urlencoded", []byte(q.Encode()))
	if a.status != 200 || !strings.Contains(string(a.body), `"Code":"OK"`) {
		t.Fatalf("content in the query: %d %s", a.status, a.body)
	}
}

// hookSink records the callbacks it is posted; failN answers 500 to that
// many first.
type hookSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts []hookPost
	failN int
}

type hookPost struct {
	query            url.Values
	event, signature string
	body             []byte
}

func newHookSink(t *testing.T, failN int) *hookSink {
	h := &hookSink{failN: failN}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failN > 0 {
			h.failN--
			http.Error(w, "down", 500)
			return
		}
		h.posts = append(h.posts, hookPost{query: req.URL.Query(), event: req.Header.Get(gallabox.EventHeader),
			signature: req.Header.Get(gallabox.SignatureHeader), body: body})
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) snapshot() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.posts)
}

// TestProviderCallbacks: Gallabox's and ChatApp's accepted messages get
// their status callbacks, in the providers' shapes, signed as each does,
// and a receiver that fails is retried.
func TestProviderCallbacks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     float64
		failN    int
		gallabox []message.Status
		chatapp  []message.Status
		retried  int64
	}{
		{name: "delivered and read", gallabox: []message.Status{message.StatusDelivered, message.StatusRead},
			chatapp: []message.Status{message.StatusSent, message.StatusDelivered, message.StatusRead}},
		{name: "failed", fail: 1, gallabox: []message.Status{message.StatusFailed},
			chatapp: []message.Status{message.StatusSent, message.StatusFailed}},
		{name: "receiver down at first", failN: 2, gallabox: []message.Status{message.StatusDelivered, message.StatusRead},
			chatapp: []message.Status{message.StatusSent, message.StatusDelivered, message.StatusRead}, retried: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gbSink, caSink := newHookSink(t, tc.failN), newHookSink(t, tc.failN)
			s := startSim(t, Config{FailRatio: tc.fail, GallaboxWebhookURL: gbSink.srv.URL + "/webhooks/gallabox",
				ChatAppWebhookURL: caSink.srv.URL + "/webhooks/chatapp?token=tok-1", WebhookBackoffMin: 10 * time.Millisecond, WebhookBackoffMax: 20 * time.Millisecond,
				StatusDelays: Delays{Sent: 5 * time.Millisecond, Delivered: 10 * time.Millisecond, Read: 15 * time.Millisecond}})
			gb, err := gallabox.New(gallabox.Config{BaseURL: s.URL(), APIKey: DefaultGallaboxAPIKey, APISecret: DefaultGallaboxAPISecret, DefaultChannelID: "ch1"})
			if err != nil {
				t.Fatal(err)
			}
			ca := newChatAppClient(t, s, DefaultChatAppAccessKeyID, DefaultChatAppAccessKeySecret, nil)
			m := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeTemplate,
				Content: []byte(`{"name":"hello_world","language":{"code":"en_US"}}`)}
			gbRes, err := gb.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			caRes, err := ca.Send(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 5*time.Second, "every callback", func() bool {
				return len(gbSink.snapshot()) == len(tc.gallabox) && len(caSink.snapshot()) == len(tc.chatapp)
			})

			var got []message.Status
			for _, p := range gbSink.snapshot() {
				if !gallabox.VerifySignature(p.body, []byte(p.signature), []byte(DefaultGallaboxWebhookSecret)) {
					t.Fatalf("gallabox callback not signed with the webhook secret: %s", p.body)
				}
				sts, err := gallabox.ParseWebhook(p.body, "gallabox")
				if err != nil || len(sts) != 1 || sts[0].ProviderMessageID != gbRes.ProviderMessageID || sts[0].RecipientID != "4915112345678" || sts[0].AtMS == 0 {
					t.Fatalf("gallabox callback %s: %+v %v", p.body, sts, err)
				}
				want := gallabox.EventStatusReceived
				if sts[0].Status == message.StatusFailed {
					want = gallabox.EventStatusFailed
					if sts[0].ErrorCode != 131026 {
						t.Fatalf("failure %+v", sts[0])
					}
				}
				if p.event != want {
					t.Fatalf("event %q for %s", p.event, sts[0].Status)
				}
				got = append(got, sts[0].Status)
			}
			if !sameStatuses(got, tc.gallabox) {
				t.Fatalf("gallabox statuses %v, want %v", got, tc.gallabox)
			}
			got = nil
			for _, p := range caSink.snapshot() {
				if p.query.Get("token") != "tok-1" {
					t.Fatalf("chatapp callback without the URL's token: %v", p.query)
				}
				sts, err := chatapp.ParseWebhook(p.body, "chatapp")
				if err != nil || len(sts) != 1 || sts[0].ProviderMessageID != caRes.ProviderMessageID || sts[0].RecipientID != "4915112345678" || sts[0].AtMS == 0 {
					t.Fatalf("chatapp callback %s: %+v %v", p.body, sts, err)
				}
				if sts[0].Status == message.StatusFailed && sts[0].ErrorCode != 131026 {
					t.Fatalf("failure %+v", sts[0])
				}
				got = append(got, sts[0].Status)
			}
			if !sameStatuses(got, tc.chatapp) {
				t.Fatalf("chatapp statuses %v, want %v", got, tc.chatapp)
			}
			// The simulator counts a callback once its receiver has
			// answered, which is after the receiver has it.
			n := int64(len(tc.gallabox) + len(tc.chatapp))
			testwait.For(t, 5*time.Second, "the callbacks counted", func() bool { return s.Stats().CallbacksPosted >= n })
			st := s.Stats()
			if st.CallbacksPosted != n || st.CallbacksDropped != 0 || st.CallbacksRetried < tc.retried {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// sameStatuses compares two lists of statuses as sets with repeats:
// callbacks are posted by more than one poster and may arrive in any
// order.
func sameStatuses(got, want []message.Status) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
