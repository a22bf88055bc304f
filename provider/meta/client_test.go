package meta

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

// fakeMeta is a loopback HTTP server that records what it receives and
// answers with whatever the test sets.
type fakeMeta struct {
	ln   net.Listener
	srv  *fasthttp.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []recorded
	status     int
	body       string
	retryAfter string
	delay      time.Duration
}

type recorded struct {
	method, path, auth, contentType string
	body                            []byte
}

func newFakeMeta(t testing.TB) *fakeMeta {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMeta{ln: ln, done: make(chan struct{}), status: 200,
		body: `{"messaging_product":"whatsapp","contacts":[{"input":"15550002000","wa_id":"15550002000"}],"messages":[{"id":"wamid.HBgLMTU1NTAwMDIwMDAVAgARGBI0QzY1QkE3RjVFNjBGNDE2QjMA","message_status":"accepted"}]}`}
	f.srv = &fasthttp.Server{Handler: f.handle}
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		// Shutdown misses a listener that Serve has not registered yet.
		_ = f.srv.Shutdown()
		_ = ln.Close()
		<-f.done
	})
	return f
}

func (f *fakeMeta) handle(ctx *fasthttp.RequestCtx) {
	f.mu.Lock()
	f.requests = append(f.requests, recorded{
		method:      string(ctx.Method()),
		path:        string(ctx.Path()),
		auth:        string(ctx.Request.Header.Peek("Authorization")),
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

func (f *fakeMeta) answer(status int, body, retryAfter string) {
	f.mu.Lock()
	f.status, f.body, f.retryAfter = status, body, retryAfter
	f.mu.Unlock()
}

func (f *fakeMeta) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

const (
	testSender  = "+15550001000"
	testPhoneID = "100000000000001"
)

func newTestClient(t *testing.T, f *fakeMeta, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(Config{
		BaseURL:        "http://" + f.ln.Addr().String(),
		AccessToken:    "EAAG-test-token",
		PhoneNumberIDs: map[string]string{testSender: testPhoneID},
		Timeout:        timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendBody(t *testing.T) {
	fm := newFakeMeta(t)
	c := newTestClient(t, fm, 5*time.Second)
	f := func(typ message.Type, content, want string) {
		t.Helper()
		m := &message.Message{Sender: testSender, Recipient: "+4915112345678", Type: typ, Content: []byte(content)}
		res, err := c.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if res.ProviderMessageID != "wamid.HBgLMTU1NTAwMDIwMDAVAgARGBI0QzY1QkE3RjVFNjBGNDE2QjMA" {
			t.Fatalf("%s: provider id %q", typ, res.ProviderMessageID)
		}
		reqs := fm.take()
		if len(reqs) != 1 {
			t.Fatalf("%s: %d requests", typ, len(reqs))
		}
		r := reqs[0]
		if r.method != "POST" || r.path != "/v23.0/"+testPhoneID+"/messages" || r.auth != "Bearer EAAG-test-token" || r.contentType != "application/json" {
			t.Fatalf("%s: request %s %s auth %q type %q", typ, r.method, r.path, r.auth, r.contentType)
		}
		if string(r.body) != want {
			t.Fatalf("%s: body\n got %s\nwant %s", typ, r.body, want)
		}
		if !json.Valid(r.body) {
			t.Fatalf("%s: body is not JSON", typ)
		}
	}
	f(message.TypeText, `{"body":"hi","preview_url":false}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"body":"hi","preview_url":false}}`)
	f(message.TypeImage, `{"link":"https://example.com/a.jpg","caption":"Room 12"}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"image","image":{"link":"https://example.com/a.jpg","caption":"Room 12"}}`)
	f(message.TypeTemplate, `{"name":"booking_confirmation","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ana"}]}]}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"template","template":{"name":"booking_confirmation","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ana"}]}]}}`)
	f(message.TypeInteractive, `{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"interactive","interactive":{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}}`)
	f(message.TypeContacts, `[{"name":{"formatted_name":"Front desk","first_name":"Front"},"phones":[{"phone":"+15550001000"}]}]`,
		`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"contacts","contacts":[{"name":{"formatted_name":"Front desk","first_name":"Front"},"phones":[{"phone":"+15550001000"}]}]}`)
}

func TestSendRefusesBadMessages(t *testing.T) {
	fm := newFakeMeta(t)
	c := newTestClient(t, fm, 5*time.Second)
	f := func(name string, m message.Message, wantInTitle string) {
		t.Helper()
		_, err := c.Send(context.Background(), &m)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Class != provider.ClassPermanent || !strings.Contains(pe.Title, wantInTitle) {
			t.Fatalf("%s: got %v, want a permanent error mentioning %q", name, err, wantInTitle)
		}
		if n := len(fm.take()); n != 0 {
			t.Fatalf("%s: %d requests sent", name, n)
		}
	}
	text := []byte(`{"body":"hi"}`)
	f("unknown sender", message.Message{Sender: "+15559999999", Recipient: "+4915112345678", Type: "text", Content: text}, "+15559999999")
	f("recipient without +", message.Message{Sender: testSender, Recipient: "4915112345678", Type: "text", Content: text}, "recipient")
	f("recipient with a quote", message.Message{Sender: testSender, Recipient: `+49151"2345678`, Type: "text", Content: text}, "recipient")
	f("type with a quote", message.Message{Sender: testSender, Recipient: "+4915112345678", Type: `te"xt`, Content: text}, "type")
	f("empty type", message.Message{Sender: testSender, Recipient: "+4915112345678", Content: text}, "type")
	f("content not JSON", message.Message{Sender: testSender, Recipient: "+4915112345678", Type: "text", Content: []byte(`{"body":"hi"`)}, "content")
	f("no content", message.Message{Sender: testSender, Recipient: "+4915112345678", Type: "text"}, "content")
}

// Error bodies as Meta sends them.
const (
	body130429 = `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}`
	body80007  = `{"error":{"message":"(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again.","type":"OAuthException","code":80007,"fbtrace_id":"AbC1dEf2GhI3jKl4MnO5pQr"}}`
	body131056 = `{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."},"fbtrace_id":"A6n1rGgXmT4bZ6Qy2w3e4r5"}}`
	body131048 = `{"error":{"message":"(#131048) Spam rate limit hit","type":"OAuthException","code":131048,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because there are restrictions on how many messages can be sent from this phone number."},"fbtrace_id":"AQ1w2e3r4t5y6u7i8o9p0as"}}`
	body131049 = `{"error":{"message":"(#131049) This message was not delivered to maintain healthy ecosystem engagement.","type":"OAuthException","code":131049,"error_data":{"messaging_product":"whatsapp","details":"In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},"fbtrace_id":"Bz9y8x7w6v5u4t3s2r1q0pa"}}`
	body131047 = `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"C1d2e3f4g5h6i7j8k9l0mno"}}`
	body132001 = `{"error":{"message":"(#132001) Template name does not exist in the translation","type":"OAuthException","code":132001,"error_data":{"messaging_product":"whatsapp","details":"template name (booking_confirmation) does not exist in en_US"},"fbtrace_id":"D1e2f3g4h5i6j7k8l9m0nop"}}`
	body100    = `{"error":{"message":"Unsupported post request. Object with ID '100000000000001' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"E1f2g3h4i5j6k7l8m9n0opq"}}`
	body131009 = `{"error":{"message":"(#131009) Parameter value is not valid","type":"OAuthException","code":131009,"error_data":{"messaging_product":"whatsapp","details":"Recipient phone number not valid"},"fbtrace_id":"F1g2h3i4j5k6l7m8n9o0pqr"}}`
	body131000 = `{"error":{"message":"(#131000) Something went wrong","type":"OAuthException","code":131000,"error_data":{"messaging_product":"whatsapp","details":"Something went wrong"},"fbtrace_id":"G1h2i3j4k5l6m7n8o9p0qrs"}}`
	body2      = `{"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"H1i2j3k4l5m6n7o8p9q0rst"}}`
	body131031 = `{"error":{"message":"(#131031) Business Account locked","type":"OAuthException","code":131031,"error_data":{"messaging_product":"whatsapp","details":"Account has been locked"},"fbtrace_id":"I1j2k3l4m5n6o7p8q9r0stu"}}`
	body190    = `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"J1k2l3m4n5o6p7q8r9s0tuv"}}`
	body368    = `{"error":{"message":"(#368) Temporarily blocked for policies violations","type":"OAuthException","code":368,"error_data":"","fbtrace_id":"K1l2m3n4o5p6q7r8s9t0uvw"}}`
)

func TestSendErrors(t *testing.T) {
	fm := newFakeMeta(t)
	c := newTestClient(t, fm, 5*time.Second)
	m := &message.Message{Sender: testSender, Recipient: "+4915112345678", Type: "text", Content: []byte(`{"body":"hi"}`)}
	f := func(status int, body, retryAfter string, want provider.Error) {
		t.Helper()
		fm.answer(status, body, retryAfter)
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
	f(400, body130429, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 400, Code: 130429, Title: "(#130429) Rate limit hit",
		Details: "Cloud API message throughput has been reached.", TraceID: "Az8or2yhqkZfEZ-_4Qn_Bam"})
	f(429, body80007, "30", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Code: 80007,
		Title: "(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again.", RetryAfter: 30 * time.Second, TraceID: "AbC1dEf2GhI3jKl4MnO5pQr"})
	f(400, body131056, "", provider.Error{Class: provider.ClassPairThrottle, HTTPStatus: 400, Code: 131056, Title: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
		Details: "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.", TraceID: "A6n1rGgXmT4bZ6Qy2w3e4r5"})
	f(400, body131048, "", provider.Error{Class: provider.ClassHoldSender, HTTPStatus: 400, Code: 131048, Title: "(#131048) Spam rate limit hit",
		Details: "Message failed to send because there are restrictions on how many messages can be sent from this phone number.", TraceID: "AQ1w2e3r4t5y6u7i8o9p0as"})
	f(400, body131049, "", provider.Error{Class: provider.ClassNoRetry24h, HTTPStatus: 400, Code: 131049, Title: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
		Details: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.", TraceID: "Bz9y8x7w6v5u4t3s2r1q0pa"})
	f(400, body131047, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 131047, Title: "(#131047) Re-engagement message",
		Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.", TraceID: "C1d2e3f4g5h6i7j8k9l0mno"})
	f(404, body132001, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 404, Code: 132001, Title: "(#132001) Template name does not exist in the translation",
		Details: "template name (booking_confirmation) does not exist in en_US", TraceID: "D1e2f3g4h5i6j7k8l9m0nop"})
	f(400, body100, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 100, Subcode: 33,
		Title:   "Unsupported post request. Object with ID '100000000000001' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
		TraceID: "E1f2g3h4i5j6k7l8m9n0opq"})
	f(400, body131009, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 131009, Title: "(#131009) Parameter value is not valid",
		Details: "Recipient phone number not valid", TraceID: "F1g2h3i4j5k6l7m8n9o0pqr"})
	f(500, body131000, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 500, Code: 131000, Title: "(#131000) Something went wrong",
		Details: "Something went wrong", TraceID: "G1h2i3j4k5l6m7n8o9p0qrs"})
	f(503, body2, "5", provider.Error{Class: provider.ClassRetry, HTTPStatus: 503, Code: 2, Title: "(#2) Service temporarily unavailable",
		RetryAfter: 5 * time.Second, TraceID: "H1i2j3k4l5m6n7o8p9q0rst"})
	f(403, body131031, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 403, Code: 131031, Title: "(#131031) Business Account locked",
		Details: "Account has been locked", TraceID: "I1j2k3l4m5n6o7p8q9r0stu"})
	f(401, body190, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 401, Code: 190, Title: "Invalid OAuth access token - Cannot parse access token",
		TraceID: "J1k2l3m4n5o6p7q8r9s0tuv"})
	f(400, body368, "", provider.Error{Class: provider.ClassStopSender, HTTPStatus: 400, Code: 368, Title: "(#368) Temporarily blocked for policies violations",
		TraceID: "K1l2m3n4o5p6q7r8s9t0uvw"})
	// Answers that are not Meta's error object.
	f(429, ``, "", provider.Error{Class: provider.ClassThrottle, HTTPStatus: 429, Title: "Too Many Requests"})
	f(502, `<html><body>Bad Gateway</body></html>`, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 502, Title: "Bad Gateway"})
	f(400, `{"error":{"message":"half`, "", provider.Error{Class: provider.ClassRetry, HTTPStatus: 400, Title: "Bad Request"})
	f(400, `{"error":{"message":"(#999999) New error","code":999999}}`, "", provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 999999, Title: "(#999999) New error"})
	// A success without a message id is not a success.
	fm.answer(200, `{"messaging_product":"whatsapp","messages":[]}`, "")
	if _, err := c.Send(context.Background(), m); !errors.Is(err, ErrNoMessageID) {
		t.Fatalf("empty messages: got %v, want ErrNoMessageID", err)
	}
}

