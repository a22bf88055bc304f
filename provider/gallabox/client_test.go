package gallabox

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// fakeGallabox is a loopback HTTP server that records what it receives and
// answers with whatever the test sets.
type fakeGallabox struct {
	ln   net.Listener
	srv  *fasthttp.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []recorded
	status     int
	body       string
	retryAfter string
	delay      time.Duration
	lean       bool // answer without recording
}

type recorded struct {
	method, path, apiKey, apiSecret, contentType string
	body                                         []byte
}

const okAnswer = `{"id":"6655f0c2a1b2c3d4e5f60718","status":"ACCEPTED","message":"Message queued"}`

func startFake(t testing.TB, lean bool) *fakeGallabox {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeGallabox{ln: ln, done: make(chan struct{}), status: 202, body: okAnswer, lean: lean}
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

func (f *fakeGallabox) handle(ctx *fasthttp.RequestCtx) {
	if f.lean {
		ctx.SetStatusCode(202)
		ctx.SetBodyString(okAnswer)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{
		method:      string(ctx.Method()),
		path:        string(ctx.Path()),
		apiKey:      string(ctx.Request.Header.Peek("apiKey")),
		apiSecret:   string(ctx.Request.Header.Peek("apiSecret")),
		contentType: string(ctx.Request.Header.ContentType()),
		body:        append([]byte(nil), ctx.PostBody()...),
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

func (f *fakeGallabox) answer(status int, body, retryAfter string) {
	f.mu.Lock()
	f.status, f.body, f.retryAfter = status, body, retryAfter
	f.mu.Unlock()
}

func (f *fakeGallabox) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

const (
	testSender  = "+15550001000"
	testChannel = "629e0b6c3d6ad600044197a0"
	testKey     = "66796b85679dab2b70d1c3d8"
	testSecret  = "ab5a4f06a3334bedbc14fee39e2359ad"
)

func newTestClient(t testing.TB, f *fakeGallabox, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(Config{
		BaseURL:   "http://" + f.ln.Addr().String(),
		APIKey:    testKey,
		APISecret: testSecret,
		ChannelID: map[string]string{testSender: testChannel},
		Timeout:   timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(typ message.Type, content string) *message.Message {
	return &message.Message{Sender: testSender, Recipient: "+4915112345678", Type: typ, Content: []byte(content)}
}

const head = `{"channelId":"` + testChannel + `","channelType":"whatsapp","recipient":{"name":"","phone":"4915112345678"},"whatsapp":`

func TestSendBody(t *testing.T) {
	fg := startFake(t, false)
	c := newTestClient(t, fg, 5*time.Second)
	f := func(typ message.Type, content, wantWhatsApp string) {
		t.Helper()
		res, err := c.Send(context.Background(), msg(typ, content))
		if err != nil {
			t.Fatalf("%s: %v", content, err)
		}
		if res.ProviderMessageID != "6655f0c2a1b2c3d4e5f60718" {
			t.Fatalf("provider id %q", res.ProviderMessageID)
		}
		reqs := fg.take()
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		r := reqs[0]
		if r.method != "POST" || r.path != "/devapi/messages/whatsapp" || r.apiKey != testKey || r.apiSecret != testSecret || r.contentType != "application/json" {
			t.Fatalf("request %+v", r)
		}
		if want := head + wantWhatsApp + `}`; string(r.body) != want {
			t.Fatalf("%s: body\n got %s\nwant %s", content, r.body, want)
		}
		if !json.Valid(r.body) {
			t.Fatalf("body is not JSON: %s", r.body)
		}
	}
	f(message.TypeText, `{"body":"Your room 412 is ready.","preview_url":false}`,
		`{"type":"text","text":{"body":"Your room 412 is ready."}}`)
	f(message.TypeText, `{"preview_url":true,"body":"Line 1\nLine \"2\" \u00e9"}`,
		`{"type":"text","text":{"body":"Line 1\nLine \"2\" \u00e9"}}`)
	// Positional body parameters, a document header, two buttons.
	f(message.TypeTemplate, `{"name":"booking_confirmation","language":{"code":"en_US"},"components":[
		{"type":"header","parameters":[{"type":"document","document":{"link":"https://example.com/inv/412.pdf"}}]},
		{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"currency","currency":{"fallback_value":"€120.00","code":"EUR","amount_1000":120000}},{"type":"date_time","date_time":{"fallback_value":"21 Nov 2026"}}]},
		{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"CONFIRM-412"}]},
		{"type":"button","sub_type":"url","index":1,"parameters":[{"type":"text","text":"412?lang=en"}]}]}`,
		`{"type":"template","template":{"templateName":"booking_confirmation","language":"en_US","bodyValues":{"1":"Ana","2":"€120.00","3":"21 Nov 2026"},`+
			`"headerValues":{"mediaUrl":"https://example.com/inv/412.pdf","mediaName":"412.pdf"},`+
			`"buttonValues":[{"index":0,"sub_type":"quick_reply","parameters":{"type":"payload","payload":"CONFIRM-412"}},`+
			`{"index":1,"sub_type":"url","parameters":{"type":"text","text":"412?lang=en"}}]}}`)
	// Named parameters, an image header with a name, a text header.
	f(message.TypeTemplate, `{"name":"welcome","language":{"code":"de"},"components":[
		{"type":"HEADER","parameters":[{"type":"image","image":{"link":"https://example.com/lobby.jpg","filename":"Lobby"}}]},
		{"type":"BODY","parameters":[{"type":"text","parameter_name":"guest_name","text":"Jörg \"JJ\""},{"type":"text","parameter_name":"room","text":"412"}]}]}`,
		`{"type":"template","template":{"templateName":"welcome","language":"de","bodyValues":{"guest_name":"Jörg \"JJ\"","room":"412"},`+
			`"headerValues":{"mediaUrl":"https://example.com/lobby.jpg","mediaName":"Lobby"}}}`)
	f(message.TypeTemplate, `{"name":"checkin_reminder","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"text","text":"Tomorrow"}]}]}`,
		`{"type":"template","template":{"templateName":"checkin_reminder","language":"en","headerValues":{"1":"Tomorrow"}}}`)
	f(message.TypeTemplate, `{"name":"hello_world","language":{"code":"en_US"}}`,
		`{"type":"template","template":{"templateName":"hello_world","language":"en_US"}}`)
}

func TestSendRefusesBadMessages(t *testing.T) {
	fg := startFake(t, false)
	c := newTestClient(t, fg, 5*time.Second)
	f := func(name string, m *message.Message, wantInTitle string) {
		t.Helper()
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Class != provider.ClassPermanent || !strings.Contains(pe.Title, wantInTitle) {
			t.Fatalf("%s: got %v, want a permanent error mentioning %q", name, err, wantInTitle)
		}
		if n := len(fg.take()); n != 0 {
			t.Fatalf("%s: %d requests sent", name, n)
		}
	}
	text := `{"body":"hi"}`
	other := msg(message.TypeText, text)
	other.Sender = "+15559999999"
	f("unknown sender", other, "+15559999999 has no Gallabox channel")
	bad := msg(message.TypeText, text)
	bad.Recipient = "4915112345678"
	f("recipient without +", bad, "recipient")
	f("image", msg(message.TypeImage, `{"link":"https://example.com/a.jpg"}`), `"image" is not supported by gallabox`)
	f("interactive", msg(message.TypeInteractive, `{"type":"button"}`), "not supported by gallabox")
	f("not JSON", msg(message.TypeText, `{"body":"hi"`), "content is not JSON")
	f("no body", msg(message.TypeText, `{"text":"hi"}`), "no body")
	f("empty body", msg(message.TypeText, `{"body":""}`), "non-empty string")
	f("body not a string", msg(message.TypeText, `{"body":1}`), "non-empty string")
	tmpl := func(components string) *message.Message {
		return msg(message.TypeTemplate, `{"name":"t","language":{"code":"en"},"components":[`+components+`]}`)
	}
	f("template not an object", msg(message.TypeTemplate, `["t"]`), "not Meta's template object")
	f("template without name", msg(message.TypeTemplate, `{"language":{"code":"en"}}`), "no name")
	f("footer component", tmpl(`{"type":"footer"}`), `component "footer" is not supported`)
	f("image in body", tmpl(`{"type":"body","parameters":[{"type":"image","image":{"link":"x"}}]}`), `body parameter of type "image"`)
	f("header by media id", tmpl(`{"type":"header","parameters":[{"type":"image","image":{"id":"1003383421387256"}}]}`), "needs a link")
	f("header without object", tmpl(`{"type":"header","parameters":[{"type":"video"}]}`), "no video object")
	f("location header", tmpl(`{"type":"header","parameters":[{"type":"location","location":{}}]}`), `"location" is not supported`)
	f("two bodies", tmpl(`{"type":"body"},{"type":"body"}`), "two body")
	f("button without sub_type", tmpl(`{"type":"button","index":"0","parameters":[{"type":"payload","payload":"x"}]}`), "sub_type")
	f("button index", tmpl(`{"type":"button","sub_type":"url","index":"x","parameters":[{"type":"text","text":"x"}]}`), "button index")
	f("button with two parameters", tmpl(`{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}`), "exactly one")
	f("button coupon", tmpl(`{"type":"button","sub_type":"copy_code","index":"0","parameters":[{"type":"coupon_code","coupon_code":"X"}]}`), `"coupon_code"`)

	// A default channel takes the senders the map does not list.
	c2, err := New(Config{BaseURL: "http://" + fg.ln.Addr().String(), APIKey: testKey, APISecret: testSecret, DefaultChannelID: "default-channel"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Send(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if r := fg.take(); len(r) != 1 || !strings.HasPrefix(string(r[0].body), `{"channelId":"default-channel"`) {
		t.Fatalf("default channel: %+v", r)
	}
}

func TestSendAnswers(t *testing.T) {
	fg := startFake(t, false)
	c := newTestClient(t, fg, 5*time.Second)
	m := msg(message.TypeText, `{"body":"hi"}`)
	ok := func(status int, body, wantID string) {
		t.Helper()
		fg.answer(status, body, "")
		res, err := c.Send(context.Background(), m)
		if err != nil || res.ProviderMessageID != wantID {
			t.Fatalf("%d %s: got %+v, %v; want id %q", status, body, res, err, wantID)
		}
	}
	ok(202, `{"id":"6655f0c2a1b2c3d4e5f60718","status":"ACCEPTED"}`, "6655f0c2a1b2c3d4e5f60718")
	ok(200, `{"messageId":"m-1","status":"ok"}`, "m-1")
	ok(201, `{"_id":"6655f0c2a1b2c3d4e5f60719","channelId":"x"}`, "6655f0c2a1b2c3d4e5f60719")
	ok(200, `{"_id":"b","messageId":"a"}`, "a")
	for _, body := range []string{`{"status":"ACCEPTED"}`, `{"id":""}`, `{"id":7}`, `[{"id":"x"}]`, ``, `<html/>`} {
		fg.answer(200, body, "")
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.Is(err, ErrNoMessageID) || errors.As(err, &pe) || provider.ClassOf(err) != provider.ClassRetry {
			t.Fatalf("%q: got %v, want ErrNoMessageID", body, err)
		}
	}
}

func TestSendErrors(t *testing.T) {
	fg := startFake(t, false)
	c := newTestClient(t, fg, 5*time.Second)
	m := msg(message.TypeText, `{"body":"hi"}`)
	f := func(status int, body, retryAfter string, want provider.Error) {
		t.Helper()
		fg.answer(status, body, retryAfter)
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%d %s: got %v, want a *provider.Error", status, body, err)
		}
		if *pe != want {
			t.Fatalf("%d %.40s:\n got %+v\nwant %+v", status, body, *pe, want)
		}
	}
	f(400, `{"statusCode":400,"message":"Invalid channelId","error":"Bad Request"}`, "",
		provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Title: "Invalid channelId"})
	f(400, `{"statusCode":400,"message":["recipient.phone must be a string","whatsapp.type is required"],"error":"Bad Request"}`, "",
		provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Title: "recipient.phone must be a string; whatsapp.type is required"})
	f(404, `{"message":"Template not found"}`, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 404, Title: "Template not found"})
	f(401, `{"statusCode":401,"message":"Unauthorized"}`, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 401, Title: "Unauthorized"})
	f(403, `{"message":"Channel does not belong to this account"}`, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 403, Title: "Channel does not belong to this account"})
	f(429, `{"message":"Too many requests"}`, "12", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Title: "Too many requests", RetryAfter: 12 * time.Second})
	f(500, `{"message":"Internal server error"}`, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 500, Title: "Internal server error"})
	f(502, `<html>Bad Gateway</html>`, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 502, Title: "Bad Gateway"})
	f(503, ``, "7", provider.Error{Class: provider.ClassRetry, HTTPStatus: 503, Title: "Service Unavailable", RetryAfter: 7 * time.Second})
	f(422, `{"message":{"nested":true}}`, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 422, Title: "Unprocessable Entity"})
}

