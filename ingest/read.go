package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// ReadMarker passes a read receipt, and optionally a typing indicator, for
// a guest's message to the provider of the business number that received
// it (provider/meta's Client).
type ReadMarker interface {
	MarkRead(ctx context.Context, sender, providerMessageID string, typing bool) error
}

// actionTyping is POST /conversations/{id}/typing: the guest sees the
// business typing (and their last message read).
const actionTyping = "typing"

// receiptTimeout bounds one call to the provider for a receipt.
const receiptTimeout = 10 * time.Second

// receipts sends the receipts the inbox's reading implies, in the
// background: a slow provider must not hold a staff member's click.
// At most cap(sem) go at once; more are dropped (and counted), as a
// receipt is a courtesy the next read repeats.
type receipts struct {
	s       *Server
	markers map[string]ReadMarker
	log     *slog.Logger
	sem     chan struct{}
	wg      sync.WaitGroup
	dropped func()
}

func newReceipts(s *Server, markers map[string]ReadMarker, log *slog.Logger, dropped func()) *receipts {
	return &receipts{s: s, markers: markers, log: log, sem: make(chan struct{}, 64), dropped: dropped}
}

// markLatest marks the guest's newest message in c read at the provider
// (with a typing indicator when typing), in the background.
func (r *receipts) markLatest(c *redis.Conversation, typing bool) {
	m := r.markers[c.Sender]
	if m == nil || c.LastInboundMS == 0 {
		return
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.dropped()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), receiptTimeout)
		defer cancel()
		id, err := r.s.latestInbound(ctx, c)
		if err == nil && id != "" {
			err = m.MarkRead(ctx, c.Sender, id, typing)
		}
		if err != nil {
			r.log.Warn("read receipt", "conversation", c.ID, "err", err)
		}
	}()
}

// wait waits for the receipts in flight (at shutdown, bounded by their
// timeout).
func (r *receipts) wait() { r.wg.Wait() }

// latestInbound is the provider id of the guest's newest message in c ("":
// none in its recent history).
func (s *Server) latestInbound(ctx context.Context, c *redis.Conversation) (string, error) {
	h, _, err := s.store.ConversationHistory(ctx, c, 50, -1)
	if err != nil {
		return "", err
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Direction == "in" {
			return h[i].ID, nil
		}
	}
	return "", nil
}

// readRequest is the optional body of POST messages/{id}/read, and the
// body of POST messages/read (with the message's id).
type readRequest struct {
	// MessageID is the guest's message (POST messages/read only).
	MessageID string `json:"message_id"`
	// TypingIndicator also shows the guest that the business is typing.
	TypingIndicator bool `json:"typing_indicator"`
}

// readAnswer is what a receipt's call answers once the provider took it.
type readAnswer struct {
	Success         bool   `json:"success"`
	MessageID       string `json:"message_id"`
	From            string `json:"from"`
	GuestPhone      string `json:"guest_phone"`
	TypingIndicator bool   `json:"typing_indicator"`
}

// handleMessageRead serves POST /api/v1/whatsapp/messages/{id}/read: the
// guest's message id (as the conversation's history and the
// inbound_message webhook give it) is marked read at the provider, as
// Meta's own call does, and with {"typing_indicator": true} the guest
// sees the business typing. It answers once the provider did.
func (s *Server) handleMessageRead(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	var r readRequest
	if body := ctx.PostBody(); len(body) > 0 {
		if e := decodeJSON(body, &r); e != nil {
			writeError(ctx, e)
			return
		}
	}
	if r.MessageID != "" && r.MessageID != ps[0] {
		writeError(ctx, invalidRequest("message_id in the body is not the path's", map[string]any{"field": "message_id"}))
		return
	}
	s.messageRead(ctx, p, ps[0], r.TypingIndicator)
}

// handleMessageReadBody serves POST /api/v1/whatsapp/messages/read with
// {"message_id": …, "typing_indicator": …}, as Meta's own call takes it:
// the form for a message id with a "/" in it (Meta's ids are base64).
func (s *Server) handleMessageReadBody(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r readRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if r.MessageID == "" || len(r.MessageID) > 256 {
		writeError(ctx, invalidRequest("message_id is required: the guest's message id, at most 256 characters", map[string]any{"field": "message_id"}))
		return
	}
	s.messageRead(ctx, p, r.MessageID, r.TypingIndicator)
}

