package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// handle routes a request. Meta's paths are /{version}/{phone-number-id}/
// messages and /media; /_sim/ holds the simulator's own controls.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if rest, ok := bytes.CutPrefix(path, []byte("/_sim/")); ok {
		s.handleAdmin(ctx, string(rest))
		return
	}
	if rest, ok := bytes.CutPrefix(path, []byte(smsPathPrefix)); ok {
		s.handleSMS(ctx, rest)
		return
	}
	if string(path) == gallaboxPath {
		s.handleGallabox(ctx)
		return
	}
	if string(path) == "/" {
		// Alibaba's RPC APIs, ChatApp's among them, are called at the root.
		s.handleChatApp(ctx)
		return
	}
	if string(path) == attachmentsPath {
		s.handleAttachment(ctx)
		return
	}
	version, rest, _ := bytes.Cut(bytes.TrimPrefix(path, []byte("/")), []byte("/"))
	id, edge, _ := bytes.Cut(rest, []byte("/"))
	if len(version) < 2 || version[0] != 'v' || len(id) == 0 {
		s.unknownPath(ctx, path)
		return
	}
	switch string(edge) {
	case "messages":
		if !ctx.IsPost() {
			s.unsupported(ctx, id)
			return
		}
		s.handleSend(ctx, id)
	case "media":
		if !ctx.IsPost() {
			s.unsupported(ctx, id)
			return
		}
		s.handleMedia(ctx, id)
	case "message_templates":
		s.handleTemplates(ctx, id)
	case "":
		if !ctx.IsGet() {
			s.unsupported(ctx, id)
			return
		}
		s.handleMediaURL(ctx, id)
	default:
		s.unknownPath(ctx, path)
	}
}

func (s *Server) unknownPath(ctx *fasthttp.RequestCtx, path []byte) {
	m := "Unknown path components: " + string(path)
	s.answerError(ctx, &apiError{status: 400, typ: "OAuthException", code: 2500, message: m, details: m})
}

func (s *Server) unsupported(ctx *fasthttp.RequestCtx, id []byte) {
	e := errUnknownObject(id)
	e.message = "Unsupported " + string(bytes.ToLower(ctx.Method())) + e.message[len("Unsupported post"):]
	e.details = e.message
	s.answerError(ctx, &e)
}

// runtimeJSON is Runtime over HTTP; durations are Go duration strings.
type runtimeJSON struct {
	Latency         *string  `json:"latency,omitempty"`
	LatencyJitter   *string  `json:"latency_jitter,omitempty"`
	ErrorRate       *float64 `json:"error_rate,omitempty"`
	Throughput      *float64 `json:"throughput,omitempty"`
	ThroughputBurst *int     `json:"throughput_burst,omitempty"`
	SentDelay       *string  `json:"sent_delay,omitempty"`
	DeliveredDelay  *string  `json:"delivered_delay,omitempty"`
	ReadDelay       *string  `json:"read_delay,omitempty"`
	ReadRatio       *float64 `json:"read_ratio,omitempty"`
	FailRatio       *float64 `json:"fail_ratio,omitempty"`
	PairRate        *float64 `json:"pair_rate,omitempty"`
	PairBurst       *int     `json:"pair_burst,omitempty"`
	// RecipientErrors: recipient digits → Meta error code; {} clears.
	RecipientErrors map[string]int `json:"recipient_errors,omitempty"`
}

func toJSON(rt Runtime) runtimeJSON {
	d := func(v time.Duration) *string { s := v.String(); return &s }
	return runtimeJSON{
		Latency: d(rt.Latency), LatencyJitter: d(rt.LatencyJitter),
		ErrorRate: &rt.ErrorRate, Throughput: &rt.Throughput, ThroughputBurst: &rt.ThroughputBurst,
		SentDelay: d(rt.StatusDelays.Sent), DeliveredDelay: d(rt.StatusDelays.Delivered), ReadDelay: d(rt.StatusDelays.Read),
		ReadRatio: &rt.ReadRatio, FailRatio: &rt.FailRatio, PairRate: &rt.PairRate, PairBurst: &rt.PairBurst,
		RecipientErrors: rt.RecipientErrors,
	}
}

// apply sets the fields present in j on rt.
func (j *runtimeJSON) apply(rt *Runtime) error {
	for _, f := range []struct {
		v *string
		d *time.Duration
	}{
		{j.Latency, &rt.Latency}, {j.LatencyJitter, &rt.LatencyJitter},
		{j.SentDelay, &rt.StatusDelays.Sent}, {j.DeliveredDelay, &rt.StatusDelays.Delivered}, {j.ReadDelay, &rt.StatusDelays.Read},
	} {
		if f.v == nil {
			continue
		}
		d, err := time.ParseDuration(*f.v)
		if err != nil {
			return err
		}
		*f.d = d
	}
	set := func(p *float64, dst *float64) {
		if p != nil {
			*dst = *p
		}
	}
	set(j.ErrorRate, &rt.ErrorRate)
	set(j.PairRate, &rt.PairRate)
	if j.PairBurst != nil {
		rt.PairBurst = *j.PairBurst
	}
	if j.RecipientErrors != nil {
		rt.RecipientErrors = j.RecipientErrors
	}
	set(j.Throughput, &rt.Throughput)
	set(j.ReadRatio, &rt.ReadRatio)
	set(j.FailRatio, &rt.FailRatio)
	if j.ThroughputBurst != nil {
		rt.ThroughputBurst = *j.ThroughputBurst
	}
	return nil
}

