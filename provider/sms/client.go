// Package sms is a generic SMS adapter in the shape of Twilio's Messages
// API (POST /2010-04-01/Accounts/{sid}/Messages.json, Basic auth, form
// fields To, From, Body). wagate uses it to carry the text of a WhatsApp
// message as an SMS fallback; any provider speaking that API will do.
package sms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wagate/wagate/provider/internal/jsonpeek"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// MaxBodyChars is the longest SMS body Twilio accepts, in characters; it
// splits longer texts into segments itself, up to this limit.
const MaxBodyChars = 1600

// ErrNoMessageID says the provider answered a send with success but without
// a message sid. The SMS may have gone out; the caller retries it as it
// would after a timeout.
var ErrNoMessageID = errors.New("sms: success answer without a message sid")

// Client sends SMS through the Messages API. It is safe for concurrent use.
type Client struct {
	name        string
	hc          *fasthttp.HostClient
	auth        []byte
	uri         []byte
	from        map[string]string
	defaultFrom string
	timeout     time.Duration
}

var _ provider.Provider = (*Client)(nil)

// New checks cfg and returns a Client for it.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Answers are small; a huge one is not the provider's.
	hc, err := httpc.NewHostClient(cfg.BaseURL, cfg.MaxConns, cfg.Timeout, 1<<20)
	if err != nil {
		return nil, err
	}
	from := make(map[string]string, len(cfg.From))
	for k, v := range cfg.From {
		from[k] = v
	}
	return &Client{
		name:        cfg.Name,
		hc:          hc,
		auth:        []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.AccountSID+":"+cfg.AuthToken))),
		uri:         []byte(strings.TrimSuffix(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages.json"),
		from:        from,
		defaultFrom: cfg.DefaultFrom,
		timeout:     cfg.Timeout,
	}, nil
}

// Name returns the configured provider name.
func (c *Client) Name() string { return c.name }

// CloseIdleConnections closes the connections no send is using.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// buffers hold one send's text and form body; Send owns one from Get until
// the request has been written.
type buffers struct{ text, form []byte }

var bufPool = sync.Pool{New: func() any { return &buffers{text: make([]byte, 0, 256), form: make([]byte, 0, 512)} }}

var (
	headerAuthorization = []byte("Authorization")
	contentTypeForm     = []byte("application/x-www-form-urlencoded")
)

// Send posts m's text as an SMS from the sender's configured From to m's
// recipient. Network errors and timeouts come back wrapped as they are;
// every answer that is not a success comes back as a *provider.Error, and so
// does a message that cannot be an SMS (class permanent, nothing is sent).
//
// fasthttp cannot abort a request in flight, so ctx's deadline bounds the
// send and a cancellation is only seen before it starts.
func (c *Client) Send(ctx context.Context, m *message.Message) (provider.Result, error) {
	from, ok := c.from[m.Sender]
	if !ok {
		from = c.defaultFrom
	}
	if from == "" {
		return provider.Result{}, invalid(fmt.Sprintf("sender %s has no SMS From", m.Sender))
	}
	if !message.ValidE164(m.Recipient) {
		return provider.Result{}, invalid("recipient is not an E.164 number")
	}
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("sms send: %w", err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	b := bufPool.Get().(*buffers)
	text, err := AppendText(b.text[:0], m)
	if err != nil {
		bufPool.Put(b)
		return provider.Result{}, err
	}
	form := appendForm(b.form[:0], m.Recipient, from, text)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(c.uri)
	req.Header.SetBytesKV(headerAuthorization, c.auth)
	req.Header.SetContentTypeBytes(contentTypeForm)
	req.SetBodyRaw(form)
	err = c.hc.DoDeadline(req, resp, deadline)
	// The body has been written (or abandoned) once Do returns.
	fasthttp.ReleaseRequest(req)
	b.text, b.form = text, form
	bufPool.Put(b)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		return provider.Result{}, fmt.Errorf("sms send to %s: %w", m.Recipient, err)
	}

	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		sid, ok := stringMember(resp.Body(), "sid")
		if !ok {
			return provider.Result{}, fmt.Errorf("sms send to %s: %w", m.Recipient, ErrNoMessageID)
		}
		return provider.Result{ProviderMessageID: sid}, nil
	}
	return provider.Result{}, parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
}

// AppendText appends the text an SMS carries for m to dst: the body of a
// text message's content ({"body":…,"preview_url":…}), unescaped. Anything
// else, an empty body, or one longer than MaxBodyChars is refused with a
// ClassPermanent *provider.Error.
func AppendText(dst []byte, m *message.Message) ([]byte, error) {
	if m.Type != message.TypeText {
		return dst, invalid("sms carries text only")
	}
	if len(m.Content) == 0 || !json.Valid(m.Content) {
		return dst, invalid("content is not JSON")
	}
	raw, ok := jsonpeek.Member(m.Content, "body")
	if !ok {
		return dst, invalid("text has no body")
	}
	if !jsonpeek.IsString(raw) {
		return dst, invalid("text body is not a string")
	}
	start := len(dst)
	dst, ok = jsonpeek.AppendUnquote(dst, raw)
	if !ok {
		return dst[:start], invalid("text body is not a string")
	}
	switch n := utf8.RuneCount(dst[start:]); {
	case n == 0:
		return dst[:start], invalid("text body is empty")
	case n > MaxBodyChars:
		return dst[:start], invalid(fmt.Sprintf("text body has %d characters, more than an SMS carries (%d)", n, MaxBodyChars))
	}
	return dst, nil
}

// appendForm appends the form body To=…&From=…&Body=… to dst.
func appendForm(dst []byte, to, from string, text []byte) []byte {
	dst = append(dst, "To="...)
	dst = appendQuoted(dst, to)
	dst = append(dst, "&From="...)
	dst = appendQuoted(dst, from)
	dst = append(dst, "&Body="...)
	return fasthttp.AppendQuotedArg(dst, text)
}

// appendQuoted is fasthttp.AppendQuotedArg for a string, without
// converting it.
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// stringMember returns the text of the string member key of the JSON object
// body.
func stringMember(body []byte, key string) (string, bool) {
	if !json.Valid(body) {
		return "", false
	}
	raw, ok := jsonpeek.Member(body, key)
	if !ok || !jsonpeek.IsString(raw) {
		return "", false
	}
	var buf [64]byte
	v, ok := jsonpeek.AppendUnquote(buf[:0], raw)
	if !ok || len(v) == 0 {
		return "", false
	}
	return string(v), true
}

func invalid(why string) *provider.Error {
	return &provider.Error{Class: provider.ClassPermanent, Title: "invalid message: " + why}
}
