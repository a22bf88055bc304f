package ingest

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// guestNumberJSON is what one of the tenant's numbers knows of a guest.
type guestNumberJSON struct {
	From           string     `json:"from"`
	OptedOut       bool       `json:"opted_out"`
	OptChangedAt   *string    `json:"opt_changed_at"`
	OptSource      *string    `json:"opt_source"`
	ConversationID *string    `json:"conversation_id"`
	Window         windowJSON `json:"window"`
}

// guestPhone checks the {phone} of a guests path, answering itself when it
// is not E.164.
func guestPhone(ctx *fasthttp.RequestCtx, phone string) bool {
	if message.ValidGuest(phone) {
		return true
	}
	writeError(ctx, &apiError{Code: message.CodeInvalidPhoneNumber, Message: "The guest's number in the path is neither E.164 nor a WhatsApp user id (BSUID)",
		Details:         map[string]any{"field": "phone", "value": phone},
		RecoveryOptions: []string{"Give the number in E.164 form, e.g. /guests/+14155550123 (or %2B14155550123)"}})
	return false
}

// handleGuestGet serves GET /api/v1/whatsapp/guests/{phone}: the guest's
// opt-out, window and current conversation with each of the tenant's
// numbers.
func (s *Server) handleGuestGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	if guestPhone(ctx, ps[0]) {
		s.answerGuest(ctx, p, ps[0])
	}
}

func (s *Server) answerGuest(ctx *fasthttp.RequestCtx, p Principal, phone string) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	out := struct {
		GuestPhone string            `json:"guest_phone"`
		UserID     *string           `json:"guest_user_id"`
		Name       *string           `json:"guest_name"`
		OptedOut   bool              `json:"opted_out"`
		Numbers    []guestNumberJSON `json:"numbers"`
	}{GuestPhone: phone, Numbers: []guestNumberJSON{}}
	now := time.Now()
	for _, sender := range p.Tenant.Senders {
		g, err := s.store.Guest(rctx, sender, phone)
		if err != nil {
			s.log.Warn("guest", "err", err)
			writeError(ctx, unavailable("read"))
			return
		}
		if out.Name == nil {
			out.Name = orNull(g.Name)
		}
		if out.UserID == nil {
			out.UserID = orNull(g.UserID)
		}
		out.OptedOut = out.OptedOut || g.OptedOut
		out.Numbers = append(out.Numbers, guestNumberJSON{From: sender, OptedOut: g.OptedOut, OptChangedAt: timeOrNil(g.OptChangedMS),
			OptSource: orNull(g.OptSource), ConversationID: orNull(g.Conversation), Window: s.window(g.LastInboundMS, now)})
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleGuestAction serves POST /api/v1/whatsapp/guests/{phone}/opt-out and
// /opt-in {from?, reason?}: the guest's choice recorded by staff, for one
// of the tenant's numbers or (without from) all of them. Each change is an
// event for the tenant's webhook.
func (s *Server) handleGuestAction(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	var out bool
	switch ps[1] {
	case "opt-out":
		out = true
	case "opt-in":
	default:
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No such guest action: " + quote(ps[1]),
			Details: map[string]any{"action": ps[1], "allowed": []string{"opt-out", "opt-in"}}})
		return
	}
	if !guestPhone(ctx, ps[0]) {
		return
	}
	var r struct {
		From   string `json:"from"`
		Reason string `json:"reason"`
	}
	if body := ctx.PostBody(); len(body) > 0 {
		if e := decodeJSON(body, &r); e != nil {
			writeError(ctx, e)
			return
		}
	}
	if utf8.RuneCountInString(r.Reason) > 1024 {
		writeError(ctx, invalidRequest("reason is longer than 1024 characters", map[string]any{"field": "reason"}))
		return
	}
	senders := p.Tenant.Senders
	if r.From != "" {
		if !slices.Contains(senders, r.From) {
			writeError(ctx, invalidRequest("from is not one of this tenant's numbers",
				map[string]any{"field": "from", "value": r.From, "allowed": senders}))
			return
		}
		senders = []string{r.From}
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	for _, sender := range senders {
		if _, err := s.store.SetOptOut(rctx, p.Tenant.ID, sender, ps[0], out, "api", r.Reason); err != nil {
			s.log.Warn("opt out", "err", err)
			writeError(ctx, &apiError{Code: message.CodeServiceUnavailable,
				Message:         "The message store failed: the change may be recorded for some of the numbers only",
				RecoveryOptions: []string{"Repeat the request: recording the same choice again changes nothing"}, RetryAfter: 1})
			return
		}
	}
	s.answerGuest(ctx, p, ps[0])
}
