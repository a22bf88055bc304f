package ingest

import (
	"context"
	"encoding/json"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// isMedia reports whether an inbound type carries a file (media_received).
func isMedia(t string) bool {
	switch t {
	case "image", "document", "audio", "video", "sticker":
		return true
	}
	return false
}

// inboundPreview is what the inbox shows of a guest's message.
func inboundPreview(m *provider.Inbound) string {
	p := m.Text
	switch {
	case isMedia(m.Type) && p == "":
		p = "[" + m.Type + "]"
	case isMedia(m.Type):
		p = "[" + m.Type + "] " + p
	case m.Type == "reaction":
		p = "[reaction] " + p
	case m.Type == "location":
		p = "[location] " + p
	case p == "":
		p = "[" + m.Type + "]"
	}
	if utf8.RuneCountInString(p) > 200 {
		r := []rune(p)
		p = string(r[:200]) + "…"
	}
	return p
}

// inboundData is the data of an inbound_message or media_received event
// for the tenant's webhook (seed 001's handler reads guest_phone,
// message_content and conversation_id).
type inboundData struct {
	MessageID      string        `json:"message_id"`
	MessageType    string        `json:"message_type"`
	MessageContent string        `json:"message_content"`
	GuestName      string        `json:"guest_name,omitempty"`
	ReplyTo        string        `json:"reply_to,omitempty"`
	ReplyID        string        `json:"reply_id,omitempty"`
	Media          *mediaRefJSON `json:"media,omitempty"`
	Timestamp      string        `json:"timestamp"`
}

// fileInbound files one guest message: the window, the conversation, the
// opt keywords and the webhook event, once per provider message id; and
// confirms an opt-out or opt-in change to the guest when the tenant's
// settings say so. An error leaves the webhook body unacknowledged, to be
// processed again (which changes nothing twice).
func (p *Processor) fileInbound(ctx context.Context, m *provider.Inbound) error {
	ref, ok := p.cfg.Numbers[m.PhoneNumberID]
	if !ok {
		p.m.inbound.WithLabelValues("unknown_number").Inc()
		p.log.Debug("inbound message for a number no tenant has", "phone_number_id", m.PhoneNumberID)
		return nil
	}
	if !message.ValidE164(m.From) {
		p.m.inbound.WithLabelValues("invalid").Inc()
		return nil
	}
	st, err := p.settings.get(ctx, ref.Tenant)
	if err != nil {
		// Without the tenant's keywords a STOP could be missed: try again.
		return err
	}
	opt, keyword := "", ""
	if m.Type == "text" || m.Type == "button" || m.Type == "interactive" {
		if opt = st.optKeyword(m.Text); opt != "" {
			keyword = m.Text
		}
	}
	preview := inboundPreview(m)
	kind := message.EventInboundMessage
	d := inboundData{MessageID: m.ProviderMessageID, MessageType: m.Type, MessageContent: m.Text, GuestName: m.Name,
		ReplyTo: m.ContextID, ReplyID: m.ReplyID, Timestamp: rfc3339(m.AtMS)}
	if isMedia(m.Type) {
		kind = message.EventMediaReceived
		d.Media = &mediaRefJSON{ID: m.MediaID, MimeType: m.MimeType}
	}
	data, _ := json.Marshal(&d)
	res, err := p.store.RecordInbound(ctx, &redis.InboundArgs{
		TenantID: ref.Tenant, Sender: ref.Sender, Guest: m.From, Name: m.Name, ProviderMessageID: m.ProviderMessageID,
		AtMS: m.AtMS, Opt: opt, Keyword: keyword, NotifyKind: kind, NotifyData: data,
		Entry: redis.HistoryEntry{ID: m.ProviderMessageID, AtMS: m.AtMS, Type: m.Type, Preview: preview,
			ReplyTo: m.ContextID, ReplyID: m.ReplyID, MediaID: m.MediaID, MimeType: m.MimeType, Name: m.Name},
	})
	if err != nil {
		return err
	}
	if res.Duplicate {
		p.m.inbound.WithLabelValues("duplicate").Inc()
		return nil
	}
	p.m.inbound.WithLabelValues("new").Inc()
	if res.Opt == "" {
		return nil
	}
	p.m.inbound.WithLabelValues("opt_" + res.Opt).Inc()
	reply := st.OptOutReply
	if res.Opt == "in" {
		reply = st.OptInReply
	}
	if reply == "" {
		return nil
	}
	// The confirmation goes even to the guest who just opted out (Force);
	// its Idempotency-Key is the guest's message, so that processing this
	// body again sends it once.
	content := appendTextContent(nil, reply, false)
	a := &redis.EnqueueArgs{TenantID: ref.Tenant, Sender: ref.Sender, Recipient: m.From, Type: message.TypeText,
		Content: content, Lane: message.LaneTx, Preview: reply, Force: true, IdempotencyKey: "opt-" + res.Opt + "-" + m.ProviderMessageID}
	a.Fingerprint = fingerprint(a)
	if _, err := p.store.Enqueue(ctx, a); err != nil {
		p.log.Warn("opt confirmation not queued", "guest", m.From, "err", err)
	}
	return nil
}
