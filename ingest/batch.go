package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// MaxBatch is the most messages one batch-send takes.
const MaxBatch = 10_000

// batchRequest is the body of POST /api/v1/whatsapp/messages/batch-send
// (seed 001): messages plus the batch's rate and delivery options.
type batchRequest struct {
	Messages  []batchMessage `json:"messages"`
	From      string         `json:"from"`
	RateLimit *struct {
		MessagesPerSecond float64 `json:"messages_per_second"`
		BatchSize         int     `json:"batch_size"`
	} `json:"rate_limit"`
	DeliveryOptions *struct {
		RetryFailed   *bool `json:"retry_failed"`
		TrackDelivery *bool `json:"track_delivery"`
	} `json:"delivery_options"`
	// TemplateName and Language send one template to every message of the
	// batch that has no content; each message's parameters fill it in.
	TemplateName string `json:"template_name"`
	Language     string `json:"language"`
	delivery
	// count is how many messages the body holds (Messages is left empty
	// when they are too many).
	count int
}

// batchMessage is one message of a batch: the seed's {phone, content}, or
// the send call's {guest_phone, message_type, content{text}}.
type batchMessage struct {
	Phone       string          `json:"phone"`
	GuestPhone  string          `json:"guest_phone"`
	MessageType string          `json:"message_type"`
	Content     json.RawMessage `json:"content"`
	// TemplateName, Language and Parameters make it a template message
	// instead of content (the batch's template_name and language are the
	// defaults), as templates/send takes them.
	TemplateName string          `json:"template_name"`
	Language     string          `json:"language"`
	Parameters   json.RawMessage `json:"parameters"`
	// text is the content's text, read while parsing when the content is
	// a string or {"text": …} (textErr says why it is not usable).
	text    string
	hasText bool
	textErr string
}

// itemError is one refused message of a batch.
type itemError struct {
	Index   int          `json:"index"`
	Code    message.Code `json:"code"`
	Message string       `json:"message"`
}

// decodeBatch parses and checks a batch; the whole batch is refused when a
// message is wrong, so that nothing is queued by half.
func decodeBatch(body []byte, r *batchRequest, a *redis.BatchArgs, tr *templateResolver) *apiError {
	p := batchParsers.Get()
	defer batchParsers.Put(p)
	if e := readBatch(p, body, r); e != nil {
		return e
	}
	switch n := r.count; {
	case n == 0:
		return invalidRequest("messages is required", map[string]any{"field": "messages"})
	case n > MaxBatch:
		return invalidRequest("A batch takes at most 10000 messages", map[string]any{"field": "messages", "count": n, "max": MaxBatch})
	}
	if r.RateLimit != nil {
		if mps := r.RateLimit.MessagesPerSecond; mps < 0 || math.IsNaN(mps) || mps > 10_000 {
			return invalidRequest("rate_limit.messages_per_second must be from 0 to 10000", map[string]any{"field": "rate_limit.messages_per_second"})
		}
		if r.RateLimit.BatchSize < 0 {
			return invalidRequest("rate_limit.batch_size must not be negative", map[string]any{"field": "rate_limit.batch_size"})
		}
		a.RatePerSecond = r.RateLimit.MessagesPerSecond
	}
	var errs []itemError
	a.Items = make([]redis.BatchItem, len(r.Messages))
	var content []byte
	for i := range r.Messages {
		m := &r.Messages[i]
		phone := m.Phone
		if phone == "" {
			phone = m.GuestPhone
		}
		if isBatchTemplate(r, m) {
			if !message.ValidGuest(phone) {
				errs = append(errs, itemError{i, message.CodeInvalidPhoneNumber, "phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)"})
				continue
			}
			c, preview, e := batchTemplate(tr, r, m, i)
			if e != nil {
				if e.Code.HTTPStatus() >= 500 {
					// Not the message's fault: the catalogue could not be read.
					return e
				}
				errs = append(errs, itemError{i, e.Code, e.Message})
				continue
			}
			a.Items[i] = redis.BatchItem{Recipient: phone, Type: message.TypeTemplate, Content: c, Preview: preview}
			continue
		}
		text, e := batchText(m)
		switch {
		case !message.ValidGuest(phone):
			errs = append(errs, itemError{i, message.CodeInvalidPhoneNumber, "phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)"})
			continue
		case e != "":
			errs = append(errs, itemError{i, message.CodeInvalidRequest, e})
			continue
		}
		start := len(content)
		content = appendTextContent(content, text, false)
		a.Items[i] = redis.BatchItem{Recipient: phone, Type: message.TypeText, Content: content[start:len(content):len(content)], Preview: text}
	}
	if len(errs) > 0 {
		shown := errs[:min(len(errs), 20)]
		// One code for the batch: the items' own when they all share it
		// (every phone invalid, say), else INVALID_REQUEST; each item's is
		// in details.errors.
		code := errs[0].Code
		for _, e := range errs[1:] {
			if e.Code != code {
				code = message.CodeInvalidRequest
				break
			}
		}
		return &apiError{Code: code, Message: "Some messages of the batch are not valid; nothing was queued",
			Details:         map[string]any{"invalid": len(errs), "errors": shown},
			RecoveryOptions: []string{"Fix or leave out the messages listed and send the batch again"}}
	}
	return nil
}

