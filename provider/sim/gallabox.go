package sim

import (
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/wagate/wagate/message"
)

// The Gallabox endpoint takes what provider/gallabox sends:
//
//	POST /devapi/messages/whatsapp
//	apiKey: …, apiSecret: …
//	{"channelId","channelType":"whatsapp","recipient":{"name","phone"},
//	 "whatsapp":{"type":"text","text":{"body"}} | {"type":"template","template":{"templateName",…}}}
//
// and answers 202 {"id":"<24 hex>","status":"ACCEPTED","message":…} as
// Gallabox's API reference shows; its errors are not documented, and here
// are {"statusCode","error","message"}. Accepted messages get their status
// webhooks (callbacks.go).

const gallaboxPath = "/devapi/messages/whatsapp"

// GallaboxRequest is one send the Gallabox endpoint accepted.
type GallaboxRequest struct {
	ChannelID string
	// Phone is recipient.phone as sent; Type is whatsapp.type.
	Phone string
	Type  string
	// Body is the raw request body.
	Body []byte
	// ID is the message id the endpoint answered with.
	ID string
	At time.Time
}

// gallaboxState is the Gallabox endpoint's outage switch, record and
// counts.
type gallaboxState struct {
	outage           outageSwitch
	accepted, downed atomic.Int64

	mu       sync.Mutex
	reqs     ring[GallaboxRequest]
	rejected map[int]int64
}

func (st *gallaboxState) reject(status int) {
	st.mu.Lock()
	if st.rejected == nil {
		st.rejected = make(map[int]int64)
	}
	st.rejected[status]++
	st.mu.Unlock()
}

func (st *gallaboxState) stats(out *Stats) {
	out.GallaboxAccepted = st.accepted.Load()
	out.GallaboxOutage = st.downed.Load()
	out.GallaboxRejected = make(map[int]int64)
	st.mu.Lock()
	for k, v := range st.rejected {
		out.GallaboxRejected[k] = v
	}
	st.mu.Unlock()
}

// SetGallaboxOutage makes the Gallabox endpoint, and only it, fail until
// the given time (503, or a closed connection in OutageRefuse mode); the
// zero time ends the outage.
func (s *Server) SetGallaboxOutage(until time.Time) { s.gallabox.outage.set(until) }

// GallaboxRequests returns copies of the most recent accepted Gallabox
// sends, oldest first (at most Config.RecordRequests of them).
func (s *Server) GallaboxRequests() []GallaboxRequest {
	s.gallabox.mu.Lock()
	defer s.gallabox.mu.Unlock()
	return s.gallabox.reqs.all(func(r GallaboxRequest) GallaboxRequest {
		r.Body = append([]byte(nil), r.Body...)
		return r
	})
}

// gallaboxBody is the part of a send the endpoint checks.
type gallaboxBody struct {
	ChannelID   string `json:"channelId"`
	ChannelType string `json:"channelType"`
	Recipient   *struct {
		Name  string `json:"name"`
		Phone string `json:"phone"`
	} `json:"recipient"`
	WhatsApp *struct {
		Type string `json:"type"`
		Text *struct {
			Body string `json:"body"`
		} `json:"text"`
		Template *struct {
			TemplateName string            `json:"templateName"`
			BodyValues   map[string]string `json:"bodyValues"`
			HeaderValues map[string]string `json:"headerValues"`
			ButtonValues []json.RawMessage `json:"buttonValues"`
		} `json:"template"`
	} `json:"whatsapp"`
}

// validateGallabox returns the message of the first problem of a send, or
// "".
func validateGallabox(raw []byte, b *gallaboxBody) string {
	if err := json.Unmarshal(raw, b); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return te.Field + " has the wrong type"
		}
		return "Body is not valid JSON"
	}
	switch {
	case b.ChannelID == "":
		return "channelId is required"
	case b.ChannelType != "" && b.ChannelType != "whatsapp":
		return "channelType must be whatsapp"
	case b.Recipient == nil || b.Recipient.Phone == "":
		return "recipient.phone is required"
	case !validTo(b.Recipient.Phone):
		return "recipient.phone must be a phone number of 7 to 15 digits"
	case b.WhatsApp == nil || b.WhatsApp.Type == "":
		return "whatsapp.type is required"
	}
	w := b.WhatsApp
	switch w.Type {
	case "text":
		switch {
		case w.Text == nil || w.Text.Body == "":
			return "whatsapp.text.body is required"
		case utf8.RuneCountInString(w.Text.Body) > maxTextRunes:
			return "whatsapp.text.body must be at most 4096 characters"
		}
	case "template":
		if w.Template == nil || w.Template.TemplateName == "" {
			return "whatsapp.template.templateName is required"
		}
	default:
		return "whatsapp.type must be one of text, template"
	}
	return ""
}

func (s *Server) gallaboxError(ctx *fasthttp.RequestCtx, status int, msg string) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"statusCode":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"error":`...)
	b = message.AppendJSONString(b, fasthttp.StatusMessage(status))
	b = append(b, `,"message":`...)
	b = message.AppendJSONString(b, msg)
	b = append(b, '}')
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
	s.gallabox.reject(status)
}

// handleGallabox serves POST /devapi/messages/whatsapp.
func (s *Server) handleGallabox(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	if s.gallabox.outage.on(now) {
		s.gallabox.downed.Add(1)
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.gallaboxError(ctx, fasthttp.StatusServiceUnavailable, "Service temporarily unavailable")
		return
	}
	if !ctx.IsPost() {
		s.gallaboxError(ctx, fasthttp.StatusMethodNotAllowed, "Cannot "+string(ctx.Method())+" "+gallaboxPath)
		return
	}
	key, secret := ctx.Request.Header.Peek("apiKey"), ctx.Request.Header.Peek("apiSecret")
	if subtle.ConstantTimeCompare(key, []byte(s.cfg.GallaboxAPIKey)) != 1 ||
		subtle.ConstantTimeCompare(secret, []byte(s.cfg.GallaboxAPISecret)) != 1 {
		s.gallaboxError(ctx, fasthttp.StatusUnauthorized, "Invalid apiKey or apiSecret")
		return
	}
	raw := ctx.PostBody()
	var body gallaboxBody
	if msg := validateGallabox(raw, &body); msg != "" {
		s.gallaboxError(ctx, fasthttp.StatusBadRequest, msg)
		return
	}

	id := s.newGallaboxID(now)
	if keep := s.cfg.RecordRequests; keep > 0 {
		s.gallabox.mu.Lock()
		r := s.gallabox.reqs.slot(keep)
		r.ChannelID, r.Phone, r.Type = body.ChannelID, body.Recipient.Phone, body.WhatsApp.Type
		r.Body = append(r.Body[:0], raw...)
		r.ID, r.At = id, now
		s.gallabox.mu.Unlock()
	}
	s.gallabox.accepted.Add(1)
	s.scheduleAlt(altGallabox, id, body.Recipient.Phone, "", "", now)

	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","status":"ACCEPTED","message":"Message received and being sent to recipient"}`...)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
}

// newGallaboxID returns a unique id in the shape of Gallabox's (MongoDB
// ObjectIds): 24 hex digits of the time, this server's random prefix and a
// sequence number.
func (s *Server) newGallaboxID(now time.Time) string {
	var raw [12]byte
	binary.BigEndian.PutUint32(raw[:4], uint32(now.Unix()))
	copy(raw[4:8], s.idPrefix[:4])
	binary.BigEndian.PutUint32(raw[8:], uint32(s.idSeq.Add(1)))
	var out [24]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