func TestSendNetworkErrors(t *testing.T) {
	fm := newFakeMeta(t)
	m := &message.Message{Sender: testSender, Recipient: "+4915112345678", Type: "text", Content: []byte(`{"body":"hi"}`)}
	isPlain := func(name string, err error) {
		t.Helper()
		var pe *provider.Error
		if err == nil || errors.As(err, &pe) || provider.ClassOf(err) != provider.ClassRetry {
			t.Fatalf("%s: got %v, want a plain error of class retry", name, err)
		}
	}

	// The client's timeout.
	c := newTestClient(t, fm, 100*time.Millisecond)
	fm.mu.Lock()
	fm.delay = 400 * time.Millisecond
	fm.mu.Unlock()
	start := time.Now()
	_, err := c.Send(context.Background(), m)
	isPlain("timeout", err)
	if !errors.Is(err, fasthttp.ErrTimeout) {
		t.Fatalf("timeout: got %v, want fasthttp.ErrTimeout", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("timeout took %v", d)
	}

	// A context deadline sooner than the timeout wins.
	c = newTestClient(t, fm, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Send(ctx, m)
	isPlain("ctx deadline", err)
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("ctx deadline: took %v", d)
	}

	// A canceled context sends nothing.
	time.Sleep(500 * time.Millisecond) // let the slow handlers above finish
	if n := len(fm.take()); n != 2 {
		t.Fatalf("%d requests reached the server, want 2", n)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = c.Send(ctx, m)
	isPlain("canceled", err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(fm.take()); n != 0 {
		t.Fatalf("a canceled send reached the server")
	}

	// Nobody listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err = New(Config{BaseURL: "http://" + addr, AccessToken: "t", PhoneNumberIDs: map[string]string{testSender: testPhoneID}, Timeout: time.Second})
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
	for _, code := range []int{4, 80007, 130429} {
		f(code, 400, provider.ClassThrottle)
		f(code, 429, provider.ClassThrottle)
	}
	f(131056, 400, provider.ClassPairThrottle)
	f(131048, 400, provider.ClassHoldSender)
	f(131049, 400, provider.ClassNoRetry24h)
	for _, code := range []int{131047, 131026, 131051, 132000, 132001, 100} {
		f(code, 400, provider.ClassPermanent)
	}
	for _, code := range []int{131000, 1, 2, 131016, 133004, 131057} {
		f(code, 500, provider.ClassRetry)
		f(code, 400, provider.ClassRetry)
	}
	for _, code := range []int{131031, 368, 190} {
		f(code, 400, provider.ClassStopSender)
	}
	f(190, 401, provider.ClassStopSender)
	// Unknown codes: the HTTP status decides.
	f(131009, 400, provider.ClassPermanent)
	f(131008, 400, provider.ClassPermanent)
	f(12345, 404, provider.ClassPermanent)
	f(12345, 429, provider.ClassThrottle)
	f(0, 429, provider.ClassThrottle)
	f(12345, 500, provider.ClassRetry)
	f(0, 503, provider.ClassRetry)
	f(0, 400, provider.ClassRetry)
}

func TestConfigValidate(t *testing.T) {
	ok := Config{AccessToken: "t", PhoneNumberIDs: map[string]string{testSender: testPhoneID}}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	f := func(name string, change func(c *Config)) {
		t.Helper()
		c := ok
		c.PhoneNumberIDs = map[string]string{testSender: testPhoneID}
		change(&c)
		if _, err := New(c); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("no token", func(c *Config) { c.AccessToken = "" })
	f("token with newline", func(c *Config) { c.AccessToken = "a\nb" })
	f("no numbers", func(c *Config) { c.PhoneNumberIDs = nil })
	f("sender not E.164", func(c *Config) { c.PhoneNumberIDs = map[string]string{"15550001000": "1"} })
	f("id with slash", func(c *Config) { c.PhoneNumberIDs = map[string]string{testSender: "1/2"} })
	f("empty id", func(c *Config) { c.PhoneNumberIDs = map[string]string{testSender: ""} })
	f("ftp url", func(c *Config) { c.BaseURL = "ftp://graph.facebook.com" })
	f("no host", func(c *Config) { c.BaseURL = "https://" })
	f("bad version", func(c *Config) { c.Version = "v23.0/x" })
	f("negative timeout", func(c *Config) { c.Timeout = -time.Second })
	f("negative conns", func(c *Config) { c.MaxConns = -1 })
}
