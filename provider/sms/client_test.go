package sms

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// fakeTwilio is a loopback HTTP server that records what it receives and
// answers with whatever the test sets.
type fakeTwilio struct {
	ln   net.Listener
	srv  *fasthttp.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []recorded
	status     int
	body       string
	retryAfter string
	delay      time.Duration
	// lean answers without recording, so that allocation counts see the
	// client only.
	lean bool
}

type recorded struct {
	method, path, auth, contentType string
	form                            url.Values
}

const okAnswer = `{"account_sid":"AC00000000000000000000000000000001","api_version":"2010-04-01","body":"hi","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","date_sent":null,"date_updated":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,"error_message":null,"from":"+15557770000","messaging_service_sid":null,"num_media":"0","num_segments":"1","price":null,"price_unit":"USD","sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued","subresource_uris":{"media":"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f/Media.json"},"to":"+4915112345678","uri":"/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f.json"}`

func newFakeTwilio(t testing.TB) *fakeTwilio {
	t.Helper()
	return startFake(t, false)
}

func startFake(t testing.TB, lean bool) *fakeTwilio {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTwilio{ln: ln, done: make(chan struct{}), status: 201, body: okAnswer, lean: lean}
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

func (f *fakeTwilio) handle(ctx *fasthttp.RequestCtx) {
	if f.lean {
		ctx.SetStatusCode(201)
		ctx.SetBodyString(okAnswer)
		return
	}
	form, _ := url.ParseQuery(string(ctx.PostBody()))
	f.mu.Lock()
	f.requests = append(f.requests, recorded{
		method:      string(ctx.Method()),
		path:        string(ctx.Path()),
		auth:        string(ctx.Request.Header.Peek("Authorization")),
		contentType: string(ctx.Request.Header.ContentType()),
		form:        form,
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

func (f *fakeTwilio) answer(status int, body, retryAfter string) {
	f.mu.Lock()
	f.status, f.body, f.retryAfter = status, body, retryAfter
	f.mu.Unlock()
}

func (f *fakeTwilio) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

const (
	testSender  = "+15550001000"
	testSender2 = "+15550002000"
	testSID     = "AC00000000000000000000000000000001"
	testToken   = "test-auth-token"
)

func newTestClient(t *testing.T, f *fakeTwilio, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(Config{
		BaseURL:     "http://" + f.ln.Addr().String(),
		AccountSID:  testSID,
		AuthToken:   testToken,
		From:        map[string]string{testSender: "+15557770000", testSender2: "Hotel Adlon"},
		DefaultFrom: "",
		Timeout:     timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func textMsg(sender, body string) *message.Message {
	return &message.Message{Sender: sender, Recipient: "+4915112345678", Type: message.TypeText, Content: []byte(body)}
}

func TestSendRequest(t *testing.T) {
	ft := newFakeTwilio(t)
	c := newTestClient(t, ft, 5*time.Second)
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testSID+":"+testToken))
	f := func(m *message.Message, wantFrom, wantBody string) {
		t.Helper()
		res, err := c.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", m.Content, err)
		}
		if res.ProviderMessageID != "SM1f0e8ae6ade43cb3c0ce4525424e404f" {
			t.Fatalf("provider id %q", res.ProviderMessageID)
		}
		reqs := ft.take()
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		r := reqs[0]
		if r.method != "POST" || r.path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" || r.auth != wantAuth ||
			r.contentType != "application/x-www-form-urlencoded" {
			t.Fatalf("request %s %s auth %q type %q", r.method, r.path, r.auth, r.contentType)
		}
		if len(r.form) != 3 || r.form.Get("To") != "+4915112345678" || r.form.Get("From") != wantFrom || r.form.Get("Body") != wantBody {
			t.Fatalf("form %v, want From %q Body %q", r.form, wantFrom, wantBody)
		}
	}
	f(textMsg(testSender, `{"body":"Your room 412 is ready.","preview_url":false}`), "+15557770000", "Your room 412 is ready.")
	f(textMsg(testSender2, `{"preview_url":true, "body" : "Zimmer & Frühstück: 100% \"gut\"\n\u00e9\ud83d\ude00 a+b=c"}`),
		"Hotel Adlon", "Zimmer & Frühstück: 100% \"gut\"\né😀 a+b=c")
	f(textMsg(testSender, `{"body":"`+strings.Repeat("ü", MaxBodyChars)+`"}`), "+15557770000", strings.Repeat("ü", MaxBodyChars))
}

func TestSendRefusesBadMessages(t *testing.T) {
	ft := newFakeTwilio(t)
	c := newTestClient(t, ft, 5*time.Second)
	f := func(name string, m *message.Message, wantInTitle string) {
		t.Helper()
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Class != provider.ClassPermanent || !strings.Contains(pe.Title, wantInTitle) {
			t.Fatalf("%s: got %v, want a permanent error mentioning %q", name, err, wantInTitle)
		}
		if n := len(ft.take()); n != 0 {
			t.Fatalf("%s: %d requests sent", name, n)
		}
	}
	f("unknown sender", textMsg("+15559999999", `{"body":"hi"}`), "+15559999999 has no SMS From")
	bad := textMsg(testSender, `{"body":"hi"}`)
	bad.Recipient = "4915112345678"
	f("recipient without +", bad, "recipient")
	image := textMsg(testSender, `{"link":"https://example.com/a.jpg"}`)
	image.Type = message.TypeImage
	f("image", image, "sms carries text only")
	tmpl := textMsg(testSender, `{"name":"welcome","language":{"code":"en"}}`)
	tmpl.Type = message.TypeTemplate
	f("template", tmpl, "sms carries text only")
	f("not JSON", textMsg(testSender, `{"body":"hi"`), "content is not JSON")
	f("no body", textMsg(testSender, `{"text":"hi"}`), "no body")
	f("body not a string", textMsg(testSender, `{"body":42}`), "not a string")
	f("empty body", textMsg(testSender, `{"body":""}`), "empty")
	f("too long", textMsg(testSender, `{"body":"`+strings.Repeat("x", MaxBodyChars+1)+`"}`), "1601 characters")

	// A configured default takes senders the map does not list.
	c2, err := New(Config{BaseURL: "http://" + ft.ln.Addr().String(), AccountSID: testSID, AuthToken: testToken, DefaultFrom: "WAGATE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Send(context.Background(), textMsg("+15559999999", `{"body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	if r := ft.take(); len(r) != 1 || r[0].form.Get("From") != "WAGATE" {
		t.Fatalf("default From: %+v", r)
	}
}

// Error bodies as Twilio sends them.
const (
	body21211 = `{"code": 21211, "message": "The 'To' number +4915 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
	body21610 = `{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}`
	body20003 = `{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authentication Error - invalid username", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`
	body20429 = `{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}`
	body20500 = `{"code": 20500, "message": "Internal Server Error", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}`
	body20404 = `{"code": 20404, "message": "The requested resource /2010-04-01/Accounts/AC0/Messages.json was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}`
	body14107 = `{"code": 14107, "message": "SMS send rate limit exceeded", "more_info": "https://www.twilio.com/docs/errors/14107", "status": 400}`
)

func TestSendErrors(t *testing.T) {
	ft := newFakeTwilio(t)
	c := newTestClient(t, ft, 5*time.Second)
	m := textMsg(testSender, `{"body":"hi"}`)
	f := func(status int, body, retryAfter string, want provider.Error) {
		t.Helper()
		ft.answer(status, body, retryAfter)
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%d %s: got %v, want a *provider.Error", status, body, err)
		}
		if *pe != want {
			t.Fatalf("%d %.40s:\n got %+v\nwant %+v", status, body, *pe, want)
		}
		if provider.ClassOf(err) != want.Class {
			t.Fatalf("ClassOf = %v, want %v", provider.ClassOf(err), want.Class)
		}
	}
	f(400, body21211, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 21211,
		Title: "The 'To' number +4915 is not a valid phone number.", Details: "https://www.twilio.com/docs/errors/21211"})
	f(400, body21610, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 21610,
		Title: "Attempt to send to unsubscribed recipient", Details: "https://www.twilio.com/docs/errors/21610"})
	f(404, body20404, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 404, Code: 20404,
		Title: "The requested resource /2010-04-01/Accounts/AC0/Messages.json was not found", Details: "https://www.twilio.com/docs/errors/20404"})
	f(401, body20003, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 401, Code: 20003,
		Title: "Authentication Error - invalid username", Details: "Your AccountSid or AuthToken was incorrect."})
	f(403, `{"code":20003,"message":"Permission Denied","status":403}`, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 403, Code: 20003,
		Title: "Permission Denied"})
	f(429, body20429, "30", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Code: 20429,
		Title: "Too Many Requests", Details: "https://www.twilio.com/docs/errors/20429", RetryAfter: 30 * time.Second})
	f(400, body14107, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 400, Code: 14107,
		Title: "SMS send rate limit exceeded", Details: "https://www.twilio.com/docs/errors/14107"})
	f(500, body20500, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 500, Code: 20500,
		Title: "Internal Server Error", Details: "https://www.twilio.com/docs/errors/20500"})
	// Answers that are not Twilio's error object.
	f(503, `<html>down</html>`, "5", provider.Error{Class: provider.ClassRetry, HTTPStatus: 503, Title: "Service Unavailable", RetryAfter: 5 * time.Second})
	f(429, ``, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Title: "Too Many Requests"})
	f(400, `{"code":`, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Title: "Bad Request"})
	// A success without a sid is not a success.
	for _, body := range []string{`{"status":"queued"}`, `{"sid":""}`, `{"sid":12}`, `not json`} {
		ft.answer(201, body, "")
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.Is(err, ErrNoMessageID) || errors.As(err, &pe) {
			t.Fatalf("%s: got %v, want ErrNoMessageID", body, err)
		}
	}
}

