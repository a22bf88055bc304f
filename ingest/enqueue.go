package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// outbound is one message a handler has decoded and built, on its way to
// the queue. The handler owns it; enqueue copies what it keeps.
type outbound struct {
	GuestPhone string
	// From picks one of the tenant's numbers; "" is its default.
	From string
	Type message.Type
	// Content is Meta's object for Type, as JSON.
	Content        []byte
	ConversationID string
	StaffMemberID  string
	// Template names the template of a template message. Every other
	// message is free-form and needs the guest's 24-hour window open.
	Template string
	// Preview is what the inbox shows of the message (its text, caption,
	// template name…).
	Preview string
	// ConversationMeta is merged into the conversation's metadata.
	ConversationMeta map[string]string
	// Delivery holds the priority, schedule, validity and fallback; nil
	// takes the defaults (transactional, now, no expiry).
	Delivery *delivery
}

// enqueue queues o for p and answers the request: 202 with the message id
// once Redis holds it, or the error that stopped it (a bad reference, the
// window, an opt-out, backpressure, Redis). a and out are the caller's
// scratch; out is returned for reuse.
func (s *Server) enqueue(ctx *fasthttp.RequestCtx, p Principal, o *outbound, a *redis.EnqueueArgs, out []byte) []byte {
	sender, e := pickSender(p, o.From)
	if e != nil {
		writeError(ctx, e)
		return out
	}
	key, e := idempotencyKey(ctx)
	if e != nil {
		writeError(ctx, e)
		return out
	}
	if len(o.ConversationID) > maxRefLen {
		writeError(ctx, invalidRequest("conversation_id is too long", map[string]any{"field": "conversation_id", "max_length": maxRefLen}))
		return out
	}
	if len(o.StaffMemberID) > maxRefLen {
		writeError(ctx, invalidRequest("staff_member_id is too long", map[string]any{"field": "staff_member_id", "max_length": maxRefLen}))
		return out
	}
	*a = redis.EnqueueArgs{
		TenantID: p.Tenant.ID, Sender: sender, Recipient: o.GuestPhone,
		Type: o.Type, Content: o.Content,
		ConversationID: o.ConversationID, StaffMemberID: o.StaffMemberID,
		IdempotencyKey: key, Template: o.Template, Preview: o.Preview, ConversationMeta: o.ConversationMeta,
		Lane: message.LaneTx,
	}
	if o.Delivery != nil {
		if e := o.Delivery.apply(a, time.Now()); e != nil {
			writeError(ctx, e)
			return out
		}
	}
	a.Fingerprint = fingerprint(a)
	if e := s.backpressure(p, 1, sender, key); e != nil {
		writeError(ctx, e)
		return out
	}
	return s.enqueueAndAnswer(ctx, a, out)
}

// backpressure refuses n more messages of p's tenant when its messages not
// yet sent are at its cap, so that Redis does not grow without bound. A
// repeat of an accepted request (its Idempotency-Key is known) passes: it
// queues nothing and must get its first answer back.
func (s *Server) backpressure(p Principal, n int64, sender, idemKey string) *apiError {
	limit := p.Tenant.MaxQueued
	if limit == 0 {
		limit = s.cfg.DefaultMaxQueued
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	open := s.depth.get(ctx, p.Tenant.ID)
	if open+n <= limit {
		s.depth.add(p.Tenant.ID, n)
		return nil
	}
	if idemKey != "" {
		if known, err := s.store.IdempotencyKnown(ctx, p.Tenant.ID, sender, idemKey); err == nil && known {
			return nil
		}
	}
	s.metrics.backpressure.Inc()
	return &apiError{Code: message.CodeRateLimitExceeded,
		Message:         "Too many of this tenant's messages are waiting to be sent",
		Details:         map[string]any{"queued": open, "limit": limit, "requested": n},
		RecoveryOptions: []string{"Retry after the Retry-After delay, when the queue has drained", "Send large campaigns with a lower rate"},
		RetryAfter:      5}
}

// enqueueAndAnswer queues a and answers 202 with the message id once Redis
// holds it. out is scratch for the answer, returned for reuse.
func (s *Server) enqueueAndAnswer(ctx *fasthttp.RequestCtx, a *redis.EnqueueArgs, out []byte) []byte {
	ectx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	res, err := s.store.Enqueue(ectx, a)
	cancel()
	if err != nil {
		s.log.Warn("enqueue failed", "err", err)
		if errors.Is(err, redis.ErrUnconfirmed) {
			writeError(ctx, unconfirmed())
		} else {
			writeError(ctx, unavailable("queued"))
		}
		return out
	}
	switch res.Outcome {
	case redis.Conflict:
		writeError(ctx, &apiError{Code: message.CodeIdempotencyConflict,
			Message:         "This Idempotency-Key was already used for a different message",
			Details:         map[string]any{"idempotency_key": a.IdempotencyKey, "message_id": res.ID},
			RecoveryOptions: []string{"Use a new Idempotency-Key for a new message", "Repeat the first request unchanged to get its message_id"}})
		return out
	case redis.Duplicate:
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
		s.metrics.idemReplays.Inc()
	}
	out = append(out, `{"message_id":`...)
	out = appendJSONString(out, res.ID)
	out = append(out, `,"status":`...)
	out = appendJSONString(out, string(res.Status))
	out = append(out, '}')
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
	return out
}

// prefixField puts parent in front of the field an error names, for errors
// of a nested object decoded on its own ("text" → "content.text").
func prefixField(e *apiError, parent string) *apiError {
	if f, ok := e.Details["field"].(string); ok && f != "" {
		e.Details["field"] = parent + "." + f
		e.Message = parent + "." + e.Message
	} else if e.Details == nil || e.Details["field"] == nil {
		e.Message = parent + ": " + e.Message
	}
	return e
}