// batchParsers are the batch decoder's parsers: a batch body is large, and
// a parser keeps its memory from one to the next.
var batchParsers fastjson.ParserPool

// readBatch parses a batch body into r with p, refusing unknown fields and
// wrong types as decodeJSON does. A message's text content is read here,
// not decoded again per message.
func readBatch(p *fastjson.Parser, body []byte, r *batchRequest) *apiError {
	o, e := parseObject(p, body)
	if e != nil {
		return e
	}
	var fr fieldReader
	var buf []byte // the messages' raw content and parameters
	return fr.visit(o, "", func(k string, v *fastjson.Value) bool {
		switch k {
		case "messages":
			vs, err := v.Array()
			if err != nil {
				fr.fail(k, "an array", v)
				return true
			}
			r.count = len(vs)
			if len(vs) > MaxBatch {
				return true // refused by its count: nothing of it is read or kept
			}
			r.Messages = make([]batchMessage, len(vs))
			for i, mv := range vs {
				if fr.err != nil {
					break
				}
				readBatchMessage(&fr, &r.Messages[i], mv, &buf)
			}
		case "from":
			fr.str(&r.From, v, k)
		case "template_name":
			fr.str(&r.TemplateName, v, k)
		case "language":
			fr.str(&r.Language, v, k)
		case "rate_limit":
			r.RateLimit = &struct {
				MessagesPerSecond float64 `json:"messages_per_second"`
				BatchSize         int     `json:"batch_size"`
			}{}
			if ro := fr.object(v, k); ro != nil {
				fr.visit(ro, k, func(k2 string, v2 *fastjson.Value) bool {
					switch k2 {
					case "messages_per_second":
						fr.float(&r.RateLimit.MessagesPerSecond, v2, "rate_limit."+k2)
					case "batch_size":
						var n int64
						fr.int(&n, v2, "rate_limit."+k2)
						r.RateLimit.BatchSize = int(max(min(n, 1<<31-1), -1<<31))
					default:
						return false
					}
					return true
				})
			}
		case "delivery_options":
			r.DeliveryOptions = &struct {
				RetryFailed   *bool `json:"retry_failed"`
				TrackDelivery *bool `json:"track_delivery"`
			}{}
			if do := fr.object(v, k); do != nil {
				fr.visit(do, k, func(k2 string, v2 *fastjson.Value) bool {
					var b bool
					switch k2 {
					case "retry_failed":
						fr.bool(&b, v2, "delivery_options."+k2)
						r.DeliveryOptions.RetryFailed = &b
					case "track_delivery":
						fr.bool(&b, v2, "delivery_options."+k2)
						r.DeliveryOptions.TrackDelivery = &b
					default:
						return false
					}
					return true
				})
			}
		default:
			return fr.deliveryField(&r.delivery, k, v)
		}
		return true
	})
}

// readBatchMessage reads one message of a batch.
func readBatchMessage(fr *fieldReader, m *batchMessage, v *fastjson.Value, buf *[]byte) {
	const path = "messages"
	o := fr.object(v, path)
	if o == nil {
		return
	}
	fr.visit(o, path, func(k string, v *fastjson.Value) bool {
		switch k {
		case "phone":
			fr.str(&m.Phone, v, path+"."+k)
		case "guest_phone":
			fr.str(&m.GuestPhone, v, path+"."+k)
		case "message_type":
			fr.str(&m.MessageType, v, path+"."+k)
		case "template_name":
			fr.str(&m.TemplateName, v, path+"."+k)
		case "language":
			fr.str(&m.Language, v, path+"."+k)
		case "parameters":
			m.Parameters = fr.raw(buf, v)
		case "content":
			m.Content = fr.raw(buf, v)
			readBatchText(m, v)
		default:
			return false
		}
		return true
	})
}

