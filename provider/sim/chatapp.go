package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/chatapp"
)

// The ChatApp endpoint plays Alibaba Cloud's Chat App Message Service
// (CAMS) as provider/chatapp and Alibaba's SDKs call it: an RPC call
//
//	POST /   (form parameters, in the body or the query, as the SDKs split them)
//	Action=SendChatappMessage&Version=2020-06-06&Format=JSON&AccessKeyId=…
//	&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=…&Timestamp=…
//	&ChannelType=whatsapp&Type=template|message&From=…&To=…&…&Signature=…
//
// checked as Alibaba's gateway checks it (the AccessKey, the timestamp
// within 15 minutes, a nonce used once, the RPC signature) and then as
// SendChatappMessage's parameters say; answered {"RequestId","Code":"OK",
// "Message","MessageId"}. Refusals of the gateway (key, signature,
// timestamp, nonce, action, missing common parameters) come with HTTP 4xx
// and Alibaba's codes; refusals of the message itself with HTTP 200 and an
// InvalidParameter… code, which SendChatappMessage's answer carries in its
// Code (a guess: ChatApp documents the codes, not their HTTP statuses).

const (
	chatappAction     = "SendChatappMessage"
	chatappVersion    = "2020-06-06"
	chatappHost       = "cams.ap-southeast-1.aliyuncs.com"
	chatappMaxSkew    = 15 * time.Minute
	chatappTimeLayout = "2006-01-02T15:04:05Z"
)

// ChatAppRequest is one send the ChatApp endpoint accepted.
type ChatAppRequest struct {
	// Params are the request's parameters but Signature, from the body
	// and the query.
	Params map[string]string
	// MessageID is the id the endpoint answered with.
	MessageID string
	At        time.Time
}

// chatappState is the ChatApp endpoint's outage switch, used nonces,
// record and counts.
type chatappState struct {
	outage           outageSwitch
	accepted, downed atomic.Int64

	mu       sync.Mutex
	reqs     ring[ChatAppRequest]
	rejected map[string]int64
	// nonces are the SignatureNonces seen, with when (unix ns): a nonce is
	// refused for as long as its timestamp would be taken.
	nonces map[string]int64
}

func (st *chatappState) reject(code string) {
	st.mu.Lock()
	if st.rejected == nil {
		st.rejected = make(map[string]int64)
	}
	st.rejected[code]++
	st.mu.Unlock()
}

// useNonce reports whether nonce is new, and remembers it.
func (st *chatappState) useNonce(nonce string, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.nonces == nil {
		st.nonces = make(map[string]int64)
	}
	if _, used := st.nonces[nonce]; used {
		return false
	}
	if len(st.nonces) >= 1<<16 {
		old := now.Add(-2 * chatappMaxSkew).UnixNano()
		for n, at := range st.nonces {
			if at < old {
				delete(st.nonces, n)
			}
		}
	}
	st.nonces[nonce] = now.UnixNano()
	return true
}

func (st *chatappState) stats(out *Stats) {
	out.ChatAppAccepted = st.accepted.Load()
	out.ChatAppOutage = st.downed.Load()
	out.ChatAppRejected = make(map[string]int64)
	st.mu.Lock()
	for k, v := range st.rejected {
		out.ChatAppRejected[k] = v
	}
	st.mu.Unlock()
}

// SetChatAppOutage makes the ChatApp endpoint, and only it, fail until the
// given time (503 ServiceUnavailable, or a closed connection in
// OutageRefuse mode); the zero time ends the outage.
func (s *Server) SetChatAppOutage(until time.Time) { s.chatapp.outage.set(until) }

// ChatAppRequests returns copies of the most recent accepted ChatApp
// sends, oldest first (at most Config.RecordRequests of them).
func (s *Server) ChatAppRequests() []ChatAppRequest {
	s.chatapp.mu.Lock()
	defer s.chatapp.mu.Unlock()
	return s.chatapp.reqs.all(func(r ChatAppRequest) ChatAppRequest {
		p := make(map[string]string, len(r.Params))
		for k, v := range r.Params {
			p[k] = v
		}
		r.Params = p
		return r
	})
}

