package ingest

import (
	"context"
	"errors"
	"slices"
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
	// Language and RequestedLanguage: a template sent in another language
	// than the one asked for (the tenant's fallback) says both in its 202.
	Language, RequestedLanguage string
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
	if o.ConversationID != "" && !redis.ValidConversationID(o.ConversationID) {
		writeError(ctx, invalidRequest("conversation_id may hold letters, digits, '.', '_' and '-', at most 128",
			map[string]any{"field": "conversation_id", "max_length": 128}))
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
	// One deadline for the request's Redis work: its settings, its
	// tenant's count and the enqueue.
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	if message.ValidBSUID(a.Recipient) {
		// A guest whose number came with this id once is that number's
		// guest: the same window, opt-out and conversation.
		phone, err := s.store.PhoneOfUserID(rctx, sender, a.Recipient)
		if err != nil {
			s.log.Warn("guest's user id", "err", err)
			writeError(ctx, unavailable("sent"))
			return out
		}
		if phone != "" {
			a.Recipient = phone
		}
	}
	if a.StaffMemberID != "" || p.Staff != nil {
		if a.StaffMemberID, e = s.sendStaffID(rctx, p, a.StaffMemberID); e != nil {
			writeError(ctx, e)
			return out
		}
	}
	if o.ConversationID != "" && p.Staff != nil && p.Staff.StaffRole == redis.StaffAgent {
		// An agent writes into the conversations they see only: another
		// is as unknown to them as one that does not exist (an id no
		// conversation has goes on as for anyone: a new one of that name).
		c, err := s.store.FindConversation(rctx, p.Tenant.ID, p.Tenant.Senders, o.ConversationID)
		switch {
		case err == nil && !p.sees(c):
			writeError(ctx, conversationNotFound(o.ConversationID))
			return out
		case err != nil && !errors.Is(err, redis.ErrConversationNotFound):
			s.log.Warn("conversation", "err", err)
			writeError(ctx, unavailable("sent"))
			return out
		}
	}
	if o.Type != message.TypeTemplate {
		st, err := s.settings.Get(rctx, p.Tenant.ID)
		if err != nil {
			// Not knowing the tenant's rules, accept nothing: the defaults
			// could refuse what the tenant allowed, and Redis is not
			// answering anyway.
			s.log.Warn("tenant settings", "err", err)
			writeError(ctx, unavailable("sent"))
			return out
		}
		a.WindowCheck = st.WindowEnforcement
	}
	a.Fingerprint = fingerprint(a)
	if e := s.backpressure(rctx, p, 1, sender, key); e != nil {
		writeError(ctx, e)
		return out
	}
	return s.enqueueAndAnswer(rctx, ctx, a, o, out)
}

// backpressure refuses n more messages of p's tenant when its messages not
// yet sent are at its cap, so that Redis does not grow without bound. A
// repeat of an accepted request (its Idempotency-Key is known) passes: it
// queues nothing and must get its first answer back.
func (s *Server) backpressure(ctx context.Context, p Principal, n int64, sender, idemKey string) *apiError {
	limit := p.Tenant.MaxQueued
	if limit == 0 {
		limit = s.cfg.DefaultMaxQueued
	}
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

// enqueueAndAnswer queues a (within rctx's deadline) and answers 202 with
// the message id once Redis holds it. out is scratch for the answer,
// returned for reuse.
func (s *Server) enqueueAndAnswer(rctx context.Context, ctx *fasthttp.RequestCtx, a *redis.EnqueueArgs, o *outbound, out []byte) []byte {
	res, err := s.store.Enqueue(rctx, a)
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
	case redis.WindowClosed:
		s.depth.add(a.TenantID, -1)
		writeError(ctx, s.windowExpired(a, res.LastInboundMS))
		return out
	case redis.OptedOut:
		s.depth.add(a.TenantID, -1)
		writeError(ctx, optedOut(a, res))
		return out
	case redis.ConversationOther:
		s.depth.add(a.TenantID, -1)
		writeError(ctx, &apiError{Code: message.CodeInvalidRequest,
			Message:         "conversation_id names a conversation with another guest or from another number",
			Details:         map[string]any{"field": "conversation_id", "conversation_id": a.ConversationID, "guest_phone": a.Recipient, "from": a.Sender},
			RecoveryOptions: []string{"Leave conversation_id out: the message joins the guest's current conversation"}})
		return out
	case redis.ConversationClosed:
		s.depth.add(a.TenantID, -1)
		writeError(ctx, &apiError{Code: message.CodeConversationClosed, Message: "The conversation is closed",
			Details:         map[string]any{"conversation_id": a.ConversationID},
			RecoveryOptions: []string{"Reopen it with POST /api/v1/whatsapp/conversations/{id}/reopen", "Leave conversation_id out to begin a new conversation"}})
		return out
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
	out = message.AppendJSONString(out, res.ID)
	out = append(out, `,"status":`...)
	out = message.AppendJSONString(out, string(res.Status))
	if res.Conversation != "" {
		out = append(out, `,"conversation_id":`...)
		out = message.AppendJSONString(out, res.Conversation)
	}
	if o.Language != "" {
		out = append(out, `,"language":`...)
		out = message.AppendJSONString(out, o.Language)
		out = append(out, `,"requested_language":`...)
		out = message.AppendJSONString(out, o.RequestedLanguage)
	}
	out = append(out, '}')
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
	return out
}

// windowRecovery are the seed's recovery options for a closed window.
var windowRecovery = [...]string{
	"Use approved template message",
	"Wait for guest to initiate conversation",
	"Contact guest via alternative channel",
}

// windowExpired is the answer to a free-form message outside the guest's
// 24-hour window (seed 001's example), naming templates to use instead.
func (s *Server) windowExpired(a *redis.EnqueueArgs, lastInboundMS int64) *apiError {
	d := map[string]any{"guest_phone": a.Recipient, "from": a.Sender, "last_guest_message": nil, "window_expires": nil,
		"suggested_templates": s.suggestedTemplates(a.TenantID)}
	msg := "Cannot send free-form message outside 24-hour window"
	if lastInboundMS > 0 {
		d["last_guest_message"] = rfc3339(lastInboundMS)
		d["window_expires"] = rfc3339(lastInboundMS + s.store.Config().Window.Milliseconds())
	} else {
		msg += ": the guest has not written to this number"
	}
	return &apiError{Code: message.CodeMessageWindowExpired, Message: msg, Details: d, RecoveryOptions: windowRecovery[:]}
}

// optedOut is the answer to a message for a guest who opted out.
func optedOut(a *redis.EnqueueArgs, res redis.EnqueueResult) *apiError {
	d := map[string]any{"guest_phone": a.Recipient, "from": a.Sender, "opted_out_at": nil, "source": res.How}
	if res.SinceMS > 0 {
		d["opted_out_at"] = rfc3339(res.SinceMS)
	}
	return &apiError{Code: message.CodeGuestOptedOut, Message: "Guest has opted out of WhatsApp communications", Details: d,
		RecoveryOptions: []string{
			"Do not message the guest on WhatsApp until they opt in again",
			"The guest can opt in again by sending an opt-in keyword (START, ALTA… as the tenant's settings list)",
			"Contact guest via alternative channel",
		}}
}

// rfc3339 formats Unix ms as the API's times.
func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(apiTime) }

// apiTime is the layout of every time the API shows.
const apiTime = "2006-01-02T15:04:05.000Z07:00"

// suggestedTemplates are the templates a closed-window answer names: those
// of the tenant's choice in its settings that are approved now (a
// suggestion that cannot be sent helps nobody), else its approved utility
// templates.
func (s *Server) suggestedTemplates(tenant string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	st, _ := s.settings.Get(ctx, tenant)
	if len(st.SuggestedTemplates) > 0 {
		ts, err := s.store.Templates(ctx, tenant, redis.TemplateFilter{Status: message.TemplateApproved})
		if err != nil {
			s.log.Warn("templates for suggestions", "err", err)
			return st.SuggestedTemplates
		}
		out := []string{}
		for _, name := range st.SuggestedTemplates {
			if slices.ContainsFunc(ts, func(t message.Template) bool { return t.Name == name }) {
				out = append(out, name)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return s.utilityTemplates(ctx, tenant, 3)
}

// utilityTemplates returns up to n of tenant's approved utility templates'
// names, for a closed window's suggestions.
func (s *Server) utilityTemplates(ctx context.Context, tenant string, n int) []string {
	out := []string{}
	ts, err := s.store.Templates(ctx, tenant, redis.TemplateFilter{Category: string(message.CategoryUtility), Status: message.TemplateApproved})
	if err != nil {
		s.log.Warn("templates for suggestions", "err", err)
		return out
	}
	for _, t := range ts {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out
}