func TestSendNetworkErrors(t *testing.T) {
	ft := newFakeTwilio(t)
	m := textMsg(testSender, `{"body":"hi"}`)
	isPlain := func(name string, err error) {
		t.Helper()
		var pe *provider.Error
		if err == nil || errors.As(err, &pe) || provider.ClassOf(err) != provider.ClassRetry {
			t.Fatalf("%s: got %v, want a plain error of class retry", name, err)
		}
	}
	c := newTestClient(t, ft, 100*time.Millisecond)
	ft.mu.Lock()
	ft.delay = 400 * time.Millisecond
	ft.mu.Unlock()
	start := time.Now()
	_, err := c.Send(context.Background(), m)
	isPlain("timeout", err)
	if !errors.Is(err, fasthttp.ErrTimeout) || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("timeout: got %v after %v", err, time.Since(start))
	}

	c = newTestClient(t, ft, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Send(ctx, m)
	isPlain("ctx deadline", err)
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("ctx deadline: took %v", d)
	}

	time.Sleep(500 * time.Millisecond) // let the slow handlers finish
	ft.take()
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = c.Send(ctx, m)
	isPlain("canceled", err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(ft.take()); n != 0 {
		t.Fatal("a canceled send reached the server")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New(Config{BaseURL: "http://" + addr, AccountSID: testSID, AuthToken: testToken, DefaultFrom: "WAGATE", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), m)
	isPlain("refused", err)
}

func TestClassForCode(t *testing.T) {
	f := func(code, status int, want provider.Class) {
		t.Helper()
		if got := ClassForCode(code, status); got != want {
			t.Fatalf("ClassForCode(%d, %d) = %v, want %v", code, status, got, want)
		}
	}
	f(21211, 400, provider.ClassPermanent)
	f(21602, 400, provider.ClassPermanent)
	f(0, 404, provider.ClassPermanent)
	f(20003, 401, provider.ClassStopSender)
	f(0, 403, provider.ClassStopSender)
	f(20429, 429, provider.ClassThrottle)
	f(0, 429, provider.ClassThrottle)
	f(14107, 400, provider.ClassThrottle)
	f(21611, 400, provider.ClassThrottle)
	f(20500, 500, provider.ClassRetry)
	f(0, 502, provider.ClassRetry)
	f(0, 0, provider.ClassRetry)
}

func TestConfigValidate(t *testing.T) {
	ok := Config{AccountSID: testSID, AuthToken: testToken, From: map[string]string{testSender: "+15557770000"}}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	f := func(name string, change func(c *Config)) {
		t.Helper()
		c := ok
		c.From = map[string]string{testSender: "+15557770000"}
		change(&c)
		if _, err := New(c); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("no sid", func(c *Config) { c.AccountSID = "" })
	f("sid with slash", func(c *Config) { c.AccountSID = "AC/1" })
	f("no token", func(c *Config) { c.AuthToken = "" })
	f("token with space", func(c *Config) { c.AuthToken = "a b" })
	f("no From at all", func(c *Config) { c.From = nil })
	f("sender not E.164", func(c *Config) { c.From = map[string]string{"15550001000": "+15557770000"} })
	f("From too long", func(c *Config) { c.From = map[string]string{testSender: "HotelAdlonBerlin"} })
	f("From all digits", func(c *Config) { c.From = map[string]string{testSender: "12345"} })
	f("From with dash", func(c *Config) { c.From = map[string]string{testSender: "Hotel-A"} })
	f("bad DefaultFrom", func(c *Config) { c.DefaultFrom = "+0123" })
	f("ftp url", func(c *Config) { c.BaseURL = "ftp://api.twilio.com" })
	f("url with query", func(c *Config) { c.BaseURL = "https://api.twilio.com/?x=1" })
	f("negative timeout", func(c *Config) { c.Timeout = -time.Second })
	f("negative conns", func(c *Config) { c.MaxConns = -1 })
	for s, want := range map[string]bool{"+15557770000": true, "Hotel": true, "Hotel Adlon": true, "A1": true,
		"": false, "12345": false, " Hotel": false, "HotelAdlonXY": false, "Hôtel": false, "+0155577700": false} {
		if ValidFrom(s) != want {
			t.Errorf("ValidFrom(%q) = %v, want %v", s, !want, want)
		}
	}
}