// chatappError answers an Alibaba error: {"RequestId","HostId","Code","Message"}.
func (s *Server) chatappError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"RequestId": s.requestID(), "HostId": chatappHost, "Code": code, "Message": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json;charset=utf-8")
	ctx.SetBody(b)
	s.chatapp.reject(code)
}

// requestID returns an id in the shape of Alibaba's RequestId.
func (s *Server) requestID() string {
	n := s.idSeq.Add(1)
	return fmt.Sprintf("%08X-%04X-%04X-%04X-%012X", uint32(n>>16), uint16(n), 0x4000|uint16(s.idPrefix[0]), 0x8000|uint16(s.idPrefix[1]), n)
}

// handleChatApp serves POST / (and GET /: the RPC style takes both).
func (s *Server) handleChatApp(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	if s.chatapp.outage.on(now) {
		s.chatapp.downed.Add(1)
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.chatappError(ctx, fasthttp.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
		return
	}
	params := map[string]string{}
	collect := func(k, v []byte) { params[string(k)] = string(v) }
	ctx.QueryArgs().VisitAll(collect)
	if ctx.IsPost() {
		ctx.PostArgs().VisitAll(collect)
	}
	sig := params["Signature"]
	delete(params, "Signature")
	for _, k := range []string{"AccessKeyId", "SignatureNonce", "Timestamp", "Action", "Version"} {
		if params[k] == "" {
			s.chatappError(ctx, fasthttp.StatusBadRequest, "Missing"+k, "The input parameter \""+k+"\" that is mandatory for processing this request is not supplied.")
			return
		}
	}
	if sig == "" {
		s.chatappError(ctx, fasthttp.StatusBadRequest, "MissingSignature", "The input parameter \"Signature\" that is mandatory for processing this request is not supplied.")
		return
	}
	if params["AccessKeyId"] != s.cfg.ChatAppAccessKeyID {
		s.chatappError(ctx, fasthttp.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		return
	}
	if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
		s.chatappError(ctx, fasthttp.StatusBadRequest, "InvalidParameter", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
		return
	}
	at, err := time.Parse(chatappTimeLayout, params["Timestamp"])
	switch {
	case err != nil:
		s.chatappError(ctx, fasthttp.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
		return
	case at.Before(now.Add(-chatappMaxSkew)) || at.After(now.Add(chatappMaxSkew)):
		s.chatappError(ctx, fasthttp.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
		return
	}
	ps := make([]chatapp.Param, 0, len(params))
	for k, v := range params {
		ps = append(ps, chatapp.Param{Key: k, Value: v})
	}
	if chatapp.Sign(string(ctx.Method()), ps, s.cfg.ChatAppAccessKeySecret) != sig {
		s.chatappError(ctx, fasthttp.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
		return
	}
	if !s.chatapp.useNonce(params["SignatureNonce"], now) {
		s.chatappError(ctx, fasthttp.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
		return
	}
	if params["Action"] != chatappAction || params["Version"] != chatappVersion {
		s.chatappError(ctx, fasthttp.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		return
	}
	if code, msg := validateChatApp(params); code != "" {
		s.chatappError(ctx, fasthttp.StatusOK, code, msg)
		return
	}

	id := s.newGallaboxID(now) // 24 hex digits, as ChatApp's documented MessageId
	if keep := s.cfg.RecordRequests; keep > 0 {
		s.chatapp.mu.Lock()
		r := s.chatapp.reqs.slot(keep)
		r.Params, r.MessageID, r.At = params, id, now
		s.chatapp.mu.Unlock()
	}
	s.chatapp.accepted.Add(1)
	s.scheduleAlt(altChatApp, id, params["To"], params["From"], params["Type"], now)

	b, _ := json.Marshal(map[string]string{"RequestId": s.requestID(), "Code": "OK", "Message": "OK", "MessageId": id})
	ctx.SetContentType("application/json;charset=utf-8")
	ctx.SetBody(b)
}

// chatappMessageType reports whether t is one of SendChatappMessage's
// WhatsApp MessageTypes.
func chatappMessageType(t string) bool {
	switch t {
	case "text", "image", "video", "audio", "document", "interactive", "contacts", "location", "sticker", "reaction":
		return true
	}
	return false
}

// validateChatApp checks SendChatappMessage's own parameters and returns
// the code and message of the first problem, or "".
func validateChatApp(p map[string]string) (string, string) {
	switch {
	case p["ChannelType"] != "whatsapp" && p["ChannelType"] != "viber":
		return "InvalidParameter.ChannelType", "ChannelType must be whatsapp or viber."
	case !digits(p["From"], 5, 20):
		return "InvalidParameter.PhoneNumberError", "From is not a phone number."
	case !digits(p["To"], 7, 15):
		return "InvalidParameter.PhoneNumberError", "To is not a phone number."
	}
	switch p["Type"] {
	case "template":
		if p["TemplateCode"] == "" {
			return "InvalidParameter.TemplateCode", "TemplateCode is required when Type is template."
		}
		if p["Language"] == "" {
			return "InvalidParameter.LanguageNotSupport", "Language is required when Type is template."
		}
		if v, ok := p["TemplateParams"]; ok {
			var m map[string]string
			if json.Unmarshal([]byte(v), &m) != nil {
				return "InvalidParameter.TemplateParams", "TemplateParams must be a JSON object of strings."
			}
		}
	case "message":
		if !chatappMessageType(p["MessageType"]) {
			return "InvalidParameter.MessageType", "MessageType is missing or not one of WhatsApp's."
		}
		var c map[string]any
		if json.Unmarshal([]byte(p["Content"]), &c) != nil {
			return "InvalidParameter.Content", "Content must be a JSON object."
		}
		str := func(k string) string { s, _ := c[k].(string); return s }
		switch p["MessageType"] {
		case "text":
			if t := str("text"); t == "" || utf8.RuneCountInString(t) > maxTextRunes {
				return "InvalidParameter.Content", "Content.text is required (at most 4096 characters) when MessageType is text."
			}
			if _, ok := c["caption"]; ok {
				return "InvalidParameter.Content", "Content.caption is not taken when MessageType is text."
			}
		case "image", "video", "audio", "sticker":
			if str("link") == "" {
				return "InvalidParameter.Content", "Content.link is required when MessageType is " + p["MessageType"] + "."
			}
		case "document":
			if str("link") == "" || str("fileName") == "" {
				return "InvalidParameter.Content", "Content.link and Content.fileName are required when MessageType is document."
			}
		case "location":
			if _, ok := c["latitude"]; !ok {
				return "InvalidParameter.Content", "Content.latitude and Content.longitude are required when MessageType is location."
			}
			if _, ok := c["longitude"]; !ok {
				return "InvalidParameter.Content", "Content.latitude and Content.longitude are required when MessageType is location."
			}
		}
	default:
		return "InvalidParameter.Type", "Type must be template or message."
	}
	if v, ok := p["Payload"]; ok {
		var a []string
		if json.Unmarshal([]byte(v), &a) != nil {
			return "InvalidParameter.Payload", "Payload must be a JSON array of strings."
		}
	}
	return "", ""
}

// appendChatAppReport appends a ChatAppStatus push of one report.
func appendChatAppReport(b []byte, h *altHook) []byte {
	b = append(b, `[{"MessageId":`...)
	b = message.AppendJSONString(b, h.id)
	b = append(b, `,"TaskId":`...)
	b = message.AppendJSONString(b, h.id)
	b = append(b, `,"From":`...)
	b = message.AppendJSONString(b, h.from)
	b = append(b, `,"To":`...)
	b = message.AppendJSONString(b, h.to)
	b = append(b, `,"Status":"`...)
	b = append(b, [...]string{"Sent", "Delivered", "Read", "Failed"}[h.status]...)
	b = append(b, `","StatusDescription":`...)
	b = message.AppendJSONString(b, [...]string{"The message is sent to the channel provider.", "The message is delivered to the user's device.",
		"The message is read by the user.", "The message failed to be sent."}[h.status])
	b = append(b, `,"Timestamp":`...)
	b = strconv.AppendInt(b, h.atMS, 10)
	b = append(b, `,"MsgFrameType":`...)
	b = message.AppendJSONString(b, h.frame)
	if h.status == statusFailed {
		b = append(b, `,"ErrorCode":"131026","ErrorDescription":"131026:Receiver is incapable of receiving this message(Message Undeliverable.)"`...)
	}
	return append(b, "}]"...)
}
