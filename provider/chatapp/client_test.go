package chatapp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

const (
	testKeyID  = "LTAI5tTestKeyId0000"
	testSecret = "TestSecret0123456789abcdefABCDEF"
)

// fakeChatApp is a loopback ChatApp endpoint: it checks every request's
// signature with the reference signer, records the parameters and answers
// with whatever the test sets.
type fakeChatApp struct {
	ln   net.Listener
	srv  *fasthttp.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []recorded
	badSig     int
	status     int
	body       string
	retryAfter string
	delay      time.Duration
	lean       bool // answer without checking or recording
}

type recorded struct {
	method, path, contentType string
	params                    map[string]string
}

const okAnswer = `{"RequestId":"90E63D28-E31D-1EB2-8939-A9486641A1B2","Code":"OK","Message":"OK","MessageId":"61851ccb2f1365b16aee1a2b"}`

func startFake(t testing.TB, lean bool) *fakeChatApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeChatApp{ln: ln, done: make(chan struct{}), status: 200, body: okAnswer, lean: lean}
	f.srv = &fasthttp.Server{Handler: f.handle}
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = f.srv.Shutdown()
		_ = ln.Close()
		<-f.done
	})
	return f
}

func (f *fakeChatApp) handle(ctx *fasthttp.RequestCtx) {
	if f.lean {
		ctx.SetBodyString(okAnswer)
		return
	}
	form, err := url.ParseQuery(string(ctx.PostBody()))
	params := map[string]string{}
	for k, v := range form {
		if len(v) != 1 {
			err = errors.New("repeated parameter " + k)
		}
		params[k] = v[0]
	}
	sig := params["Signature"]
	delete(params, "Signature")
	_, want := refSign(string(ctx.Method()), params, testSecret)
	f.mu.Lock()
	if err != nil || sig != want {
		f.badSig++
	}
	f.requests = append(f.requests, recorded{
		method:      string(ctx.Method()),
		path:        string(ctx.Path()),
		contentType: string(ctx.Request.Header.ContentType()),
		params:      params,
	})
	status, body, ra, delay := f.status, f.body, f.retryAfter, f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	if ra != "" {
		ctx.Response.Header.Set("Retry-After", ra)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body)
}

func (f *fakeChatApp) answer(status int, body, retryAfter string) {
	f.mu.Lock()
	f.status, f.body, f.retryAfter = status, body, retryAfter
	f.mu.Unlock()
}

func (f *fakeChatApp) take(t *testing.T) []recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.badSig != 0 {
		t.Fatalf("%d requests with a wrong signature", f.badSig)
	}
	r := f.requests
	f.requests = nil
	return r
}