// readBatchText reads a message's content as its text: a string, or an
// object holding text.
func readBatchText(m *batchMessage, v *fastjson.Value) {
	var b []byte
	switch v.Type() {
	case fastjson.TypeString:
		b = v.GetStringBytes()
	case fastjson.TypeObject:
		if t := v.Get("text"); t != nil && t.Type() != fastjson.TypeString && t.Type() != fastjson.TypeNull {
			m.textErr = "content must be a string or {\"text\": …}"
			return
		}
		b = v.GetStringBytes("text")
	default:
		m.textErr = "content must be a string or {\"text\": …}"
		return
	}
	if !utf8.Valid(b) {
		m.textErr = "the text is not valid UTF-8"
		return
	}
	m.text, m.hasText = string(b), true
}

// batchText returns a batch message's text, or why it has none.
func batchText(m *batchMessage) (string, string) {
	if m.MessageType != "" && m.MessageType != "text" {
		return "", "message_type must be text in a batch"
	}
	var text string
	switch {
	case m.textErr != "":
		return "", m.textErr
	case m.hasText:
		text = m.text
	case len(bytes.TrimSpace(m.Content)) == 0:
		return "", "content is required"
	default:
		return "", "content must be a string or {\"text\": …}"
	}
	if strings.TrimSpace(text) == "" {
		return "", "the text is empty"
	}
	if utf8.RuneCountInString(text) > message.MaxTextRunes {
		return "", "the text is longer than 4096 characters"
	}
	return text, ""
}

func (s *Server) handleBatchSend(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r batchRequest
	a := &redis.BatchArgs{TenantID: p.Tenant.ID}
	if e := decodeBatch(ctx.PostBody(), &r, a, s.templateResolver(p)); e != nil {
		writeError(ctx, e)
		return
	}
	sender, e := pickSender(p, r.From)
	if e != nil {
		writeError(ctx, e)
		return
	}
	key, e := idempotencyKey(ctx)
	if e != nil {
		writeError(ctx, e)
		return
	}
	if r.Priority == "" {
		r.Priority = "bulk"
	}
	if r.Priority != "bulk" {
		writeError(ctx, invalidRequest("batches go on the bulk lane: priority must be bulk or left out", map[string]any{"field": "priority"}))
		return
	}
	var one redis.EnqueueArgs
	now := time.Now()
	if e := r.delivery.apply(&one, now); e != nil {
		writeError(ctx, e)
		return
	}
	a.Sender, a.Campaign, a.DueMS, a.ExpiresMS = sender, one.Campaign, one.DueMS, one.ExpiresMS
	a.FallbackText, a.FallbackAfter = one.FallbackText, one.FallbackAfter
	a.IdempotencyKey = key
	a.NoRetry = r.DeliveryOptions != nil && r.DeliveryOptions.RetryFailed != nil && !*r.DeliveryOptions.RetryFailed
	sctx, scancel := s.apiCtx()
	st, err := s.settings.Get(sctx, p.Tenant.ID)
	scancel()
	if err != nil {
		// Not knowing the tenant's rules, accept nothing (see enqueue).
		s.log.Warn("tenant settings", "err", err)
		writeError(ctx, unavailable("sent"))
		return
	}
	// Free-form messages to guests outside their window (and anything to a
	// guest who opted out) are recorded failed, not queued.
	a.WindowCheck = st.WindowEnforcement
	a.ID = s.store.NewBatchID(sender)
	h := fnv.New64a()
	h.Write([]byte(sender))
	h.Write(ctx.PostBody())
	a.Fingerprint = h.Sum64()
	bctx, bcancel := s.apiCtx()
	e = s.backpressure(bctx, p, int64(len(a.Items)), sender, key)
	bcancel()
	if e != nil {
		writeError(ctx, e)
		return
	}
	ectx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.EnqueueTimeout)
	res, queued, err := s.store.EnqueueBatch(ectx, a)
	cancel()
	if err != nil {
		s.log.Warn("enqueue batch", "err", err, "queued", queued)
		writeError(ctx, &apiError{Code: message.CodeServiceUnavailable,
			Message: "The message store failed while the batch was being queued: part of it may be queued",
			Details: map[string]any{"batch_id": res.ID, "queued_now": queued, "total": len(a.Items)},
			RecoveryOptions: []string{"Send the same request again with the same Idempotency-Key: what is queued already is not queued twice",
				"Without an Idempotency-Key, check GET /api/v1/whatsapp/batches/{batch_id} before sending again"},
			RetryAfter: 1})
		return
	}
	switch res.Outcome {
	case redis.Conflict:
		writeError(ctx, &apiError{Code: message.CodeIdempotencyConflict,
			Message: "This Idempotency-Key was already used for a different batch",
			Details: map[string]any{"idempotency_key": key, "batch_id": res.ID}})
		return
	case redis.Duplicate:
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		s.metrics.idemReplays.Inc()
	}
	start := now
	if a.DueMS > 0 {
		start = time.UnixMilli(a.DueMS)
	}
	status := string(res.Status)
	if res.Outcome == redis.Duplicate {
		// A replay answers the batch as it stands, from its first times.
		rctx, rcancel := s.apiCtx()
		b, err := s.store.Batch(rctx, res.ID)
		rcancel()
		if err == nil {
			status, start = batchStatus(b), time.UnixMilli(max(b.CreatedMS, b.DueMS))
		}
	}
	rate := batchRate(s.cfg.SenderRate(sender), a.RatePerSecond)
	eta := start.Add(time.Duration(float64(len(a.Items)) / rate * float64(time.Second)))
	out := append(make([]byte, 0, 256), `{"batch_id":`...)
	out = message.AppendJSONString(out, res.ID)
	out = append(out, `,"status":`...)
	out = message.AppendJSONString(out, status)
	out = append(out, `,"accepted":`...)
	out = appendInt(out, int64(len(a.Items)))
	out = append(out, `,"from":`...)
	out = message.AppendJSONString(out, sender)
	out = append(out, `,"rate_limit":{"messages_per_second":`...)
	out = strconv.AppendFloat(out, rate, 'f', -1, 64)
	out = append(out, `},"estimated_completion":`...)
	out = appendTimeMS(out, eta.UnixMilli())
	out = append(out, '}')
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// handleBatchGet serves GET /api/v1/whatsapp/batches/{id}.
func (s *Server) handleBatchGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	s.serveBatch(ctx, p, ps[0], false)
}