// inboundJSON is the body of POST /_sim/inbound: a text, or with type a
// media message (text its caption, data the file in base64) or contacts.
type inboundJSON struct {
	PhoneNumberID string          `json:"phone_number_id"`
	From          string          `json:"from"`
	Name          string          `json:"name"`
	Text          string          `json:"text"`
	Type          string          `json:"type"`
	MIMEType      string          `json:"mime_type"`
	Data          []byte          `json:"data"`
	Filename      string          `json:"filename"`
	Contacts      json.RawMessage `json:"contacts"`
	UserID        string          `json:"user_id"`
}

// handleAdmin serves the simulator's controls:
//
//	POST /_sim/outage?seconds=N   outage for N seconds (0 ends it)
//	GET  /_sim/config             the Runtime in force
//	POST /_sim/config             change Runtime fields, e.g. {"latency":"50ms","error_rate":0.1}
//	GET  /_sim/stats              Stats
//	GET  /_sim/rates?phone_number_id=ID   accepted sends of a number per Unix second
//	POST /_sim/inbound            {"phone_number_id","from","name","text"}: post an inbound message;
//	                              with "type" (image, document, audio, video, sticker) and optional
//	                              "mime_type", "data" (base64), "filename" a media message ("text" its
//	                              caption), with "type":"contacts" and "contacts" (Meta's array) contact cards
//	POST /_sim/media/outage?seconds=N     media downloads answer 500 for N seconds (0 ends it)
//	POST /_sim/sms/outage?seconds=N       outage of the SMS endpoint alone
//	POST /_sim/gallabox/outage?seconds=N  outage of the Gallabox endpoint alone
//	POST /_sim/chatapp/outage?seconds=N   outage of the ChatApp endpoint alone
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx, what string) {
	post := ctx.IsPost()
	switch {
	case what == "outage" && post:
		secs, err := strconv.ParseFloat(string(ctx.QueryArgs().Peek("seconds")), 64)
		if err != nil || secs < 0 {
			adminError(ctx, fasthttp.StatusBadRequest, errors.New("seconds must be a number of seconds, 0 to end the outage"))
			return
		}
		until := time.Time{}
		if secs > 0 {
			until = time.Now().Add(time.Duration(secs * float64(time.Second)))
		}
		s.SetOutage(until)
		adminJSON(ctx, map[string]any{"outage_until": until})
	case (what == "sms/outage" || what == "gallabox/outage" || what == "chatapp/outage") && post:
		s.adminAltOutage(ctx, what)
	case what == "config" && post:
		var j runtimeJSON
		rt := s.Runtime()
		if err := json.Unmarshal(ctx.PostBody(), &j); err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		if err := j.apply(&rt); err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		if err := s.SetRuntime(rt); err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		adminJSON(ctx, toJSON(s.Runtime()))
	case what == "config":
		adminJSON(ctx, toJSON(s.Runtime()))
	case what == "stats":
		adminJSON(ctx, s.Stats())
	case what == "receipts":
		// The read receipts a number took, oldest first.
		rs := s.ReadReceipts(string(ctx.QueryArgs().Peek("phone_number_id")))
		out := make([]map[string]any, len(rs))
		for i, r := range rs {
			out[i] = map[string]any{"message_id": r.MessageID, "typing_indicator": r.Typing, "at": r.At}
		}
		adminJSON(ctx, out)
	case what == "rates":
		per := s.SendsPerSecond(string(ctx.QueryArgs().Peek("phone_number_id")))
		out := make(map[string]int, len(per))
		for sec, n := range per {
			out[strconv.FormatInt(sec, 10)] = n
		}
		adminJSON(ctx, out)
	case what == "inbound" && post:
		var j inboundJSON
		if err := json.Unmarshal(ctx.PostBody(), &j); err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		id, mediaID, err := s.InboundMessage(j.PhoneNumberID, j.From, j.Name, InboundMessage{Type: j.Type, Text: j.Text,
			MIME: j.MIMEType, Data: j.Data, Filename: j.Filename, Contacts: j.Contacts, UserID: j.UserID})
		if err != nil {
			adminError(ctx, fasthttp.StatusBadRequest, err)
			return
		}
		out := map[string]string{"id": id}
		if mediaID != "" {
			out["media_id"] = mediaID
		}
		adminJSON(ctx, out)
	case what == "media/outage" && post:
		secs, err := strconv.ParseFloat(string(ctx.QueryArgs().Peek("seconds")), 64)
		if err != nil || secs < 0 {
			adminError(ctx, fasthttp.StatusBadRequest, errors.New("seconds must be a number of seconds, 0 to end the outage"))
			return
		}
		until := time.Time{}
		if secs > 0 {
			until = time.Now().Add(time.Duration(secs * float64(time.Second)))
		}
		s.SetMediaOutage(until)
		adminJSON(ctx, map[string]any{"outage_until": until})
	default:
		adminError(ctx, fasthttp.StatusNotFound, fmt.Errorf("no simulator control %s /_sim/%s", ctx.Method(), what))
	}
}

func adminJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, err)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func adminError(ctx *fasthttp.RequestCtx, status int, err error) {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
