package inbound

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/sendargs"
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
	case m.Type == "contacts" && len(m.Contacts) > 0:
		p = "[contacts] " + contactNames(m.Contacts)
	case p == "":
		p = "[" + m.Type + "]"
	}
	if utf8.RuneCountInString(p) > 200 {
		r := []rune(p)
		p = string(r[:200]) + "…"
	}
	return p
}

// contactNames lists shared cards by their names, for previews.
func contactNames(cs []provider.Contact) string {
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		n := c.Name.FormattedName
		if n == "" {
			n = strings.TrimSpace(c.Name.FirstName + " " + c.Name.LastName)
		}
		if n == "" && len(c.Phones) > 0 {
			n = c.Phones[0].Phone
		}
		if n != "" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// inboundData is the data of an inbound_message or media_received event
// for the tenant's webhook (seed 001's handler reads guest_phone,
// message_content and conversation_id). A guest's media has its status
// and, once ready, a signed URL; contacts their cards.
type inboundData struct {
	MessageID      string `json:"message_id"`
	MessageType    string `json:"message_type"`
	MessageContent string `json:"message_content"`
	GuestName      string `json:"guest_name,omitempty"`
	// GuestUserID is the guest's business-scoped user id, when Meta gave it.
	GuestUserID string               `json:"guest_user_id,omitempty"`
	ReplyTo     string               `json:"reply_to,omitempty"`
	ReplyID     string               `json:"reply_id,omitempty"`
	Media       *mediakit.Attachment `json:"media,omitempty"`
	mediakit.Access
	Contacts  []provider.Contact `json:"contacts,omitempty"`
	Timestamp string             `json:"timestamp"`
}

// maxCaptionKept bounds a guest's caption in the history (WhatsApp's own
// limit); the webhook's message_content has it whole.
const maxCaptionKept = 1024

// truncRunes cuts s to at most n runes.
func truncRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
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
	guest, err := p.guestOf(ctx, ref.Sender, m)
	if err != nil {
		return err
	}
	if guest == "" {
		p.m.inbound.WithLabelValues("invalid").Inc()
		return nil
	}
	st, err := p.settings.Get(ctx, ref.Tenant)
	if err != nil {
		// Without the tenant's keywords a STOP could be missed: try again.
		return err
	}
	opt, keyword := "", ""
	if m.Type == "text" || m.Type == "button" || m.Type == "interactive" {
		if opt = st.OptKeyword(m.Text); opt != "" {
			keyword = m.Text
		}
	}
	preview := inboundPreview(m)
	d := inboundData{MessageID: m.ProviderMessageID, MessageType: m.Type, MessageContent: m.Text, GuestName: m.Name,
		ReplyTo: m.ContextID, ReplyID: m.ReplyID, Contacts: m.Contacts, Timestamp: rfc3339(m.AtMS), GuestUserID: m.UserID}
	in := &redis.InboundArgs{
		TenantID: ref.Tenant, Sender: ref.Sender, Guest: guest, Name: m.Name, ProviderMessageID: m.ProviderMessageID,
		AtMS: m.AtMS, Opt: opt, Keyword: keyword, NotifyKind: message.EventInboundMessage,
		Entry: redis.HistoryEntry{ID: m.ProviderMessageID, AtMS: m.AtMS, Type: m.Type, Preview: preview,
			ReplyTo: m.ContextID, ReplyID: m.ReplyID, Name: m.Name},
	}
	if len(m.Contacts) > 0 {
		in.Entry.Contacts, _ = json.Marshal(m.Contacts)
		if d.MessageContent == "" {
			d.MessageContent = contactNames(m.Contacts)
		}
	}
	if isMedia(m.Type) {
		// The file is downloaded later (download.go): the message is
		// recorded now with the id its copy will have, and the job goes
		// with it. media_received follows when the download ends.
		job := mediaJob{MediaID: mediakit.NewID(), ProviderMediaID: m.MediaID, PhoneNumberID: m.PhoneNumberID, Tenant: ref.Tenant,
			Sender: ref.Sender, Guest: guest, MessageID: m.ProviderMessageID, Type: m.Type, MIME: m.MimeType,
			Filename: mediakit.CleanFilename(m.Filename), Caption: truncRunes(m.Text, maxCaptionKept), Name: m.Name, ReplyTo: m.ContextID, AtMS: m.AtMS}
		in.MediaJob, _ = json.Marshal(&job)
		in.Entry.MediaID, in.Entry.ProviderMediaID, in.Entry.MimeType = job.MediaID, job.ProviderMediaID, job.MIME
		in.Entry.Filename, in.Entry.Caption = job.Filename, job.Caption
		d.Media = &mediakit.Attachment{ID: job.MediaID, ProviderMediaID: job.ProviderMediaID, MimeType: job.MIME, Filename: job.Filename, Caption: job.Caption}
		d.MediaStatus = mediakit.StatusPending
	}
	in.NotifyData, _ = json.Marshal(&d)
	res, err := p.store.RecordInbound(ctx, in)
	if err != nil {
		return err
	}
	if res.Duplicate {
		p.m.inbound.WithLabelValues("duplicate").Inc()
		return nil
	}
	p.m.inbound.WithLabelValues("new").Inc()
	if in.MediaJob != nil {
		p.dl.wake()
	}
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
	content := sendargs.AppendText(nil, reply, false)
	a := &redis.EnqueueArgs{TenantID: ref.Tenant, Sender: ref.Sender, Recipient: guest, Type: message.TypeText,
		Content: content, Lane: message.LaneTx, Preview: reply, Force: true, IdempotencyKey: "opt-" + res.Opt + "-" + m.ProviderMessageID}
	a.Fingerprint = sendargs.Fingerprint(a)
	if _, err := p.store.Enqueue(ctx, a); err != nil {
		p.log.Warn("opt confirmation not queued", "guest", guest, "err", err)
	}
	return nil
}

// guestOf is who wrote m to sender: the guest's number; or, when Meta
// withheld it (a username), the number a message with both ids told
// before, else the business-scoped user id. A message with both links
// them, so that the guest stays one guest (one window, opt-out and
// history) whichever id Meta gives next. "" when m has neither.
func (p *Processor) guestOf(ctx context.Context, sender string, m *provider.Inbound) (string, error) {
	bsuid := message.ValidBSUID(m.UserID)
	if message.ValidE164(m.From) {
		if bsuid {
			if err := p.store.LinkUserID(ctx, sender, m.UserID, m.From); err != nil {
				return "", err
			}
		}
		return m.From, nil
	}
	if !bsuid {
		return "", nil
	}
	phone, err := p.store.PhoneOfUserID(ctx, sender, m.UserID)
	if err != nil || phone != "" {
		return phone, err
	}
	return m.UserID, nil
}

// rfc3339 writes a time as the API and the tenant webhooks show every
// time.
func rfc3339(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