func TestSendNetworkErrors(t *testing.T) {
	fg := startFake(t, false)
	m := msg(message.TypeText, `{"body":"hi"}`)
	isPlain := func(name string, err error) {
		t.Helper()
		var pe *provider.Error
		if err == nil || errors.As(err, &pe) || provider.ClassOf(err) != provider.ClassRetry {
			t.Fatalf("%s: got %v, want a plain error of class retry", name, err)
		}
	}
	c := newTestClient(t, fg, 100*time.Millisecond)
	fg.mu.Lock()
	fg.delay = 400 * time.Millisecond
	fg.mu.Unlock()
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
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New(Config{BaseURL: "http://" + addr, APIKey: testKey, APISecret: testSecret, DefaultChannelID: testChannel, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), m)
	isPlain("refused", err)
}

func TestClassForStatus(t *testing.T) {
	for status, want := range map[int]provider.Class{
		400: provider.ClassPermanent, 404: provider.ClassPermanent, 409: provider.ClassPermanent, 422: provider.ClassPermanent,
		401: provider.ClassStopSender, 403: provider.ClassStopSender, 429: provider.ClassThrottle,
		500: provider.ClassRetry, 502: provider.ClassRetry, 503: provider.ClassRetry, 0: provider.ClassRetry,
	} {
		if got := ClassForStatus(status); got != want {
			t.Errorf("ClassForStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{APIKey: testKey, APISecret: testSecret, ChannelID: map[string]string{testSender: testChannel}}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	f := func(name string, change func(c *Config)) {
		t.Helper()
		c := ok
		c.ChannelID = map[string]string{testSender: testChannel}
		change(&c)
		if _, err := New(c); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("no key", func(c *Config) { c.APIKey = "" })
	f("no secret", func(c *Config) { c.APISecret = "" })
	f("secret with newline", func(c *Config) { c.APISecret = "a\nb" })
	f("no channels", func(c *Config) { c.ChannelID = nil })
	f("sender not E.164", func(c *Config) { c.ChannelID = map[string]string{"15550001000": testChannel} })
	f("channel with quote", func(c *Config) { c.ChannelID = map[string]string{testSender: `a"b`} })
	f("empty channel", func(c *Config) { c.ChannelID = map[string]string{testSender: ""} })
	f("bad default channel", func(c *Config) { c.DefaultChannelID = "a b" })
	f("ftp url", func(c *Config) { c.BaseURL = "ftp://server.gallabox.com" })
	f("negative timeout", func(c *Config) { c.Timeout = -time.Second })
	f("negative conns", func(c *Config) { c.MaxConns = -1 })
}
