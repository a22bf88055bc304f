// Package chatapp is the adapter for Alibaba Cloud's Chat App Message
// Service (ChatApp, product code cams): it sends a message with the
// SendChatappMessage RPC action (version 2020-06-06) at the region's
// endpoint, signed with Alibaba's RPC signature (Sign), and maps the
// answer's Code to wagate's retry classes (ClassForCode). ParseWebhook
// reads the delivery receipts (ChatAppStatus) ChatApp pushes back.
//
// Texts, media (by link), locations and templates are translated from
// Meta's objects; a template goes by the TemplateCode the account's
// configuration gives its name and language (Config.TemplateCodes), its
// body parameters become TemplateParams and quick-reply payloads Payload.
package chatapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wagate/wagate/provider/internal/jsonpeek"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// ErrNoMessageID says ChatApp answered a send with Code "OK" but without a
// MessageId. The message may have gone out; the caller retries it as it
// would after a timeout.
var ErrNoMessageID = errors.New("chatapp: OK answer without a MessageId")

// Client sends messages through ChatApp. It is safe for concurrent use.
type Client struct {
	name        string
	hc          *fasthttp.HostClient
	uri         []byte
	accessKeyID string
	custSpaceID string
	// templateCodes: template name → language → ChatApp's TemplateCode.
	templateCodes map[string]map[string]string
	timeout       time.Duration
	key           []byte // AccessKeySecret + "&"
	reqs          sync.Pool

	// now and nonce are the clock and the nonce source, fixed by tests.
	now   func() time.Time
	nonce func(dst *[32]byte)
}

var _ provider.Provider = (*Client)(nil)

// New checks cfg and returns a Client for it.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Answers are small; a huge one is not the provider's.
	hc, err := httpc.NewHostClient(cfg.Endpoint, cfg.MaxConns, cfg.Timeout, 1<<20)
	if err != nil {
		return nil, err
	}
	uri := cfg.Endpoint
	if u, _ := url.Parse(uri); u.Path == "" { // Validate parsed it
		uri += "/"
	}
	c := &Client{
		name:          cfg.Name,
		hc:            hc,
		uri:           []byte(uri),
		accessKeyID:   cfg.AccessKeyID,
		custSpaceID:   cfg.CustSpaceID,
		templateCodes: copyCodes(cfg.TemplateCodes),
		timeout:       cfg.Timeout,
		key:           []byte(cfg.AccessKeySecret + "&"),
		now:           time.Now,
		nonce:         randomNonce,
	}
	c.reqs.New = func() any {
		return &request{
			params:  make([]param, 0, 24),
			content: make([]byte, 0, 256),
			body:    make([]byte, 0, 1024),
			signer:  signer{mac: hmac.New(sha1.New, c.key)},
		}
	}
	return c, nil
}

// Name returns the configured provider name.
func (c *Client) Name() string { return c.name }

// CloseIdleConnections closes the connections no send is using.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// request is one send's parameters and buffers; Send owns one from Get
// until the request has been written. Its signer holds the client's key.
type request struct {
	params  []param
	content []byte // Content, or TemplateParams, as JSON
	payload []byte // Payload, as a JSON array
	body    []byte // the canonicalized query, then the form body
	nonce   [32]byte
	ts      [20]byte
	signer
}

// randomNonce writes 128 random bits in hex: the nonce only has to be
// unique, not secret.
func randomNonce(dst *[32]byte) {
	const hex = "0123456789abcdef"
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		dst[i] = hex[a>>(60-4*i)&15]
		dst[16+i] = hex[b>>(60-4*i)&15]
	}
}

var contentTypeForm = []byte("application/x-www-form-urlencoded")

