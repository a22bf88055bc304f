package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/wagate/wagate/message"
)

// apiError is one of Meta's error answers.
type apiError struct {
	status  int
	typ     string
	code    int
	subcode int
	message string
	details string
}

// The fixed answers.
var (
	errBadToken = apiError{status: 401, typ: "OAuthException", code: 190,
		message: "Invalid OAuth access token - Cannot parse access token", details: "Invalid OAuth access token - Cannot parse access token"}
	errThroughput = apiError{status: 400, typ: "OAuthException", code: 130429,
		message: "(#130429) Rate limit hit", details: "Cloud API message throughput has been reached."}
	errTransient = apiError{status: 500, typ: "OAuthException", code: 131000,
		message: "(#131000) Something went wrong", details: "Something went wrong"}
	errOutage = apiError{status: 503, typ: "OAuthException", code: 2,
		message: "(#2) Service temporarily unavailable", details: "Service temporarily unavailable"}
	errNotJSON = apiError{status: 400, typ: "OAuthException", code: 100,
		message: "(#100) Invalid parameter", details: "The request body is not valid JSON."}
)

func errParam(message, details string) apiError {
	return apiError{status: 400, typ: "OAuthException", code: 100, message: message, details: details}
}

func errRequired(param string) apiError {
	m := "(#100) The parameter " + param + " is required."
	return errParam(m, m)
}

func errUnknownObject(id []byte) apiError {
	m := "Unsupported post request. Object with ID '" + string(id) + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
	return apiError{status: 400, typ: "GraphMethodException", code: 100, subcode: 33, message: m, details: m}
}

// bufPool holds answer buffers; a handler owns one until it has copied it
// into the response.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (s *Server) answerError(ctx *fasthttp.RequestCtx, e *apiError) {
	bp := bufPool.Get().(*[]byte)
	b := appendErrorBody((*bp)[:0], e)
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
	s.stats.reject(e.code)
}

// appendErrorBody writes Meta's error object.
func appendErrorBody(b []byte, e *apiError) []byte {
	b = append(b, `{"error":{"message":`...)
	b = message.AppendJSONString(b, e.message)
	b = append(b, `,"type":`...)
	b = message.AppendJSONString(b, e.typ)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	if e.subcode != 0 {
		b = append(b, `,"error_subcode":`...)
		b = strconv.AppendInt(b, int64(e.subcode), 10)
	}
	b = append(b, `,"error_data":{"messaging_product":"whatsapp","details":`...)
	b = message.AppendJSONString(b, e.details)
	b = append(b, `},"fbtrace_id":"`...)
	b = appendTraceID(b)
	return append(b, `"}}`...)
}

const traceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// appendTraceID appends a random fbtrace_id-like string of 23 characters.
func appendTraceID(b []byte) []byte {
	var r uint64
	for i := 0; i < 23; i++ {
		if i%10 == 0 {
			r = rand.Uint64()
		}
		b = append(b, traceAlphabet[r&63])
		r >>= 6
	}
	return b
}

// sendBody is the part of a send request the simulator checks.
type sendBody struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	// Recipient is a business-scoped user id, for a guest whose number
	// Meta withholds: "to" wins when both are given.
	Recipient   string          `json:"recipient"`
	Type        string          `json:"type"`
	Text        *textObject     `json:"text"`
	Image       *mediaObject    `json:"image"`
	Audio       *mediaObject    `json:"audio"`
	Video       *mediaObject    `json:"video"`
	Document    *mediaObject    `json:"document"`
	Sticker     *mediaObject    `json:"sticker"`
	Interactive *interactive    `json:"interactive"`
	Template    *templateObject `json:"template"`
	Location    *locationObject `json:"location"`
	Contacts    json.RawMessage `json:"contacts"`
	Reaction    *reactionObject `json:"reaction"`
	Context     *struct {
		MessageID string `json:"message_id"`
	} `json:"context"`
	// pricing is how the message is priced (set by checkContent from its
	// template's category), for its status webhooks' pricing object.
	pricing uint8 `json:"-"`
}

type textObject struct {
	Body       string `json:"body"`
	PreviewURL bool   `json:"preview_url"`
}

const (
	maxTextRunes    = 4096
	maxCaptionRunes = 1024
)

// validate checks a send body as Meta does and returns the answer for the
// first problem, or nil.
func validate(raw []byte, body *sendBody) *apiError {
	if err := json.Unmarshal(raw, body); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			e := errParam("(#100) Invalid parameter", "Param "+te.Field+" has the wrong type.")
			return &e
		}
		return &errNotJSON
	}
	switch body.MessagingProduct {
	case "whatsapp":
	case "":
		e := errRequired("messaging_product")
		return &e
	default:
		e := errParam("(#100) Param messaging_product must be one of {WHATSAPP} - got \""+body.MessagingProduct+"\".", "Unsupported messaging product.")
		return &e
	}
	switch body.RecipientType {
	case "", "individual", "group":
	default:
		e := errParam("(#100) Param recipient_type must be one of {INDIVIDUAL, GROUP} - got \""+body.RecipientType+"\".", "Unsupported recipient type.")
		return &e
	}
	if body.To == "" && body.Recipient != "" {
		if !message.ValidBSUID(body.Recipient) {
			e := apiError{status: 400, typ: "OAuthException", code: 131009, message: "(#131009) Parameter value is not valid",
				details: "Parameter recipient must be a business-scoped user id."}
			return &e
		}
	} else if body.To == "" {
		e := errRequired("to")
		return &e
	} else if !validTo(body.To) {
		e := apiError{status: 400, typ: "OAuthException", code: 131009, message: "(#131009) Parameter value is not valid",
			details: "Parameter to must be a phone number of 7 to 15 digits, with an optional leading +."}
		return &e
	}
	if body.Type == "" {
		body.Type = "text" // Meta's default
	}
	switch body.Type {
	case "text":
		if body.Text == nil || body.Text.Body == "" {
			e := errRequired("text['body']")
			return &e
		}
		if utf8.RuneCountInString(body.Text.Body) > maxTextRunes {
			e := errParam("(#100) Param text['body'] must be at most 4096 characters long.", "Message text is too long.")
			return &e
		}
	case "image", "audio", "video", "document", "sticker":
		return validateMedia(body.Type, body.media())
	case "interactive":
		return validateInteractive(body.Interactive)
	case "template":
		return validateTemplate(body.Template)
	case "location":
		return validateLocation(body.Location)
	case "contacts":
		return validateContacts(body.Contacts)
	case "reaction":
		return validateReaction(body.Reaction)
	default:
		e := errParam("(#100) Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got \""+body.Type+"\".", "Unsupported message type.")
		return &e
	}
	return nil
}

