package sim

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/provider/internal/jsonpeek"
)

// ReadReceipt is a read receipt a business sent for a guest's message, as
// the simulator took it.
type ReadReceipt struct {
	PhoneNumberID string
	// MessageID is the guest's message (a wamid the simulator sent).
	MessageID string
	// Typing: the receipt asked for a typing indicator too.
	Typing bool
	At     time.Time
}

// maxRemembered bounds the guests' message ids a number remembers for
// receipts: the oldest are forgotten first, as Meta refuses receipts for
// messages older than 30 days.
const maxRemembered = 100000

// rememberInbound notes that wamid is a guest's message to n.
func (n *number) rememberInbound(wamid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inbound == nil {
		n.inbound = make(map[string]bool)
	}
	if len(n.inboundOrder) >= maxRemembered {
		delete(n.inbound, n.inboundOrder[0])
		n.inboundOrder = n.inboundOrder[1:]
	}
	n.inbound[wamid] = true
	n.inboundOrder = append(n.inboundOrder, wamid)
}

// isReceipt reports whether a messages request is a read receipt (a
// "status" member) rather than a send.
func isReceipt(raw []byte) bool {
	_, ok := jsonpeek.Member(raw, "status")
	return ok
}

// handleReceipt serves a read receipt, POST /{version}/{phone-number-id}/messages
// with {"messaging_product":"whatsapp","status":"read","message_id":…} and
// optionally "typing_indicator":{"type":"text"}, checked as the Cloud API
// does: the message must be one of the guest's messages to this number.
// It answers {"success":true}.
func (s *Server) handleReceipt(ctx *fasthttp.RequestCtx, n *number, raw []byte) {
	var b struct {
		MessagingProduct string `json:"messaging_product"`
		Status           string `json:"status"`
		MessageID        string `json:"message_id"`
		Typing           *struct {
			Type string `json:"type"`
		} `json:"typing_indicator"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		s.answerError(ctx, &errNotJSON)
		return
	}
	var e *apiError
	switch {
	case b.MessagingProduct != "whatsapp":
		e = invalidParam("(#100) Invalid parameter", "messaging_product is required and must be whatsapp")
	case b.Status != "read":
		e = invalidParam("(#100) Invalid parameter", "status must be read")
	case b.MessageID == "":
		e = invalidParam("(#100) The parameter message_id is required.", "message_id is required")
	case b.Typing != nil && b.Typing.Type != "text":
		e = invalidParam("(#100) Invalid parameter", "typing_indicator.type must be text")
	}
	if e == nil {
		n.mu.Lock()
		known := n.inbound[b.MessageID]
		if known {
			n.receipts = append(n.receipts, ReadReceipt{PhoneNumberID: n.PhoneNumberID, MessageID: b.MessageID,
				Typing: b.Typing != nil, At: time.Now()})
		}
		n.mu.Unlock()
		if !known {
			e = invalidParam("(#100) Invalid parameter", "message_id "+b.MessageID+" is not a message this phone number received")
		}
	}
	if e != nil {
		s.metrics.invalid.Inc()
		s.answerError(ctx, e)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"success":true}`)
}

// ReadReceipts returns the read receipts phoneNumberID took, oldest first.
func (s *Server) ReadReceipts(phoneNumberID string) []ReadReceipt {
	n := s.numbers[phoneNumberID]
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ReadReceipt(nil), n.receipts...)
}
