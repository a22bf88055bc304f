// Package gallabox is the adapter for Gallabox's WhatsApp API
// (POST /devapi/messages/whatsapp with apiKey and apiSecret headers). It
// sends text messages as they are and translates Meta's template objects
// into Gallabox's templateName / bodyValues / headerValues / buttonValues.
//
// Gallabox's API reference answers a send 202 {"id","status":"ACCEPTED",
// "message"}; the adapter takes the message id from "id" (or, should an
// answer differ, "messageId" or "_id"), the id Gallabox's status webhooks
// name the message by (webhook.go).
package gallabox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wagate/wagate/provider/internal/jsonpeek"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// ErrNoMessageID says Gallabox answered a send with success but without a
// message id the adapter can read. The message may have gone out; the
// caller retries it as it would after a timeout.
var ErrNoMessageID = errors.New("gallabox: success answer without a message id")

// Client sends messages through Gallabox. It is safe for concurrent use.
type Client struct {
	name             string
	hc               *fasthttp.HostClient
	apiKey           []byte
	apiSecret        []byte
	uri              []byte
	channels         map[string]string
	defaultChannelID string
	timeout          time.Duration
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
	channels := make(map[string]string, len(cfg.ChannelID))
	for k, v := range cfg.ChannelID {
		channels[k] = v
	}
	return &Client{
		name:             cfg.Name,
		hc:               hc,
		apiKey:           []byte(cfg.APIKey),
		apiSecret:        []byte(cfg.APISecret),
		uri:              []byte(strings.TrimSuffix(cfg.BaseURL, "/") + "/devapi/messages/whatsapp"),
		channels:         channels,
		defaultChannelID: cfg.DefaultChannelID,
		timeout:          cfg.Timeout,
	}, nil
}

// Name returns the configured provider name.
func (c *Client) Name() string { return c.name }

// CloseIdleConnections closes the connections no send is using.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// bodyPool holds send body buffers; Send owns one from Get until the
// request has been written.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

var (
	headerAPIKey    = []byte("apiKey")
	headerAPISecret = []byte("apiSecret")
	contentTypeJSON = []byte("application/json")
)

// Send posts m to Gallabox through the sender's channel. Network errors
// and timeouts come back wrapped as they are; every answer that is not a
// success comes back as a *provider.Error, and so does a message Gallabox
// cannot carry (class permanent, nothing is sent).
//
// fasthttp cannot abort a request in flight, so ctx's deadline bounds the
// send and a cancellation is only seen before it starts.
func (c *Client) Send(ctx context.Context, m *message.Message) (provider.Result, error) {
	channel, ok := c.channels[m.Sender]
	if !ok {
		channel = c.defaultChannelID
	}
	if channel == "" {
		return provider.Result{}, invalid(fmt.Sprintf("sender %s has no Gallabox channel", m.Sender))
	}
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("gallabox send: %w", err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	bp := bodyPool.Get().(*[]byte)
	body, err := AppendSendBody((*bp)[:0], channel, m)
	if err != nil {
		bodyPool.Put(bp)
		return provider.Result{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(c.uri)
	req.Header.SetBytesKV(headerAPIKey, c.apiKey)
	req.Header.SetBytesKV(headerAPISecret, c.apiSecret)
	req.Header.SetContentTypeBytes(contentTypeJSON)
	req.SetBodyRaw(body)
	err = c.hc.DoDeadline(req, resp, deadline)
	// The body has been written (or abandoned) once Do returns.
	fasthttp.ReleaseRequest(req)
	*bp = body
	bodyPool.Put(bp)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		return provider.Result{}, fmt.Errorf("gallabox send to %s: %w", m.Recipient, err)
	}

	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		id, ok := messageID(resp.Body())
		if !ok {
			return provider.Result{}, fmt.Errorf("gallabox send to %s: %w", m.Recipient, ErrNoMessageID)
		}
		return provider.Result{ProviderMessageID: id}, nil
	}
	return provider.Result{}, parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
}

// AppendSendBody appends Gallabox's send body for m through channelID to
// dst:
//
//	{"channelId":"…","channelType":"whatsapp","recipient":{"name":"","phone":"<digits>"},"whatsapp":{…}}
//
// where "whatsapp" is {"type":"text","text":{"body":…}} for a text and
// {"type":"template","template":{…}} for a template (see appendTemplate).
// Other types, a recipient that is not E.164 and content that does not
// read as its type are refused with a ClassPermanent *provider.Error.
func AppendSendBody(dst []byte, channelID string, m *message.Message) ([]byte, error) {
	if !message.ValidE164(m.Recipient) {
		return dst, invalid("recipient is not an E.164 number")
	}
	if !idSafe(channelID) {
		return dst, invalid("channel id is not a plain id")
	}
	if len(m.Content) == 0 || !json.Valid(m.Content) {
		return dst, invalid("content is not JSON")
	}
	start := len(dst)
	dst = append(dst, `{"channelId":"`...)
	dst = append(dst, channelID...)
	dst = append(dst, `","channelType":"whatsapp","recipient":{"name":"","phone":"`...)
	dst = append(dst, m.Recipient[1:]...)
	dst = append(dst, `"},"whatsapp":`...)
	var err error
	switch m.Type {
	case message.TypeText:
		raw, ok := jsonpeek.Member(m.Content, "body")
		switch {
		case !ok:
			err = invalid("text has no body")
		case !jsonpeek.IsString(raw) || len(raw) == 2:
			err = invalid("text body is not a non-empty string")
		default:
			// raw is a validated JSON string token: it goes in as it is.
			dst = append(dst, `{"type":"text","text":{"body":`...)
			dst = append(dst, raw...)
			dst = append(dst, `}}`...)
		}
	case message.TypeTemplate:
		dst, err = appendTemplate(dst, m.Content)
	default:
		err = invalid(fmt.Sprintf("message type %q is not supported by gallabox", m.Type))
	}
	if err != nil {
		return dst[:start], err
	}
	return append(dst, '}'), nil
}

// messageID reads the message id of a send answer: the string member id,
// messageId or _id of a JSON object.
func messageID(body []byte) (string, bool) {
	if !json.Valid(body) {
		return "", false
	}
	for _, key := range [...]string{"id", "messageId", "_id"} {
		raw, ok := jsonpeek.Member(body, key)
		if !ok || !jsonpeek.IsString(raw) || len(raw) == 2 {
			continue
		}
		var buf [64]byte
		if v, ok := jsonpeek.AppendUnquote(buf[:0], raw); ok {
			return string(v), true
		}
	}
	return "", false
}

func invalid(why string) *provider.Error {
	return &provider.Error{Class: provider.ClassPermanent, Title: "invalid message: " + why}
}

// Carries implements provider.Carrier: Gallabox's send takes text and
// templates.
func (c *Client) Carries(m *message.Message) bool {
	return m.Type == message.TypeText || m.Type == message.TypeTemplate
}