func (b *sendBody) media() *mediaObject {
	switch b.Type {
	case "image":
		return b.Image
	case "audio":
		return b.Audio
	case "video":
		return b.Video
	case "document":
		return b.Document
	}
	return b.Sticker
}

// validTo reports whether to is 7 to 15 digits with an optional "+".
func validTo(to string) bool {
	if to[0] == '+' {
		to = to[1:]
	}
	return digits(to, 7, 15)
}

// handleSend serves POST /{version}/{phone-number-id}/messages.
func (s *Server) handleSend(ctx *fasthttp.RequestCtx, phoneID []byte) {
	now := time.Now()
	if s.inOutage(now.UnixNano()) {
		s.stats.outage.Add(1)
		s.metrics.outage.Inc()
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.answerError(ctx, &errOutage)
		return
	}
	rt := s.rt.Load()
	if d := rt.Latency + jitter(rt.LatencyJitter); d > 0 {
		time.Sleep(d)
		now = time.Now()
	}
	if !s.authorized(ctx) {
		s.metrics.unauthorized.Inc()
		s.answerError(ctx, &errBadToken)
		return
	}
	num := s.numbers[string(phoneID)]
	if num == nil {
		s.metrics.invalid.Inc()
		e := errUnknownObject(phoneID)
		s.answerError(ctx, &e)
		return
	}
	raw := ctx.PostBody()
	if isReceipt(raw) {
		s.handleReceipt(ctx, num, raw)
		return
	}
	var body sendBody
	if e := validate(raw, &body); e != nil {
		s.metrics.invalid.Inc()
		s.answerError(ctx, e)
		return
	}
	// What only this server knows (its templates, its uploaded media) is
	// checked after the body's shape, as Meta does.
	if e := s.checkContent(&body); e != nil {
		s.metrics.invalid.Inc()
		s.answerError(ctx, e)
		return
	}
	if !num.lim.AllowN(now, 1) {
		s.stats.throttled.Add(1)
		s.metrics.throttled.Inc()
		s.answerError(ctx, &errThroughput)
		return
	}
	to := body.To
	if to == "" {
		to = body.Recipient
	}
	if e := recipientError(rt, to); e != nil {
		s.stats.injected.Add(1)
		s.answerError(ctx, e)
		return
	}
	if !num.pairs.allow(to, now, rt) {
		s.stats.pairThrottled.Add(1)
		s.answerError(ctx, &errPairRate)
		return
	}
	if rt.ErrorRate > 0 && rand.Float64() < rt.ErrorRate {
		s.stats.injected.Add(1)
		s.metrics.injected.Inc()
		s.answerError(ctx, &errTransient)
		return
	}

	wamid := s.newWAMID()
	waID := to
	if waID[0] == '+' {
		waID = waID[1:]
	}
	num.record(s.cfg.RecordRequests, raw, s.authHeader, now, wamid, to)
	s.stats.accepted.Add(1)
	s.metrics.accepted.Inc()
	if s.cfg.WebhookURL != "" {
		s.scheduleMessage(num, wamid, waID, now, rt, body.pricing)
	}

	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"messaging_product":"whatsapp","contacts":[{"input":`...)
	b = message.AppendJSONString(b, to)
	if to == body.Recipient {
		// Sent to a BSUID: Meta answers with the user id, no wa_id.
		b = append(b, `,"user_id":"`...)
	} else {
		b = append(b, `,"wa_id":"`...)
	}
	b = append(b, waID...)
	b = append(b, `"}],"messages":[{"id":"`...)
	b = append(b, wamid...)
	b = append(b, `","message_status":"accepted"}]}`...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
}

// refuse closes the connection without answering.
func refuse(ctx *fasthttp.RequestCtx) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { _ = c.Close() })
}

func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const bearer = "Bearer "
	return len(h) == len(bearer)+len(s.cfg.AccessToken) &&
		string(h[:len(bearer)]) == bearer && string(h[len(bearer):]) == s.cfg.AccessToken
}

// newWAMID returns a unique message id in Meta's form: "wamid." and
// base64 of this server's random prefix, a sequence number and noise.
func (s *Server) newWAMID() string {
	var raw [18]byte
	copy(raw[:6], s.idPrefix[:])
	binary.BigEndian.PutUint64(raw[6:14], s.idSeq.Add(1))
	binary.BigEndian.PutUint32(raw[14:], rand.Uint32())
	var out [6 + 24]byte
	copy(out[:], "wamid.")
	base64.StdEncoding.Encode(out[6:], raw[:])
	return string(out[:])
}
