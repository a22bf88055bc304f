package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// POST /api/v1/chatapp/send takes seed 004's send call as written: the body
// of Alibaba Cloud Chat App Message Service's SendChatappMessage (its
// PascalCase fields), answered in its style ({"RequestId", "Code":"OK",
// "Message", "MessageId"}), so that a system written against that API
// switches to wagate by changing its base URL (and its credentials: a
// wagate bearer token). Every message goes the way of wagate's own sends:
// the same checks (window, opt-out, idempotency), queue and statuses;
// GET /api/v1/whatsapp/messages/{MessageId}/status follows it.

// pathChatAppSend is the seed-004 send.
var pathChatAppSend = []byte("/api/v1/chatapp/send")

// chatAppRequest is SendChatappMessage's body. Fields of the Alibaba API
// that wagate has no use for are taken and ignored (listed at the end), so
// that the same body works; any other field is refused.
type chatAppRequest struct {
	ChannelType string `json:"ChannelType"`
	// Type: template (any time) or message (within the 24-hour window).
	Type string `json:"Type"`
	// MessageType of a message: text, image, video, audio, document or
	// sticker. Seed 004 puts it in Content; Alibaba's API beside it: both
	// are read.
	MessageType string `json:"MessageType"`
	From        string `json:"From"`
	To          string `json:"To"`
	// TemplateName names the template (wagate's template name), as
	// Alibaba's API has it beside TemplateCode; without it TemplateCode
	// does (seed 004's use), and a TemplateCode beside it is ChatApp's own
	// code, taken and ignored.
	TemplateName string `json:"TemplateName"`
	// TemplateCode names the template (wagate's template name) and
	// Language its language, for Type template.
	TemplateCode string `json:"TemplateCode"`
	Language     string `json:"Language"`
	// TemplateParams are the template's variables, an object (or, as
	// Alibaba's RPC calls send it, a JSON string of one).
	TemplateParams json.RawMessage `json:"TemplateParams"`
	// Content is the message's content, an object or a JSON string of
	// one: Text; Link, Caption, FileName for media; MessageType.
	Content json.RawMessage `json:"Content"`
	// Payload are the template's quick-reply buttons' payloads, in the
	// order of the buttons (an array, or a JSON string of one).
	Payload json.RawMessage `json:"Payload"`
	// FallBackContent is sent by SMS when the message is not delivered
	// within FallBackDuration seconds (60–43 200; without it, when it
	// fails). FallBackId (the console's fallback policy) is taken and
	// ignored: a number's fallback chain is its configuration's.
	FallBackID       string          `json:"FallBackId"`
	FallBackContent  string          `json:"FallBackContent"`
	FallBackDuration json.RawMessage `json:"FallBackDuration"`
	// Taken and ignored (Alibaba's task, account and tracking fields).
	TaskID           string          `json:"TaskId"`
	CustSpaceID      string          `json:"CustSpaceId"`
	CustWabaID       string          `json:"CustWabaId"`
	IsvCode          string          `json:"IsvCode"`
	Tag              string          `json:"Tag"`
	TrackingData     string          `json:"TrackingData"`
	ContextMessageID string          `json:"ContextMessageId"`
	Label            string          `json:"Label"`
	ProductAction    json.RawMessage `json:"ProductAction"`
	FlowAction       json.RawMessage `json:"FlowAction"`
}

// chatAppContent is Content's object (Alibaba writes its keys in either
// case; encoding/json matches them regardless).
type chatAppContent struct {
	Text        string `json:"text"`
	Link        string `json:"link"`
	Caption     string `json:"caption"`
	FileName    string `json:"fileName"`
	MessageType string `json:"messageType"`
}