// handleBatchCancel serves POST /api/v1/whatsapp/batches/{id}/cancel: the
// batch's messages not yet sent end "canceled".
func (s *Server) handleBatchCancel(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	s.serveBatch(ctx, p, ps[0], true)
}

// serveBatch answers a batch's counts, after canceling it when asked.
func (s *Server) serveBatch(ctx *fasthttp.RequestCtx, p Principal, id string, cancelling bool) {
	rctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.EnqueueTimeout)
	defer cancel()
	canceled := -1
	if cancelling {
		n, err := s.store.CancelBatch(rctx, p.Tenant.ID, id)
		if err != nil && !errors.Is(err, redis.ErrNotFound) {
			s.log.Warn("cancel batch", "err", err)
			writeError(ctx, unavailable("canceled"))
			return
		}
		canceled = n
	}
	b, err := s.store.Batch(rctx, id)
	if errors.Is(err, redis.ErrNotFound) || (err == nil && b.TenantID != p.Tenant.ID) {
		writeError(ctx, &apiError{Code: message.CodeBatchNotFound, Message: "No batch with this id",
			Details: map[string]any{"batch_id": id}})
		return
	}
	if err != nil {
		s.log.Warn("batch", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := append(make([]byte, 0, 512), `{"batch_id":`...)
	out = message.AppendJSONString(out, b.ID)
	out = append(out, `,"status":`...)
	out = message.AppendJSONString(out, batchStatus(b))
	out = append(out, `,"total":`...)
	out = appendInt(out, int64(b.Total))
	out = append(out, `,"counts":{`...)
	for i, st := range []message.Status{message.StatusScheduled, message.StatusQueued, message.StatusSending, message.StatusSent,
		message.StatusDelivered, message.StatusRead, message.StatusFailed, message.StatusExpired, message.StatusCanceled, message.StatusFallback} {
		if i > 0 {
			out = append(out, ',')
		}
		out = message.AppendJSONString(out, string(st))
		out = append(out, ':')
		out = appendInt(out, int64(b.Counts[st]))
	}
	out = append(out, `},"from":`...)
	out = message.AppendJSONString(out, b.Sender)
	out = append(out, `,"campaign_id":`...)
	out = message.AppendJSONString(out, b.Campaign)
	out = append(out, `,"rate_limit":{"messages_per_second":`...)
	out = strconv.AppendFloat(out, batchRate(s.cfg.SenderRate(b.Sender), b.RatePerSecond), 'f', -1, 64)
	out = append(out, `},"created_at":`...)
	out = appendTimeMS(out, b.CreatedMS)
	if canceled >= 0 {
		out = append(out, `,"canceled_now":`...)
		out = appendInt(out, int64(canceled))
	}
	out = append(out, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// handleBatchMessages serves GET /api/v1/whatsapp/batches/{id}/messages
// ?status=&limit=&cursor=: the batch's messages in the batch's order with
// their status and failure, so that a campaign's failures can be found
// without asking for each message.
func (s *Server) handleBatchMessages(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	args := ctx.QueryArgs()
	var want []message.Status
	if v := string(args.Peek("status")); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !message.Known(message.Status(st)) {
				writeError(ctx, invalidRequest("status must be message statuses (queued, scheduled, sending, sent, delivered, read, failed, expired, canceled, fallback), comma-separated",
					map[string]any{"field": "status", "value": st}))
				return
			}
			want = append(want, message.Status(st))
		}
	}
	limit := 100
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			writeError(ctx, invalidRequest("limit must be from 1 to 1000", map[string]any{"field": "limit"}))
			return
		}
		limit = n
	}
	cursor := 0
	if v := args.Peek("cursor"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			writeError(ctx, invalidRequest("cursor must be the next_cursor of a previous page", map[string]any{"field": "cursor"}))
			return
		}
		cursor = n
	}
	rctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.EnqueueTimeout)
	defer cancel()
	b, err := s.store.Batch(rctx, ps[0])
	if errors.Is(err, redis.ErrNotFound) || (err == nil && b.TenantID != p.Tenant.ID) {
		writeError(ctx, &apiError{Code: message.CodeBatchNotFound, Message: "No batch with this id",
			Details: map[string]any{"batch_id": ps[0]}})
		return
	}
	var ms []redis.BatchMessage
	next := -1
	if err == nil {
		ms, next, err = s.store.BatchMessages(rctx, b.ID, want, cursor, limit)
	}
	if err != nil {
		s.log.Warn("batch messages", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := append(make([]byte, 0, 128+128*len(ms)), `{"batch_id":`...)
	out = message.AppendJSONString(out, b.ID)
	out = append(out, `,"messages":[`...)
	for i := range ms {
		m := &ms[i]
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"message_id":`...)
		out = message.AppendJSONString(out, m.ID)
		out = append(out, `,"guest_phone":`...)
		out = message.AppendJSONString(out, m.Recipient)
		out = append(out, `,"status":`...)
		out = message.AppendJSONString(out, string(m.Status))
		out = appendFailure(out, m.Status, m.ErrorCode, m.ErrorTitle)
		out = append(out, '}')
	}
	out = append(out, `],"next_cursor":`...)
	if next < 0 {
		out = append(out, "null"...)
	} else {
		out = message.AppendJSONString(out, strconv.Itoa(next))
	}
	out = append(out, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// batchRate is the rate a batch goes at: its number's, or the batch's own
// cap when that is lower (0: no cap).
func batchRate(sender, batchCap float64) float64 {
	if batchCap > 0 && batchCap < sender {
		return batchCap
	}
	return sender
}

// batchStatus sums up a batch: scheduled or queued until a message moves,
// in_progress while some are not settled, then completed (or canceled when
// the rest was canceled).
func batchStatus(b *redis.BatchInfo) string {
	open := b.Counts[message.StatusQueued] + b.Counts[message.StatusScheduled] + b.Counts[message.StatusSending]
	switch {
	case open == 0 && b.Counts[message.StatusCanceled] > 0:
		return "canceled"
	case open == 0:
		return "completed"
	case b.Counts[message.StatusScheduled] == b.Total:
		return "scheduled"
	case b.Counts[message.StatusQueued]+b.Counts[message.StatusScheduled] == b.Total:
		return "queued"
	}
	return "in_progress"
}