func newTestClient(t testing.TB, f *fakeChatApp, cfg Config) *Client {
	t.Helper()
	cfg.Endpoint = "http://" + f.ln.Addr().String()
	cfg.AccessKeyID, cfg.AccessKeySecret = testKeyID, testSecret
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(typ message.Type, content string) *message.Message {
	return &message.Message{Sender: "+8613800000000", Recipient: "+4915112345678", Type: typ, Content: []byte(content)}
}

var (
	nonceRE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

func TestSendRequest(t *testing.T) {
	fc := startFake(t, false)
	c := newTestClient(t, fc, Config{CustSpaceID: "cams-space-1"})
	common := map[string]string{
		"AccessKeyId": testKeyID, "Action": "SendChatappMessage", "ChannelType": "whatsapp", "CustSpaceId": "cams-space-1",
		"Format": "JSON", "From": "8613800000000", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
		"To": "4915112345678", "Version": "2020-06-06",
	}
	nonces := map[string]bool{}
	f := func(typ message.Type, content string, want map[string]string) {
		t.Helper()
		res, err := c.Send(context.Background(), msg(typ, content))
		if err != nil {
			t.Fatalf("%s %s: %v", typ, content, err)
		}
		if res.ProviderMessageID != "61851ccb2f1365b16aee1a2b" {
			t.Fatalf("provider id %q", res.ProviderMessageID)
		}
		reqs := fc.take(t)
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		r := reqs[0]
		if r.method != "POST" || r.path != "/" || r.contentType != "application/x-www-form-urlencoded" {
			t.Fatalf("request %s %s %s", r.method, r.path, r.contentType)
		}
		nonce, ts := r.params["SignatureNonce"], r.params["Timestamp"]
		if !nonceRE.MatchString(nonce) || nonces[nonce] || !timestampRE.MatchString(ts) {
			t.Fatalf("nonce %q timestamp %q", nonce, ts)
		}
		if at, err := time.Parse(timestampLayout, ts); err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
			t.Fatalf("timestamp %q is not now", ts)
		}
		nonces[nonce] = true
		delete(r.params, "SignatureNonce")
		delete(r.params, "Timestamp")
		for k, v := range common {
			want[k] = v
		}
		if len(r.params) != len(want) {
			t.Fatalf("%s: params\n got %v\nwant %v", typ, r.params, want)
		}
		for k, v := range want {
			if r.params[k] != v {
				t.Fatalf("%s: %s = %q, want %q", typ, k, r.params[k], v)
			}
		}
		for _, k := range []string{"Content", "TemplateParams", "Payload"} {
			if v, ok := r.params[k]; ok && !json.Valid([]byte(v)) {
				t.Fatalf("%s is not JSON: %s", k, v)
			}
		}
	}
	f(message.TypeText, `{"body":"Your room 412 is ready.","preview_url":false}`, map[string]string{
		"Type": "message", "MessageType": "text", "Content": `{"text":"Your room 412 is ready."}`})
	f(message.TypeText, `{"body":"Zimmer & Frühstück: 100% \"gut\" *~+\n\u00e9"}`, map[string]string{
		"Type": "message", "MessageType": "text", "Content": `{"text":"Zimmer & Frühstück: 100% \"gut\" *~+\n\u00e9"}`})
	f(message.TypeImage, `{"link":"https://example.com/room.jpg","caption":"Room 412"}`, map[string]string{
		"Type": "message", "MessageType": "image", "Content": `{"link":"https://example.com/room.jpg","caption":"Room 412"}`})
	f(message.TypeVideo, `{"link":"https://example.com/tour.mp4"}`, map[string]string{
		"Type": "message", "MessageType": "video", "Content": `{"link":"https://example.com/tour.mp4"}`})
	f(message.TypeAudio, `{"link":"https://example.com/welcome.ogg","caption":"dropped"}`, map[string]string{
		"Type": "message", "MessageType": "audio", "Content": `{"link":"https://example.com/welcome.ogg"}`})
	f(message.TypeDocument, `{"link":"https://example.com/inv/412.pdf?sig=x","caption":"Invoice"}`, map[string]string{
		"Type": "message", "MessageType": "document", "Content": `{"link":"https://example.com/inv/412.pdf?sig=x","caption":"Invoice","fileName":"412.pdf"}`})
	f(message.TypeDocument, `{"link":"https://example.com/d","filename":"Rechnung 412.pdf"}`, map[string]string{
		"Type": "message", "MessageType": "document", "Content": `{"link":"https://example.com/d","fileName":"Rechnung 412.pdf"}`})
	f(message.TypeLocation, `{"latitude":52.516275,"longitude":13.377704,"name":"Hotel Adlon","address":"Unter den Linden 77, Berlin"}`, map[string]string{
		"Type": "message", "MessageType": "location", "Content": `{"latitude":52.516275,"longitude":13.377704,"name":"Hotel Adlon","address":"Unter den Linden 77, Berlin"}`})
	f(message.TypeTemplate, `{"name":"booking_confirmation","language":{"code":"en_US"},"components":[
		{"type":"header"},
		{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"currency","currency":{"fallback_value":"€120.00","code":"EUR","amount_1000":120000}},{"type":"date_time","date_time":{"fallback_value":"21 Nov"}}]},
		{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"CONFIRM 412"}]},
		{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"CANCEL"}]}]}`, map[string]string{
		"Type": "template", "TemplateCode": "booking_confirmation", "TemplateName": "booking_confirmation", "Language": "en_US",
		"TemplateParams": `{"1":"Ana","2":"€120.00","3":"21 Nov"}`, "Payload": `["CONFIRM 412","CANCEL"]`})
	f(message.TypeTemplate, `{"name":"welcome","language":{"code":"de"},"components":[{"type":"BODY","parameters":[
		{"type":"text","parameter_name":"guest_name","text":"Jörg"},{"type":"text","parameter_name":"room","text":"412"}]}]}`, map[string]string{
		"Type": "template", "TemplateCode": "welcome", "TemplateName": "welcome", "Language": "de", "TemplateParams": `{"guest_name":"Jörg","room":"412"}`})
	f(message.TypeTemplate, `{"name":"hello_world","language":{"code":"en_US"}}`, map[string]string{
		"Type": "template", "TemplateCode": "hello_world", "TemplateName": "hello_world", "Language": "en_US"})
}

// TestSendBodyFixed pins the whole body of one request, for a fixed clock
// and nonce, to one computed with the reference signer.
func TestSendBodyFixed(t *testing.T) {
	fc := startFake(t, false)
	c := newTestClient(t, fc, Config{})
	c.now = func() time.Time { return time.Date(2026, 11, 21, 6, 30, 0, 0, time.FixedZone("CST", 8*3600)) }
	c.nonce = func(dst *[32]byte) { copy(dst[:], "0123456789abcdef0123456789abcdef") }
	r := c.reqs.Get().(*request)
	defer c.reqs.Put(r)
	if err := c.build(r, msg(message.TypeText, `{"body":"Hi Ana, room 412 is ready."}`)); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{
		"AccessKeyId": testKeyID, "Action": "SendChatappMessage", "ChannelType": "whatsapp", "Content": `{"text":"Hi Ana, room 412 is ready."}`,
		"Format": "JSON", "From": "8613800000000", "MessageType": "text", "SignatureMethod": "HMAC-SHA1",
		"SignatureNonce": "0123456789abcdef0123456789abcdef", "SignatureVersion": "1.0", "Timestamp": "2026-11-20T22:30:00Z",
		"To": "4915112345678", "Type": "message", "Version": "2020-06-06",
	}
	_, sig := refSign("POST", params, testSecret)
	want := "AccessKeyId=" + testKeyID + "&Action=SendChatappMessage&ChannelType=whatsapp" +
		"&Content=%7B%22text%22%3A%22Hi%20Ana%2C%20room%20412%20is%20ready.%22%7D&Format=JSON&From=8613800000000" +
		"&MessageType=text&SignatureMethod=HMAC-SHA1&SignatureNonce=0123456789abcdef0123456789abcdef&SignatureVersion=1.0" +
		"&Timestamp=2026-11-20T22%3A30%3A00Z&To=4915112345678&Type=message&Version=2020-06-06&Signature=" + url.QueryEscape(sig)
	if string(r.body) != want {
		t.Fatalf("body\n got %s\nwant %s", r.body, want)
	}
}

func TestSendRefusesBadMessages(t *testing.T) {
	fc := startFake(t, false)
	c := newTestClient(t, fc, Config{})
	f := func(name string, m *message.Message, wantInTitle string) {
		t.Helper()
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Class != provider.ClassPermanent || !strings.Contains(pe.Title, wantInTitle) {
			t.Fatalf("%s: got %v, want a permanent error mentioning %q", name, err, wantInTitle)
		}
		if n := len(fc.take(t)); n != 0 {
			t.Fatalf("%s: %d requests sent", name, n)
		}
	}
	bad := msg(message.TypeText, `{"body":"hi"}`)
	bad.Recipient = "4915112345678"
	f("recipient without +", bad, "recipient")
	bad = msg(message.TypeText, `{"body":"hi"}`)
	bad.Sender = "8613800000000"
	f("sender without +", bad, "sender")
	f("not JSON", msg(message.TypeText, `{"body":`), "content is not JSON")
	f("no body", msg(message.TypeText, `{"text":"hi"}`), "no body")
	f("empty body", msg(message.TypeText, `{"body":""}`), "non-empty string")
	f("image by id", msg(message.TypeImage, `{"id":"1003383421387256"}`), "needs a link")
	f("image not an object", msg(message.TypeImage, `"x"`), "not Meta's media object")
	f("document without a name", msg(message.TypeDocument, `{"link":"https://example.com/"}`), "no filename")
	f("location without longitude", msg(message.TypeLocation, `{"latitude":52.5}`), "latitude and longitude")
	f("location with text coordinates", msg(message.TypeLocation, `{"latitude":"north","longitude":1}`), "not Meta's location object")
	f("sticker", msg(message.TypeSticker, `{"link":"https://example.com/s.webp"}`), `"sticker" is not supported by chatapp`)
	f("interactive", msg(message.TypeInteractive, `{"type":"button"}`), "not supported by chatapp")
	tmpl := func(components string) *message.Message {
		return msg(message.TypeTemplate, `{"name":"t","language":{"code":"en"},"components":[`+components+`]}`)
	}
	f("template without name", msg(message.TypeTemplate, `{"language":{"code":"en"}}`), "no name")
	f("template without language", msg(message.TypeTemplate, `{"name":"t"}`), "no language")
	f("template not an object", msg(message.TypeTemplate, `[]`), "not Meta's template object")
	f("header parameter", tmpl(`{"type":"header","parameters":[{"type":"image","image":{"link":"x"}}]}`), "header parameters")
	f("url button parameter", tmpl(`{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"x"}]}`), `"url" button parameters`)
	f("quick reply without payload", tmpl(`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"text","text":"x"}]}`), "one payload")
	f("image in body", tmpl(`{"type":"body","parameters":[{"type":"image"}]}`), `body parameter of type "image"`)
	f("carousel", tmpl(`{"type":"carousel"}`), `component "carousel"`)
	f("two bodies", tmpl(`{"type":"body"},{"type":"body"}`), "two body")
}

func TestSendAnswers(t *testing.T) {
	fc := startFake(t, false)
	c := newTestClient(t, fc, Config{})
	m := msg(message.TypeText, `{"body":"hi"}`)
	f := func(status int, body, retryAfter string, want provider.Error) {
		t.Helper()
		fc.answer(status, body, retryAfter)
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%d %s: got %v, want a *provider.Error", status, body, err)
		}
		if *pe != want {
			t.Fatalf("%d %.50s:\n got %+v\nwant %+v", status, body, *pe, want)
		}
	}
	const rid = "90E63D28-E31D-1EB2-8939-A9486641A1B2"
	answer := func(code, message string) string {
		return `{"RequestId":"` + rid + `","Code":"` + code + `","Message":"` + message + `"}`
	}
	f(400, answer("Throttling.User", "Request was denied due to user flow control."), "", provider.Error{Class: provider.ClassThrottle,
		HTTPStatus: 400, Title: "Request was denied due to user flow control.", Details: "Throttling.User", TraceID: rid})
	f(503, answer("Throttling", "Request was denied due to request throttling."), "3", provider.Error{Class: provider.ClassThrottle,
		HTTPStatus: 503, Title: "Request was denied due to request throttling.", Details: "Throttling", TraceID: rid, RetryAfter: 3 * time.Second})
	f(429, `{}`, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Title: "Too Many Requests"})
	f(503, answer("ServiceUnavailable", "The request has failed due to a temporary failure of the server."), "", provider.Error{Class: provider.ClassRetry,
		HTTPStatus: 503, Title: "The request has failed due to a temporary failure of the server.", Details: "ServiceUnavailable", TraceID: rid})
	f(500, answer("InternalError", "The request processing has failed due to some unknown error."), "", provider.Error{Class: provider.ClassRetry,
		HTTPStatus: 500, Title: "The request processing has failed due to some unknown error.", Details: "InternalError", TraceID: rid})
	f(404, answer("InvalidAccessKeyId.NotFound", "Specified access key is not found."), "", provider.Error{Class: provider.ClassStopSender,
		HTTPStatus: 404, Title: "Specified access key is not found.", Details: "InvalidAccessKeyId.NotFound", TraceID: rid})
	f(400, answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation."), "", provider.Error{Class: provider.ClassStopSender,
		HTTPStatus: 400, Title: "Specified signature is not matched with our calculation.", Details: "SignatureDoesNotMatch", TraceID: rid})
	f(403, answer("Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM."), "", provider.Error{Class: provider.ClassStopSender,
		HTTPStatus: 403, Title: "User not authorized to operate on the specified resource, or this API doesn't support RAM.", Details: "Forbidden.RAM", TraceID: rid})
	f(400, answer("InvalidParameter.PhoneNumberError", "The phone number is invalid."), "", provider.Error{Class: provider.ClassPermanent,
		HTTPStatus: 400, Title: "The phone number is invalid.", Details: "InvalidParameter.PhoneNumberError", TraceID: rid})
	// ChatApp refuses some sends with HTTP 200 and a Code other than OK.
	f(200, answer("Template.NotExist", "The template does not exist."), "", provider.Error{Class: provider.ClassPermanent,
		HTTPStatus: 200, Title: "The template does not exist.", Details: "Template.NotExist", TraceID: rid})
	f(200, `{"Code":"Throttling.Api"}`, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 200, Title: "Throttling.Api", Details: "Throttling.Api"})
	f(502, `<html>Bad Gateway</html>`, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 502, Title: "Bad Gateway"})
	f(401, ``, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 401, Title: "Unauthorized"})
	f(400, `{"Code":`, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Title: "Bad Request"})

	// An escaped OK is still OK.
	fc.answer(200, `{"Code":"\u004fK","MessageId":"m-1"}`, "")
	if res, err := c.Send(context.Background(), m); err != nil || res.ProviderMessageID != "m-1" {
		t.Fatalf("escaped OK: %+v %v", res, err)
	}
	for _, body := range []string{`{"Code":"OK","RequestId":"x"}`, `{"Code":"OK","MessageId":""}`, `{"MessageId":"x"}`, `not json`, ``} {
		fc.answer(200, body, "")
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.Is(err, ErrNoMessageID) || errors.As(err, &pe) {
			t.Fatalf("%q: got %v, want ErrNoMessageID", body, err)
		}
	}
}