// chatAppAnswer is the answer of the seed-004 API, success or failure.
type chatAppAnswer struct {
	RequestID string `json:"RequestId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	MessageID string `json:"MessageId,omitempty"`
	// Status is wagate's status of the message (queued, scheduled) on
	// success; WagateCode wagate's own error code on failure.
	Status     string `json:"Status,omitempty"`
	WagateCode string `json:"WagateCode,omitempty"`
}

// chatAppCode is the seed-004 API's code for one of wagate's error codes,
// where it has one; the others keep wagate's code.
func chatAppCode(code message.Code) string {
	switch code {
	case message.CodeInvalidRequest, message.CodeInvalidPhoneNumber, message.CodeUnsupportedMedia,
		message.CodeIdempotencyConflict, message.CodeMethodNotAllowed, message.CodePayloadTooLarge,
		message.CodeMediaNotFound, message.CodeConversationNotFound:
		return "InvalidParameter"
	case message.CodeTemplateNotFound:
		return "DetailError.TemplateNotExist"
	case message.CodeUnauthorized:
		return "Unauthorized"
	case message.CodeForbidden:
		return "Forbidden.NoPermission"
	case message.CodeRateLimitExceeded:
		return "Throttling.User"
	case message.CodeServiceUnavailable:
		return "ServiceUnavailable"
	case message.CodeInternal:
		return "InternalError"
	}
	return string(code)
}

// chatAppTypes are the MessageTypes a message takes here.
var chatAppTypes = []string{"text", "image", "video", "audio", "document", "sticker"}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// handleChatAppSend serves POST /api/v1/chatapp/send.
func (s *Server) handleChatAppSend(ctx *fasthttp.RequestCtx) {
	reqID := newRequestID()
	fail := func(e *apiError) { writeChatApp(ctx, reqID, e.Code.HTTPStatus(), e.Code, e.Message) }
	if !ctx.IsPost() {
		fail(methodNotAllowed("POST"))
		ctx.Response.Header.Set("Allow", "POST")
		return
	}
	p, ok := s.tokens.lookup(ctx.Request.Header.Peek("Authorization"))
	if !ok {
		fail(errUnauthorized)
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="wagate"`)
		return
	}
	if e := checkBodyText(ctx.PostBody()); e != nil {
		fail(e)
		return
	}
	var r chatAppRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		fail(e)
		return
	}
	o, e := s.chatAppOutbound(p, &r)
	if e != nil {
		fail(e)
		return
	}
	var a redis.EnqueueArgs
	s.enqueue(ctx, p, o, &a, nil)
	// enqueue answered in wagate's format: say the same in seed 004's.
	status := ctx.Response.StatusCode()
	var v struct {
		MessageID string `json:"message_id"`
		Status    string `json:"status"`
		Error     struct {
			Code    message.Code `json:"code"`
			Message string       `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(ctx.Response.Body(), &v) // wagate's own answer: always JSON
	if status >= 200 && status < 300 {
		ctx.Response.Reset()
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		b, _ := json.Marshal(chatAppAnswer{RequestID: reqID, Code: "OK", Message: "OK", MessageID: v.MessageID, Status: v.Status})
		ctx.SetBody(b)
		return
	}
	retry := string(ctx.Response.Header.Peek("Retry-After"))
	writeChatApp(ctx, reqID, status, v.Error.Code, v.Error.Message)
	if retry != "" {
		ctx.Response.Header.Set("Retry-After", retry)
	}
}

// writeChatApp answers a failure in the seed-004 API's format.
func writeChatApp(ctx *fasthttp.RequestCtx, reqID string, status int, code message.Code, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b, _ := json.Marshal(chatAppAnswer{RequestID: reqID, Code: chatAppCode(code), Message: msg, WagateCode: string(code)})
	ctx.SetBody(b)
}

// chatAppOutbound maps r onto a wagate send.
func (s *Server) chatAppOutbound(p Principal, r *chatAppRequest) (*outbound, *apiError) {
	bad := func(field, why string) *apiError {
		return invalidRequest(field+" "+why, map[string]any{"field": field})
	}
	switch {
	case r.ChannelType == "":
		return nil, bad("ChannelType", "is required: whatsapp")
	case !strings.EqualFold(r.ChannelType, "whatsapp"):
		return nil, bad("ChannelType", "must be whatsapp (the only channel this gateway sends on)")
	case r.To == "":
		return nil, bad("To", "is required: the guest's number")
	}
	to := plusNumber(r.To)
	if e := checkGuestPhone(to); e != nil {
		return nil, bad("To", "must be a phone number in international form (E.164, with or without the +)")
	}
	from := ""
	if r.From != "" {
		from = plusNumber(r.From)
	}
	d := &delivery{}
	if r.FallBackContent != "" || len(r.FallBackDuration) > 0 {
		if r.FallBackContent == "" {
			return nil, bad("FallBackContent", "is required with FallBackDuration: the SMS text")
		}
		d.FallbackText = r.FallBackContent
		if n, e := jsonInt(r.FallBackDuration, "FallBackDuration"); e != nil {
			return nil, e
		} else if n != 0 {
			if n < 60 || n > 43200 {
				return nil, bad("FallBackDuration", "must be from 60 to 43200 seconds")
			}
			d.FallbackAfterSeconds = n
		}
	}
	o := &outbound{GuestPhone: to, From: from, Delivery: d}
	switch r.Type {
	case "template":
		return s.chatAppTemplate(p, r, o)
	case "message":
		return s.chatAppMessage(p, r, o)
	case "":
		return nil, bad("Type", "is required: template or message")
	}
	return nil, bad("Type", "must be template or message")
}

func (s *Server) chatAppTemplate(p Principal, r *chatAppRequest, o *outbound) (*outbound, *apiError) {
	name := r.TemplateName
	if name == "" {
		name = r.TemplateCode
	}
	if name == "" {
		return nil, invalidRequest("TemplateCode (or TemplateName) is required with Type template", map[string]any{"field": "TemplateCode"})
	}
	params, e := unquoteJSON(r.TemplateParams, "TemplateParams")
	if e != nil {
		return nil, e
	}
	values, e := decodeTemplateParams(params, "TemplateParams")
	if e != nil {
		return nil, e
	}
	t, e := s.templateResolver(p).resolve(name, r.Language)
	if e != nil {
		return nil, e
	}
	payloads, e := chatAppPayloads(r.Payload)
	if e != nil {
		return nil, e
	}
	if len(payloads) > 0 {
		var quick []int
		if bs := t.Component(message.ComponentButtons); bs != nil {
			for i, b := range bs.Buttons {
				if b.Type == message.ButtonQuickReply {
					quick = append(quick, i)
				}
			}
		}
		if len(payloads) > len(quick) {
			return nil, invalidRequest("Payload has "+strconv.Itoa(len(payloads))+" payloads; the template has "+
				strconv.Itoa(len(quick))+" quick-reply buttons", map[string]any{"field": "Payload"})
		}
		for k, pl := range payloads {
			values[message.ParamButtonPrefix+strconv.Itoa(quick[k])] = pl
		}
	}
	if e := s.templateResolver(p).headerMedia(t, values, "TemplateParams"); e != nil {
		return nil, e
	}
	content, preview, e := buildTemplateSend(t, values, "TemplateParams")
	if e != nil {
		return nil, e
	}
	o.Type, o.Content, o.Template, o.Preview = message.TypeTemplate, content, t.Name, preview
	return o, nil
}

func (s *Server) chatAppMessage(p Principal, r *chatAppRequest, o *outbound) (*outbound, *apiError) {
	raw, e := unquoteJSON(r.Content, "Content")
	if e != nil {
		return nil, e
	}
	if len(raw) == 0 {
		return nil, invalidRequest("Content is required with Type message", map[string]any{"field": "Content"})
	}
	var c chatAppContent
	if e := decodeField(raw, &c, "Content"); e != nil {
		return nil, e
	}
	mt := r.MessageType
	if mt == "" {
		mt = c.MessageType
	}
	switch {
	case mt == "":
		return nil, invalidRequest("MessageType is required with Type message: "+strings.Join(chatAppTypes, ", "),
			map[string]any{"field": "MessageType"})
	case !slices.Contains(chatAppTypes, mt):
		return nil, invalidRequest("MessageType "+quote(mt)+" is not sent by this API: "+strings.Join(chatAppTypes, ", ")+
			" (interactive messages: POST /api/v1/whatsapp/messages/send-interactive)", map[string]any{"field": "MessageType"})
	case mt == "text":
		if c.Text == "" {
			return nil, invalidRequest("Content.Text is required with MessageType text", map[string]any{"field": "Content.Text"})
		}
		o.Type, o.Content, o.Preview = message.TypeText, appendTextContent(nil, c.Text, false), c.Text
		return o, nil
	case c.Link == "":
		return nil, invalidRequest("Content.Link is required with MessageType "+mt, map[string]any{"field": "Content.Link"})
	case mt == "document" && c.FileName == "":
		return nil, invalidRequest("Content.FileName is required with MessageType document", map[string]any{"field": "Content.FileName"})
	}
	media, _ := json.Marshal(mediaContentRequest{Link: c.Link, Caption: c.Caption, Filename: c.FileName})
	content, preview, e := s.buildMedia(p, message.Type(mt), media, nil)
	if e != nil {
		return nil, e
	}
	o.Type, o.Content, o.Preview = message.Type(mt), content, preview
	return o, nil
}

// plusNumber writes a number as E.164 with its +: Alibaba's API takes
// numbers without it ("8613800000000").
func plusNumber(n string) string {
	n = strings.TrimSpace(n)
	if n != "" && n[0] != '+' {
		return "+" + n
	}
	return n
}

// unquoteJSON takes a field that is an object (or array), or a JSON string
// holding one, as Alibaba's RPC calls send it; it returns the object's
// JSON ("" for null or absent).
func unquoteJSON(raw json.RawMessage, field string) (json.RawMessage, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '"' {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalidRequest(field+" must be an object or a JSON string of one", map[string]any{"field": field})
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) || (s[0] != '{' && s[0] != '[') {
		return nil, invalidRequest(field+" holds a string that is not a JSON object", map[string]any{"field": field})
	}
	return json.RawMessage(s), nil
}

// chatAppPayloads reads Payload: an array of strings, or a JSON string of
// one.
func chatAppPayloads(raw json.RawMessage) ([]string, *apiError) {
	raw, e := unquoteJSON(raw, "Payload")
	if e != nil || len(raw) == 0 {
		return nil, e
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, invalidRequest("Payload must be an array of strings", map[string]any{"field": "Payload"})
	}
	return out, nil
}

// jsonInt reads a whole number given as a number or a numeric string.
func jsonInt(raw json.RawMessage, field string) (int64, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, invalidRequest(field+" must be a whole number", map[string]any{"field": field})
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, invalidRequest(field+" must be a whole number", map[string]any{"field": field})
	}
	return n, nil
}