// Send posts m to ChatApp with SendChatappMessage. Network errors and
// timeouts come back wrapped as they are; every answer that is not Code
// "OK" comes back as a *provider.Error, and so does a message ChatApp
// cannot carry (class permanent, nothing is sent).
//
// fasthttp cannot abort a request in flight, so ctx's deadline bounds the
// send and a cancellation is only seen before it starts.
func (c *Client) Send(ctx context.Context, m *message.Message) (provider.Result, error) {
	if err := ctx.Err(); err != nil {
		return provider.Result{}, fmt.Errorf("chatapp send: %w", err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r := c.reqs.Get().(*request)
	if err := c.build(r, m); err != nil {
		c.reqs.Put(r)
		return provider.Result{}, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(c.uri)
	req.Header.SetContentTypeBytes(contentTypeForm)
	req.SetBodyRaw(r.body)
	err := c.hc.DoDeadline(req, resp, deadline)
	// The body has been written (or abandoned) once Do returns.
	fasthttp.ReleaseRequest(req)
	c.reqs.Put(r)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		return provider.Result{}, fmt.Errorf("chatapp send to %s: %w", m.Recipient, err)
	}
	return parseAnswer(resp.StatusCode(), resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
}

// Fixed parameter values.
const (
	action           = "SendChatappMessage"
	apiVersion       = "2020-06-06"
	signatureMethod  = "HMAC-SHA1"
	signatureVersion = "1.0"
	timestampLayout  = "2006-01-02T15:04:05Z"
)

// build fills r with m's signed form body.
func (c *Client) build(r *request, m *message.Message) error {
	if !message.ValidE164(m.Sender) {
		return invalid("sender is not an E.164 number")
	}
	if !message.ValidE164(m.Recipient) {
		return invalid("recipient is not an E.164 number")
	}
	if len(m.Content) == 0 || !json.Valid(m.Content) {
		return invalid("content is not JSON")
	}
	c.nonce(&r.nonce)
	ts := c.now().UTC().AppendFormat(r.ts[:0], timestampLayout)
	r.params = append(r.params[:0],
		param{key: "AccessKeyId", s: c.accessKeyID},
		param{key: "Action", s: action},
		param{key: "ChannelType", s: "whatsapp"},
		param{key: "Format", s: "JSON"},
		param{key: "From", s: m.Sender[1:]},
		param{key: "SignatureMethod", s: signatureMethod},
		param{key: "SignatureNonce", b: r.nonce[:]},
		param{key: "SignatureVersion", s: signatureVersion},
		param{key: "Timestamp", b: ts},
		param{key: "To", s: m.Recipient[1:]},
		param{key: "Version", s: apiVersion},
	)
	if c.custSpaceID != "" {
		r.params = append(r.params, param{key: "CustSpaceId", s: c.custSpaceID})
	}
	var err error
	if m.Type == message.TypeTemplate {
		err = r.template(m.Content, c.templateCodes)
	} else {
		err = r.message(m.Type, m.Content)
	}
	if err != nil {
		return err
	}
	sortParams(r.params)
	r.body = appendCanonical(r.body[:0], r.params)
	sig := r.sign(fasthttp.MethodPost, r.body)
	r.body = append(r.body, "&Signature="...)
	r.body = appendPercentEncoded(r.body, sig)
	return nil
}

// metaMedia is Meta's media object.
type metaMedia struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// metaLocation is Meta's location object; the coordinates keep their
// digits.
type metaLocation struct {
	Latitude  json.Number `json:"latitude"`
	Longitude json.Number `json:"longitude"`
	Name      string      `json:"name"`
	Address   string      `json:"address"`
}

// message adds Type=message, MessageType and Content for a message that is
// not a template:
//
//	text               {"text":…}
//	image, video       {"link":…,"caption":…}
//	audio              {"link":…}
//	document           {"link":…,"caption":…,"fileName":…}
//	location           {"latitude":…,"longitude":…,"name":…,"address":…}
//
// Empty optional fields are left out. Media need a link: ChatApp cannot use
// a Meta media id.
func (r *request) message(typ message.Type, content []byte) error {
	b := r.content[:0]
	switch typ {
	case message.TypeText:
		raw, ok := jsonpeek.Member(content, "body")
		switch {
		case !ok:
			return invalid("text has no body")
		case !jsonpeek.IsString(raw) || len(raw) == 2:
			return invalid("text body is not a non-empty string")
		}
		// raw is a validated JSON string token: it goes in as it is.
		b = append(b, `{"text":`...)
		b = append(b, raw...)
		b = append(b, '}')
	case message.TypeImage, message.TypeVideo, message.TypeAudio, message.TypeDocument:
		var md metaMedia
		if err := json.Unmarshal(content, &md); err != nil {
			return invalid(fmt.Sprintf("%s is not Meta's media object: %v", typ, err))
		}
		if md.Link == "" {
			return invalid(string(typ) + " needs a link: chatapp cannot use a media id")
		}
		b = append(b, `{"link":`...)
		b = message.AppendJSONString(b, md.Link)
		if md.Caption != "" && typ != message.TypeAudio {
			b = append(b, `,"caption":`...)
			b = message.AppendJSONString(b, md.Caption)
		}
		if typ == message.TypeDocument {
			name := md.Filename
			if name == "" {
				name = linkName(md.Link)
			}
			if name == "" {
				return invalid("document has no filename and its link names no file")
			}
			b = append(b, `,"fileName":`...)
			b = message.AppendJSONString(b, name)
		}
		b = append(b, '}')
	case message.TypeLocation:
		var l metaLocation
		if err := json.Unmarshal(content, &l); err != nil {
			return invalid("location is not Meta's location object: " + err.Error())
		}
		if l.Latitude == "" || l.Longitude == "" {
			return invalid("location needs latitude and longitude")
		}
		b = append(b, `{"latitude":`...)
		b = append(b, l.Latitude...)
		b = append(b, `,"longitude":`...)
		b = append(b, l.Longitude...)
		if l.Name != "" {
			b = append(b, `,"name":`...)
			b = message.AppendJSONString(b, l.Name)
		}
		if l.Address != "" {
			b = append(b, `,"address":`...)
			b = message.AppendJSONString(b, l.Address)
		}
		b = append(b, '}')
	default:
		return invalid(fmt.Sprintf("message type %q is not supported by chatapp", typ))
	}
	r.content = b
	r.params = append(r.params,
		param{key: "Type", s: "message"},
		param{key: "MessageType", s: string(typ)},
		param{key: "Content", b: r.content},
	)
	return nil
}

// parseAnswer reads ChatApp's answer {"Code","Message","MessageId","RequestId"}.
func parseAnswer(status int, body, retryAfter []byte, now time.Time) (provider.Result, error) {
	var code, msg, id, requestID string
	if json.Valid(body) {
		code = "OK" // without a string for the common case
		if raw, _ := jsonpeek.Member(body, "Code"); string(raw) != `"OK"` {
			code = stringMember(body, "Code")
		}
		if status >= 200 && status < 300 && code == "OK" {
			if id = stringMember(body, "MessageId"); id == "" {
				return provider.Result{}, ErrNoMessageID
			}
			return provider.Result{ProviderMessageID: id}, nil
		}
		msg = stringMember(body, "Message")
		requestID = stringMember(body, "RequestId")
	}
	if status >= 200 && status < 300 && code == "" {
		// A success status without Alibaba's answer says nothing of the
		// message: treat it as a lost answer.
		return provider.Result{}, ErrNoMessageID
	}
	e := &provider.Error{
		Class:      ClassForCode(code, status),
		HTTPStatus: status,
		Title:      msg,
		Details:    code,
		RetryAfter: httpc.RetryAfter(retryAfter, now),
		TraceID:    requestID,
	}
	if e.Title == "" {
		e.Title = code
	}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	return provider.Result{}, e
}

// stringMember returns the text of the string member key of the valid JSON
// object body, or "".
func stringMember(body []byte, key string) string {
	raw, ok := jsonpeek.Member(body, key)
	if !ok || !jsonpeek.IsString(raw) {
		return ""
	}
	var buf [128]byte
	v, ok := jsonpeek.AppendUnquote(buf[:0], raw)
	if !ok {
		return ""
	}
	return string(v)
}

func invalid(why string) *provider.Error {
	return &provider.Error{Class: provider.ClassPermanent, Title: "invalid message: " + why}
}

// Carries implements provider.Carrier: ChatApp's send takes templates,
// text, locations, and media by link (not a Meta media id).
func (c *Client) Carries(m *message.Message) bool {
	switch m.Type {
	case message.TypeTemplate, message.TypeText, message.TypeLocation:
		return true
	case message.TypeImage, message.TypeVideo, message.TypeAudio, message.TypeDocument:
		_, ok := jsonpeek.Member(m.Content, "link")
		return ok
	}
	return false
}

// copyCodes copies a template code map, so that the caller's stays its own.
func copyCodes(in map[string]map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(in))
	for name, langs := range in {
		m := make(map[string]string, len(langs))
		for lang, code := range langs {
			m[lang] = code
		}
		out[name] = m
	}
	return out
}
