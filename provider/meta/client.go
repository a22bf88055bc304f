// Package meta is the adapter for Meta's WhatsApp Cloud API: it sends
// messages (Client), maps Meta's error answers to wagate's retry classes
// (ClassForCode) and reads Meta's signed webhooks (VerifySignature,
// ParseWebhook).
package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// ErrNoMessageID says Meta answered a send with success but without a
// message id. The message may have gone out; the caller retries it as it
// would after a timeout.
var ErrNoMessageID = errors.New("meta: success answer without a message id")

// Client sends messages through the Cloud API. It is safe for concurrent use.
type Client struct {
	name    string
	hc      *fasthttp.HostClient
	auth    []byte
	uris    map[string][]byte
	timeout time.Duration

	// Media messages (media.go): the source of wagate's media ids, each
	// sender's phone number id and media upload URI, and the uploads in
	// flight.
	media     MediaSource
	phoneIDs  map[string]string
	mediaURIs map[string][]byte
	uploads   flights
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
	base := strings.TrimSuffix(cfg.BaseURL, "/") + "/" + cfg.Version + "/"
	c := &Client{
		name:    cfg.Name,
		hc:      hc,
		auth:    []byte("Bearer " + cfg.AccessToken),
		uris:    make(map[string][]byte, len(cfg.PhoneNumberIDs)),
		timeout: cfg.Timeout,

		media:     cfg.Media,
		phoneIDs:  make(map[string]string, len(cfg.PhoneNumberIDs)),
		mediaURIs: make(map[string][]byte, len(cfg.PhoneNumberIDs)),
	}
	for sender, id := range cfg.PhoneNumberIDs {
		c.uris[sender] = []byte(base + id + "/messages")
		c.phoneIDs[sender] = id
		c.mediaURIs[sender] = []byte(base + id + "/media")
	}
	return c, nil
}

// Name returns the configured provider name.
func (c *Client) Name() string { return c.name }

// CloseIdleConnections closes the connections no send is using.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// bodyPool holds send body buffers; Send owns one from Get until the
// request has been written.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

var (
	headerAuthorization = []byte("Authorization")
	contentTypeJSON     = []byte("application/json")
)

// Send posts m to the messages endpoint of its sender's phone number id.
// Network errors and timeouts come back wrapped as they are; every answer
// that is not a success comes back as a *provider.Error.
//
// fasthttp cannot abort a request in flight, so ctx's deadline bounds the
// send and a cancellation is only seen before it starts.
func (c *Client) Send(ctx context.Context, m *message.Message) (provider.Result, error) {
	uri, ok := c.uris[m.Sender]
	if !ok {
		return provider.Result{}, &provider.Error{
			Class: provider.ClassPermanent,
			Title: fmt.Sprintf("sender %s has no Meta phone number id", m.Sender),
		}
	}
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("meta send: %w", err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A media message naming one of wagate's uploads goes out with Meta's
	// id of the same bytes (media.go); links and Meta's ids pass as they are.
	if isMediaType(m.Type) {
		if id, at, ok := wagateMediaID(m.Content); ok {
			return c.sendMedia(ctx, m, id, at, uri, deadline)
		}
	}
	if m.Type == message.TypeTemplate {
		if id, at, ok := templateMediaID(m.Content); ok {
			return c.sendMedia(ctx, m, id, at, uri, deadline)
		}
	}
	return c.post(m, uri, deadline)
}

// post sends m's body to uri and reads Meta's answer.
func (c *Client) post(m *message.Message, uri []byte, deadline time.Time) (provider.Result, error) {
	bp := bodyPool.Get().(*[]byte)
	body, err := AppendSendBody((*bp)[:0], m)
	if err != nil {
		bodyPool.Put(bp)
		return provider.Result{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(uri)
	req.Header.SetBytesKV(headerAuthorization, c.auth)
	req.Header.SetContentTypeBytes(contentTypeJSON)
	req.SetBodyRaw(body)
	err = c.hc.DoDeadline(req, resp, deadline)
	// The body has been written (or abandoned) once Do returns.
	fasthttp.ReleaseRequest(req)
	*bp = body
	bodyPool.Put(bp)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		return provider.Result{}, fmt.Errorf("meta send to %s: %w", m.Sender, err)
	}

	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		id, ok := parseMessageID(resp.Body())
		if !ok {
			return provider.Result{}, fmt.Errorf("meta send to %s: %w", m.Sender, ErrNoMessageID)
		}
		return provider.Result{ProviderMessageID: id}, nil
	}
	return provider.Result{}, parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
}

// AppendSendBody appends Meta's send body for m to dst:
//
//	{"messaging_product":"whatsapp","recipient_type":"individual","to":"<digits>","type":"<type>","<type>":<content>}
//
// with "recipient":"<BSUID>" in place of "to" for a guest known by
// business-scoped user id only.
//
// It refuses, with a ClassPermanent *provider.Error, a recipient that is
// not E.164, a type name that is not lower-case letters and underscores,
// and content that is not JSON, so everything it writes needs no escaping.
func AppendSendBody(dst []byte, m *message.Message) ([]byte, error) {
	bsuid := message.ValidBSUID(m.Recipient)
	if !bsuid && !message.ValidE164(m.Recipient) {
		return dst, invalid("recipient is neither an E.164 number nor a business-scoped user id")
	}
	if !typeName(string(m.Type)) {
		return dst, invalid("message type is not a Meta type name")
	}
	if len(m.Content) == 0 || !json.Valid(m.Content) {
		return dst, invalid("content is not JSON")
	}
	if bsuid {
		// A guest known by business-scoped user id only (Meta withholds
		// the number): "recipient" in place of "to".
		dst = append(dst, `{"messaging_product":"whatsapp","recipient_type":"individual","recipient":"`...)
		dst = append(dst, m.Recipient...)
	} else {
		dst = append(dst, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"`...)
		dst = append(dst, m.Recipient[1:]...)
	}
	dst = append(dst, `","type":"`...)
	dst = append(dst, m.Type...)
	dst = append(dst, `","`...)
	dst = append(dst, m.Type...)
	dst = append(dst, `":`...)
	dst = append(dst, m.Content...)
	return append(dst, '}'), nil
}

func invalid(why string) *provider.Error {
	return &provider.Error{Class: provider.ClassPermanent, Title: "invalid message: " + why}
}

func typeName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// scannerPool holds scanners for answer bodies; the caller owns one from
// Get to Put and keeps nothing that points into it.
var scannerPool = sync.Pool{New: func() any { return new(scanner) }}

// parseMessageID reads messages[0].id from a send answer.
func parseMessageID(body []byte) (string, bool) {
	s := scannerPool.Get().(*scanner)
	defer scannerPool.Put(s)
	s.reset(body)
	var id string
	var k []byte
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			if string(k) != "messages" || id != "" {
				s.skip()
				continue
			}
			if !s.array() {
				continue
			}
			for first := true; s.elem(first); first = false {
				if id != "" {
					s.skip()
					continue
				}
				if !s.object() {
					continue
				}
				for first := true; s.key(&k, first); first = false {
					if string(k) == "id" && id == "" {
						id = string(s.str())
					} else {
						s.skip()
					}
				}
			}
		}
	}
	s.end()
	s.b = nil
	return id, s.err == nil && id != ""
}