// messageRead marks the guest's message id read for p (see handleMessageRead).
func (s *Server) messageRead(ctx *fasthttp.RequestCtx, p Principal, id string, typing bool) {
	rctx, cancel := context.WithTimeout(context.Background(), receiptTimeout)
	defer cancel()
	o, err := s.store.FindInbound(rctx, p.Tenant.Senders, id)
	if err == nil && p.Staff != nil && p.Staff.StaffRole == redis.StaffAgent {
		err = s.agentSeesGuest(rctx, p, o)
	}
	switch {
	case errors.Is(err, redis.ErrInboundUnknown) || errors.Is(err, redis.ErrConversationNotFound) ||
		(err == nil && o.TenantID != p.Tenant.ID):
		writeError(ctx, &apiError{Code: message.CodeMessageNotFound,
			Message: "No guest's message with this id reached your numbers in the last 8 days",
			Details: map[string]any{"message_id": id}})
	case err != nil:
		s.log.Warn("guest's message", "err", err)
		writeError(ctx, unavailable("marked read"))
	default:
		s.markRead(ctx, rctx, o.Sender, o.Guest, id, typing)
	}
}

// agentSeesGuest is nil when agent p sees the guest's current
// conversation with the number o names, else ErrConversationNotFound (or
// Redis's error): an agent marks read only where they may read.
func (s *Server) agentSeesGuest(ctx context.Context, p Principal, o redis.InboundOrigin) error {
	g, err := s.store.Guest(ctx, o.Sender, o.Guest)
	if err != nil {
		return err
	}
	if g.Conversation == "" {
		return redis.ErrConversationNotFound
	}
	c, err := s.store.FindConversation(ctx, p.Tenant.ID, []string{o.Sender}, g.Conversation)
	if err == nil && !p.sees(c) {
		err = redis.ErrConversationNotFound
	}
	return err
}

// handleTyping serves POST /conversations/{id}/typing: the guest's newest
// message in it is marked read and the guest sees the business typing
// (for up to 25 seconds, or until the next message).
func (s *Server) handleTyping(ctx *fasthttp.RequestCtx, p Principal, id string) {
	rctx, cancel := context.WithTimeout(context.Background(), receiptTimeout)
	defer cancel()
	c := s.conversation(ctx, rctx, p, id)
	if c == nil {
		return
	}
	wamid, err := s.latestInbound(rctx, c)
	if err != nil {
		s.log.Warn("conversation history", "err", err)
		writeError(ctx, unavailable("marked"))
		return
	}
	if wamid == "" {
		writeError(ctx, &apiError{Code: message.CodeMessageNotFound,
			Message: "The guest has not written in this conversation: a typing indicator answers a guest's message",
			Details: map[string]any{"conversation_id": c.ID}})
		return
	}
	s.markRead(ctx, rctx, c.Sender, c.Guest, wamid, true)
}

// markRead passes a receipt for the guest's message wamid to sender's
// provider and answers the call.
func (s *Server) markRead(ctx *fasthttp.RequestCtx, rctx context.Context, sender, guest, wamid string, typing bool) {
	m := s.cfg.ReadMarkers[sender]
	if m == nil {
		writeError(ctx, invalidRequest("Read receipts and typing indicators go to Meta only: "+sender+
			" sends through a provider that has none", map[string]any{"from": sender}))
		return
	}
	if err := m.MarkRead(rctx, sender, wamid, typing); err != nil {
		var pe *provider.Error
		msg := "The provider did not take the receipt"
		if errors.As(err, &pe) {
			msg += ": " + pe.Title
		}
		s.log.Warn("read receipt", "err", err)
		writeError(ctx, &apiError{Code: message.CodeProviderError, Message: msg,
			Details: map[string]any{"message_id": wamid, "from": sender}})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, readAnswer{Success: true, MessageID: wamid, From: sender, GuestPhone: guest, TypingIndicator: typing})
}