func TestSendNetworkErrors(t *testing.T) {
	fc := startFake(t, false)
	m := msg(message.TypeText, `{"body":"hi"}`)
	isPlain := func(name string, err error) {
		t.Helper()
		var pe *provider.Error
		if err == nil || errors.As(err, &pe) || provider.ClassOf(err) != provider.ClassRetry {
			t.Fatalf("%s: got %v, want a plain error of class retry", name, err)
		}
	}
	c := newTestClient(t, fc, Config{Timeout: 100 * time.Millisecond})
	fc.mu.Lock()
	fc.delay = 400 * time.Millisecond
	fc.mu.Unlock()
	start := time.Now()
	_, err := c.Send(context.Background(), m)
	isPlain("timeout", err)
	if !errors.Is(err, fasthttp.ErrTimeout) || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Send(ctx, m)
	isPlain("canceled", err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New(Config{Endpoint: "http://" + addr, AccessKeyID: testKeyID, AccessKeySecret: testSecret, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), m)
	isPlain("refused", err)
}

func TestClassForCode(t *testing.T) {
	f := func(code string, status int, want provider.Class) {
		t.Helper()
		if got := ClassForCode(code, status); got != want {
			t.Fatalf("ClassForCode(%q, %d) = %v, want %v", code, status, got, want)
		}
	}
	f("Throttling", 400, provider.ClassThrottle)
	f("Throttling.User", 503, provider.ClassThrottle)
	f("Throttling.Api", 200, provider.ClassThrottle)
	f("", 429, provider.ClassThrottle)
	f("ServiceUnavailable", 503, provider.ClassRetry)
	f("ServiceUnavailable", 200, provider.ClassRetry)
	f("InternalError", 500, provider.ClassRetry)
	f("SignatureNonceUsed", 400, provider.ClassRetry)
	f("", 500, provider.ClassRetry)
	f("", 0, provider.ClassRetry)
	f("InvalidAccessKeyId.NotFound", 404, provider.ClassStopSender)
	f("InvalidAccessKeyId.Inactive", 400, provider.ClassStopSender)
	f("SignatureDoesNotMatch", 400, provider.ClassStopSender)
	f("Forbidden.RAM", 403, provider.ClassStopSender)
	f("", 403, provider.ClassStopSender)
	f("", 401, provider.ClassStopSender)
	f("InvalidParameter", 400, provider.ClassPermanent)
	f("Template.NotExist", 200, provider.ClassPermanent)
	f("", 404, provider.ClassPermanent)
}

func TestConfigValidate(t *testing.T) {
	ok := Config{AccessKeyID: testKeyID, AccessKeySecret: testSecret}
	c, err := New(ok)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if c.Name() != "chatapp" || string(c.uri) != "https://cams.ap-southeast-1.aliyuncs.com/" || c.hc.Addr != "cams.ap-southeast-1.aliyuncs.com:443" {
		t.Fatalf("defaults: %s %s %s", c.Name(), c.uri, c.hc.Addr)
	}
	f := func(name string, change func(c *Config)) {
		t.Helper()
		c := ok
		change(&c)
		if _, err := New(c); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("no key id", func(c *Config) { c.AccessKeyID = "" })
	f("no secret", func(c *Config) { c.AccessKeySecret = "" })
	f("ftp endpoint", func(c *Config) { c.Endpoint = "ftp://chatapp.cn-shanghai.aliyuncs.com" })
	f("endpoint with query", func(c *Config) { c.Endpoint = "https://chatapp.cn-shanghai.aliyuncs.com/?a=b" })
	f("negative timeout", func(c *Config) { c.Timeout = -time.Second })
	f("negative conns", func(c *Config) { c.MaxConns = -1 })
}
