package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// SignatureHeader is the header Meta signs its webhook deliveries with.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// VerifySignature reports whether header, the value of X-Hub-Signature-256,
// is "sha256=" and the hex HMAC-SHA256 of body keyed by appSecret. The
// comparison takes constant time; a malformed header is simply false.
// A receiver of many webhooks keeps a Verifier instead.
func VerifySignature(body []byte, header string, appSecret []byte) bool {
	return NewVerifier(appSecret).Verify(body, []byte(header))
}

// Verifier checks webhook signatures for one app secret, reusing its HMAC
// states: VerifySignature without the key schedule and the allocations per
// webhook. Safe for concurrent use.
type Verifier struct {
	secret []byte
	// states holds *verifyState; Verify takes one, resets it and gives it
	// back.
	states sync.Pool
}

// verifyState is one HMAC and the buffer its sum goes to (a local array
// would escape through the hash.Hash interface).
type verifyState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewVerifier returns a Verifier for appSecret.
func NewVerifier(appSecret []byte) *Verifier {
	v := &Verifier{secret: append([]byte(nil), appSecret...)}
	v.states.New = func() any { return &verifyState{mac: hmac.New(sha256.New, v.secret)} }
	return v
}

// Verify is VerifySignature with header as bytes (fasthttp's), without
// allocating.
func (v *Verifier) Verify(body, header []byte) bool {
	if len(header) != len(signaturePrefix)+2*sha256.Size || string(header[:len(signaturePrefix)]) != signaturePrefix {
		return false
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], header[len(signaturePrefix):]); err != nil {
		return false
	}
	st := v.states.Get().(*verifyState)
	st.mac.Reset()
	st.mac.Write(body)
	ok := hmac.Equal(st.mac.Sum(st.sum[:0]), want[:])
	v.states.Put(st)
	return ok
}

// AppendSignature appends the X-Hub-Signature-256 value for body to dst.
func AppendSignature(dst, body, appSecret []byte) []byte {
	mac := hmac.New(sha256.New, appSecret)
	mac.Write(body)
	var sum [sha256.Size]byte
	dst = append(dst, signaturePrefix...)
	return hex.AppendEncode(dst, mac.Sum(sum[:0]))
}

// Handler receives what a webhook reports, one call per status and per
// inbound message, in the order of the body. The pointer it gets is reused:
// it is valid only during the call, so copy what you keep (the strings in
// it may be kept). An error stops ParseWebhook, which returns it.
type Handler interface {
	HandleStatus(s *provider.StatusUpdate) error
	HandleInbound(m *provider.Inbound) error
}

// TemplateHandler is a Handler that also takes template status changes
// (changes of field "message_template_status_update"), in body order with
// the rest. ParseWebhook skips those changes for a Handler without it.
type TemplateHandler interface {
	Handler
	HandleTemplateStatus(s *provider.TemplateStatus) error
}

// fieldTemplateStatus is the webhook field of template status changes.
const fieldTemplateStatus = "message_template_status_update"

// LimitHandler is a Handler that also takes the business portfolio's
// messaging limit when Meta announces it (changes of fields
// "business_capability_update" and "phone_number_quality_update"), in
// body order with the rest. ParseWebhook skips those for a Handler without
// it.
type LimitHandler interface {
	Handler
	HandleMessagingLimit(l *provider.MessagingLimit) error
}

// The webhook fields that announce a portfolio's messaging limit.
const (
	fieldCapability = "business_capability_update"
	fieldQuality    = "phone_number_quality_update"
)

// ParseWebhook reads one webhook delivery of Meta's and calls h for each of
// its statuses and inbound messages, and, when h is a TemplateHandler, for
// each template status change. Changes of other fields than "messages" and
// "message_template_status_update", and keys it does not know, are skipped.
//
// The whole body is read before h is called, so a body that is not JSON
// (ErrMalformed) or not a whatsapp_business_account envelope
// (ErrNotWhatsApp) calls h for nothing.
func ParseWebhook(body []byte, h Handler) error {
	p := parserPool.Get().(*parser)
	defer p.release()
	if err := p.parse(body); err != nil {
		return fmt.Errorf("meta webhook: %w", err)
	}
	th, _ := h.(TemplateHandler)
	lh, _ := h.(LimitHandler)
	for _, r := range p.refs {
		var err error
		switch {
		case r.limit:
			if lh != nil {
				err = lh.HandleMessagingLimit(&p.limits[r.i])
			}
		case r.template:
			if th != nil {
				err = th.HandleTemplateStatus(&p.templates[r.i])
			}
		case r.inbound:
			err = h.HandleInbound(&p.inbound[r.i])
		default:
			err = h.HandleStatus(&p.statuses[r.i])
		}
		if err != nil {
			return fmt.Errorf("meta webhook: handler: %w", err)
		}
	}
	return nil
}

// parserPool holds parsers; ParseWebhook owns one from Get to release.
var parserPool = sync.Pool{New: func() any { return new(parser) }}

// parser collects a body's statuses and inbound messages before any is
// handed out. Its slices keep their capacity between bodies.
type parser struct {
	s        scanner
	statuses []provider.StatusUpdate
	inbound  []provider.Inbound
	refs     []ref
	contacts []contact
	// templates are the template status changes; account is the entry id
	// they belong to, while its entry is read.
	templates []provider.TemplateStatus
	account   []byte
	// limits are the messaging limits announced.
	limits []provider.MessagingLimit
}

// ref is one item in body order: a status, an inbound message or a
// template status change.
type ref struct {
	inbound  bool
	template bool
	limit    bool
	i        int
}

type contact struct {
	waID, userID, name string
}

// maxKeep bounds the capacity a pooled parser keeps, so that one huge body
// does not pin its memory.
const maxKeep = 1024

func (p *parser) release() {
	clear(p.statuses)
	clear(p.inbound)
	clear(p.contacts)
	clear(p.templates)
	p.statuses, p.inbound, p.refs, p.contacts = p.statuses[:0], p.inbound[:0], p.refs[:0], p.contacts[:0]
	p.templates, p.limits = p.templates[:0], p.limits[:0]
	if cap(p.statuses) > maxKeep || cap(p.inbound) > maxKeep || cap(p.refs) > 2*maxKeep || cap(p.contacts) > maxKeep || cap(p.s.scratch) > 64<<10 ||
		cap(p.templates) > maxKeep || cap(p.account) > 1024 {
		*p = parser{}
	}
	p.s.b = nil
	parserPool.Put(p)
}

func (p *parser) parse(body []byte) error {
	s := &p.s
	s.reset(body)
	whatsapp := false
	var k []byte
	if s.peek() != '{' {
		// JSON, but not an envelope; or not JSON at all.
		s.skip()
		s.end()
		if s.err != nil {
			return s.err
		}
		return ErrNotWhatsApp
	}
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			switch string(k) {
			case "object":
				whatsapp = string(s.str()) == "whatsapp_business_account"
			case "entry":
				p.entries()
			default:
				s.skip()
			}
		}
	}
	s.end()
	if s.err != nil {
		return s.err
	}
	if !whatsapp {
		return ErrNotWhatsApp
	}
	return nil
}

func (p *parser) entries() {
	s := &p.s
	var k []byte
	if !s.array() {
		return
	}
	for first := true; s.elem(first); first = false {
		if !s.object() {
			continue
		}
		// The entry's id (the WABA) and time may follow its changes.
		nt, nl := len(p.templates), len(p.limits)
		p.account = p.account[:0]
		var atMS int64
		for first := true; s.key(&k, first); first = false {
			switch string(k) {
			case "id":
				// Kept as bytes: only a template change needs it as a string.
				p.account = append(p.account, p.idString()...)
			case "time":
				atMS = s.intOrString() * 1000
			case "changes":
				if !s.array() {
					continue
				}
				for first := true; s.elem(first); first = false {
					p.change()
				}
			default:
				s.skip()
			}
		}
		if len(p.templates) > nt {
			account := string(p.account)
			for i := nt; i < len(p.templates); i++ {
				p.templates[i].AccountID, p.templates[i].AtMS = account, atMS
			}
		}
		for i := nl; i < len(p.limits); i++ {
			p.limits[i].AccountID, p.limits[i].AtMS = string(p.account), atMS
		}
	}
}

// idString reads an id written as a string or as a number; null and any
// other value read as nothing.
func (p *parser) idString() []byte {
	s := &p.s
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		t, _ := s.number()
		return t
	}
	s.skip()
	return nil
}

// change reads one entry[].changes[] item; only fields "messages" and
// "message_template_status_update" count, and the field may come after the
// value.
func (p *parser) change() {
	s := &p.s
	var k []byte
	ns, ni, nr, nt, nl := len(p.statuses), len(p.inbound), len(p.refs), len(p.templates), len(p.limits)
	messages, templates, limits := true, false, false
	if !s.object() {
		return
	}
	for first := true; s.key(&k, first); first = false {
		switch string(k) {
		case "field":
			f := s.str()
			messages, templates = string(f) == "messages", string(f) == fieldTemplateStatus
			limits = string(f) == fieldCapability || string(f) == fieldQuality
		case "value":
			p.value()
		default:
			s.skip()
		}
	}
	if !messages {
		clear(p.statuses[ns:])
		clear(p.inbound[ni:])
		p.statuses, p.inbound = p.statuses[:ns], p.inbound[:ni]
	}
	if !limits {
		clear(p.limits[nl:])
		p.limits = p.limits[:nl]
	}
	if !templates {
		clear(p.templates[nt:])
		p.templates = p.templates[:nt]
	} else if s.err == nil {
		for _, t := range p.templates[nt:] {
			if t.Event == "" || t.Name == "" && t.TemplateID == "" {
				s.fail("template status without event or template")
			}
		}
	}
	if !messages || !templates || !limits {
		kept := p.refs[:nr]
		for _, r := range p.refs[nr:] {
			if r.limit && limits || r.template && templates || !r.template && !r.limit && messages {
				kept = append(kept, r)
			}
		}
		p.refs = kept
	}
}

// value reads a change's value. Metadata and contacts may come after the
// statuses and messages they describe, so those are completed at its end.
func (p *parser) value() {
	s := &p.s
	var k []byte
	ns, ni := len(p.statuses), len(p.inbound)
	p.contacts = p.contacts[:0]
	phoneNumberID := ""
	var tmpl provider.TemplateStatus
	hasTemplate := false
	// A portfolio's limit: max_daily_conversations_per_business, or the
	// older current_limit when it is alone (0: not given).
	var limit, current int
	if !s.object() {
		return
	}
	for first := true; s.key(&k, first); first = false {
		switch string(k) {
		// Other fields' values may use these keys for other shapes:
		// anything but a string or a number is skipped.
		case "event":
			tmpl.Event, hasTemplate = string(p.idString()), true
		case "max_daily_conversations_per_business":
			limit = tierOf(p.idString())
		case "current_limit":
			current = tierOf(p.idString())
		case "message_template_id":
			tmpl.TemplateID, hasTemplate = string(p.idString()), true
		case "message_template_name":
			tmpl.Name, hasTemplate = string(p.idString()), true
		case "message_template_language":
			tmpl.Language, hasTemplate = string(p.idString()), true
		case "reason":
			if r := p.idString(); string(r) != "NONE" {
				tmpl.Reason = string(r)
			}
		case "other_info":
			// A pause or a disabling explains itself here.
			if s.peek() != '{' {
				s.skip()
				continue
			}
			s.object()
			for first := true; s.key(&k, first); first = false {
				if string(k) == "description" {
					if d := p.idString(); tmpl.Reason == "" {
						tmpl.Reason = string(d)
					}
				} else {
					s.skip()
				}
			}
		case "metadata":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				if string(k) == "phone_number_id" {
					phoneNumberID = string(s.str())
				} else {
					s.skip()
				}
			}
		case "contacts":
			p.readContacts()
		case "statuses":
			if !s.array() {
				continue
			}
			for first := true; s.elem(first); first = false {
				p.status()
			}
		case "messages":
			if !s.array() {
				continue
			}
			for first := true; s.elem(first); first = false {
				p.message()
			}
		default:
			s.skip()
		}
	}
	if hasTemplate {
		p.templates = append(p.templates, tmpl)
		p.refs = append(p.refs, ref{template: true, i: len(p.templates) - 1})
	}
	if limit == 0 {
		limit = current
	}
	if limit != 0 {
		p.limits = append(p.limits, provider.MessagingLimit{Limit: limit})
		p.refs = append(p.refs, ref{limit: true, i: len(p.limits) - 1})
	}
	for i := ns; i < len(p.statuses); i++ {
		p.statuses[i].PhoneNumberID = phoneNumberID
	}
	for i := ni; i < len(p.inbound); i++ {
		in := &p.inbound[i]
		in.PhoneNumberID = phoneNumberID
		for _, c := range p.contacts {
			if len(p.contacts) == 1 || len(in.From) > 1 && c.waID == in.From[1:] || in.UserID != "" && c.userID == in.UserID {
				in.Name = c.name
				if in.UserID == "" {
					in.UserID = c.userID
				}
				if in.From == "" && c.waID != "" {
					in.From = "+" + c.waID
				}
				break
			}
		}
	}
}

func (p *parser) readContacts() {
	s := &p.s
	var k []byte
	if !s.array() {
		return
	}
	for first := true; s.elem(first); first = false {
		if !s.object() {
			continue
		}
		var c contact
		for first := true; s.key(&k, first); first = false {
			switch string(k) {
			case "wa_id":
				c.waID = string(s.str())
			case "user_id":
				c.userID = string(s.str())
			case "profile":
				if !s.object() {
					continue
				}
				for first := true; s.key(&k, first); first = false {
					if string(k) == "name" {
						c.name = string(s.str())
					} else {
						s.skip()
					}
				}
			default:
				s.skip()
			}
		}
		p.contacts = append(p.contacts, c)
	}
}

func (p *parser) status() {
	s := &p.s
	var k []byte
	if !s.object() {
		return
	}
	p.statuses = append(p.statuses, provider.StatusUpdate{})
	st := &p.statuses[len(p.statuses)-1]
	var message, details string
	for first := true; s.key(&k, first); first = false {
		switch string(k) {
		case "id":
			st.ProviderMessageID = string(s.str())
		case "status":
			st.Status = statusOf(s.str())
		case "timestamp":
			st.AtMS = s.intOrString() * 1000
		case "recipient_id":
			st.RecipientID = string(s.str())
		case "recipient_user_id":
			st.RecipientUserID = string(s.str())
		case "conversation":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				if string(k) == "id" {
					st.ConversationID = string(s.str())
				} else {
					s.skip()
				}
			}
		case "pricing":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				switch string(k) {
				case "category":
					st.PricingCategory = categoryOf(s.str())
				case "pricing_model":
					st.PricingModel = pricingModelOf(s.str())
				case "type":
					st.PricingType = pricingTypeOf(s.str())
				case "billable":
					st.Billable = s.bool()
				default:
					s.skip()
				}
			}
		case "errors":
			if !s.array() {
				continue
			}
			// Meta sends one error; the first one is the one kept.
			for i := 0; s.elem(i == 0); i++ {
				if i > 0 {
					s.skip()
					continue
				}
				if !s.object() {
					continue
				}
				for first := true; s.key(&k, first); first = false {
					switch string(k) {
					case "code":
						st.ErrorCode = int(s.int())
					case "title":
						st.ErrorTitle = string(s.str())
					case "message":
						message = string(s.str())
					case "error_data":
						if s.peek() != '{' {
							s.skip()
							continue
						}
						s.object()
						for first := true; s.key(&k, first); first = false {
							if string(k) == "details" {
								details = string(s.str())
							} else {
								s.skip()
							}
						}
					default:
						s.skip()
					}
				}
			}
		default:
			s.skip()
		}
	}
	if st.ErrorTitle == "" {
		st.ErrorTitle = message
	}
	if st.ErrorTitle == "" {
		st.ErrorTitle = details
	}
	if s.err == nil && (st.ProviderMessageID == "" || st.Status == "") {
		s.fail("status without id or status")
	}
	p.refs = append(p.refs, ref{i: len(p.statuses) - 1})
}

func (p *parser) message() {
	s := &p.s
	var k []byte
	if !s.object() {
		return
	}
	p.inbound = append(p.inbound, provider.Inbound{})
	in := &p.inbound[len(p.inbound)-1]
	var lat, long []byte
	var locName, locAddress string
	for first := true; s.key(&k, first); first = false {
		switch string(k) {
		case "id":
			in.ProviderMessageID = string(s.str())
		case "from":
			from := s.str()
			if len(from) > 0 && from[0] != '+' {
				in.From = "+" + string(from)
			} else {
				in.From = string(from)
			}
		case "from_user_id":
			in.UserID = string(s.str())
		case "timestamp":
			in.AtMS = s.intOrString() * 1000
		case "type":
			in.Type = typeOf(s.str())
		case "text":
			p.fields("body", &in.Text, "", nil)
		case "image", "document", "audio", "video", "sticker":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				switch string(k) {
				case "id":
					in.MediaID = string(s.str())
				case "mime_type":
					in.MimeType = string(s.str())
				case "caption":
					in.Text = string(s.str())
				case "sha256":
					in.SHA256 = string(p.idString())
				case "filename":
					in.Filename = string(s.str())
				default:
					s.skip()
				}
			}
		case "contacts":
			in.Contacts = p.contactCards()
		case "interactive":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				switch string(k) {
				case "button_reply", "list_reply":
					p.fields("id", &in.ReplyID, "title", &in.Text)
				default:
					s.skip()
				}
			}
		case "button":
			p.fields("payload", &in.ReplyID, "text", &in.Text)
		case "reaction":
			p.fields("message_id", &in.ContextID, "emoji", &in.Text)
		case "context":
			p.fields("id", &in.ContextID, "", nil)
		case "location":
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				switch string(k) {
				case "latitude":
					lat = p.coordinate()
				case "longitude":
					long = p.coordinate()
				case "name":
					locName = string(s.str())
				case "address":
					locAddress = string(s.str())
				default:
					s.skip()
				}
			}
		default:
			s.skip()
		}
	}
	if lat != nil && long != nil {
		in.Text = locationText(lat, long, locName, locAddress)
	}
	if s.err == nil && (in.ProviderMessageID == "" || len(in.From) < 2 && in.UserID == "") {
		s.fail("message without id or from (nor from_user_id)")
	}
	p.refs = append(p.refs, ref{inbound: true, i: len(p.inbound) - 1})
}

// coordinate reads a number, or a number written as a string, and returns
// its text (nil for null).
func (p *parser) coordinate() []byte {
	s := &p.s
	switch s.peek() {
	case 'n':
		s.null()
		return nil
	case '"':
		return append([]byte(nil), s.str()...)
	}
	t, _ := s.number()
	return t
}

// fields reads an object of strings into up to two destinations.
func (p *parser) fields(k1 string, d1 *string, k2 string, d2 *string) {
	s := &p.s
	var k []byte
	if !s.object() {
		return
	}
	for first := true; s.key(&k, first); first = false {
		switch {
		case string(k) == k1:
			*d1 = string(s.str())
		case d2 != nil && string(k) == k2:
			*d2 = string(s.str())
		default:
			s.skip()
		}
	}
}

// locationText writes a shared location as a geo URI (RFC 5870), with its
// name and address after it when the guest's app sent them, since Inbound
// has no fields of its own for coordinates.
func locationText(lat, long []byte, name, address string) string {
	b := make([]byte, 0, 4+len(lat)+1+len(long)+len(name)+len(address)+5)
	b = append(b, "geo:"...)
	b = append(b, lat...)
	b = append(b, ',')
	b = append(b, long...)
	switch {
	case name != "" && address != "":
		b = append(b, ' ', '(')
		b = append(b, name...)
		b = append(b, ", "...)
		b = append(b, address...)
		b = append(b, ')')
	case name != "" || address != "":
		b = append(b, ' ', '(')
		b = append(b, name...)
		b = append(b, address...)
		b = append(b, ')')
	}
	return string(b)
}

// statusOf returns Meta's status as a message.Status, without allocating
// for the four that matter.
func statusOf(b []byte) message.Status {
	switch string(b) {
	case "sent":
		return message.StatusSent
	case "delivered":
		return message.StatusDelivered
	case "read":
		return message.StatusRead
	case "failed":
		return message.StatusFailed
	}
	return message.Status(b)
}

func categoryOf(b []byte) string {
	switch string(b) {
	case "service":
		return "service"
	case "utility":
		return "utility"
	case "marketing":
		return "marketing"
	case "authentication":
		return "authentication"
	case "referral_conversion":
		return "referral_conversion"
	case "authentication_international":
		return "authentication_international"
	case "marketing_lite":
		return "marketing_lite"
	}
	return string(b)
}

// pricingModelOf is Meta's pricing_model: "PMP" (per-message pricing, since
// July 2025) or "CBP" (conversation-based, before).
func pricingModelOf(b []byte) string {
	switch string(b) {
	case "PMP":
		return "PMP"
	case "CBP":
		return "CBP"
	}
	return string(b)
}

// pricingTypeOf is the pricing object's type: whether the message was
// charged ("regular") or free, inside the customer service window or a
// free entry point's 72 hours.
func pricingTypeOf(b []byte) string {
	switch string(b) {
	case "regular":
		return "regular"
	case "free_customer_service":
		return "free_customer_service"
	case "free_entry_point":
		return "free_entry_point"
	}
	return string(b)
}

func typeOf(b []byte) string {
	for _, t := range knownTypes {
		if string(b) == t {
			return t
		}
	}
	return string(b)
}

var knownTypes = [...]string{"text", "image", "document", "audio", "video", "sticker", "interactive", "button", "location", "contacts", "reaction", "order", "system", "unsupported"}

// Bounds of a shared contact card as kept: the body is at most a few MB,
// but a guest's cards end up in the history and in tenants' webhooks.
const (
	maxContactCards  = 20
	maxContactItems  = 10
	maxContactString = 256
)

// contactCards reads a message's contacts array (the cards a guest
// shared), up to maxContactCards of them.
func (p *parser) contactCards() []provider.Contact {
	s := &p.s
	var out []provider.Contact
	if !s.array() {
		return nil
	}
	for first := true; s.elem(first); first = false {
		if len(out) >= maxContactCards || s.peek() != '{' {
			s.skip()
			continue
		}
		out = append(out, p.contactCard())
	}
	return out
}

// contactCard reads one contact object; values that are not what Meta
// documents (a number where a list goes) are skipped, not refused.
func (p *parser) contactCard() provider.Contact {
	s := &p.s
	var c provider.Contact
	var k []byte
	s.object()
	for first := true; s.key(&k, first); first = false {
		switch string(k) {
		case "name":
			p.textFields(map[string]*string{"formatted_name": &c.Name.FormattedName, "first_name": &c.Name.FirstName,
				"last_name": &c.Name.LastName, "middle_name": &c.Name.MiddleName, "suffix": &c.Name.Suffix, "prefix": &c.Name.Prefix})
		case "org":
			var o provider.ContactOrg
			p.textFields(map[string]*string{"company": &o.Company, "department": &o.Department, "title": &o.Title})
			if o != (provider.ContactOrg{}) {
				c.Org = &o
			}
		case "birthday":
			c.Birthday = p.text()
		case "phones":
			p.items(func() {
				var v provider.ContactPhone
				p.textFields(map[string]*string{"phone": &v.Phone, "type": &v.Type, "wa_id": &v.WaID})
				if len(c.Phones) < maxContactItems {
					c.Phones = append(c.Phones, v)
				}
			})
		case "emails":
			p.items(func() {
				var v provider.ContactEmail
				p.textFields(map[string]*string{"email": &v.Email, "type": &v.Type})
				if len(c.Emails) < maxContactItems {
					c.Emails = append(c.Emails, v)
				}
			})
		case "urls":
			p.items(func() {
				var v provider.ContactURL
				p.textFields(map[string]*string{"url": &v.URL, "type": &v.Type})
				if len(c.URLs) < maxContactItems {
					c.URLs = append(c.URLs, v)
				}
			})
		case "addresses":
			p.items(func() {
				var v provider.ContactAddress
				p.textFields(map[string]*string{"street": &v.Street, "city": &v.City, "state": &v.State, "zip": &v.Zip,
					"country": &v.Country, "country_code": &v.CountryCode, "type": &v.Type})
				if len(c.Addresses) < maxContactItems {
					c.Addresses = append(c.Addresses, v)
				}
			})
		default:
			s.skip()
		}
	}
	return c
}

// items calls read for each object of an array; anything else is skipped.
func (p *parser) items(read func()) {
	s := &p.s
	if s.peek() != '[' {
		s.skip()
		return
	}
	s.array()
	for first := true; s.elem(first); first = false {
		if s.peek() != '{' {
			s.skip()
			continue
		}
		read()
	}
}

// textFields reads an object's fields named in dst as text; an object
// that is not one is skipped.
func (p *parser) textFields(dst map[string]*string) {
	s := &p.s
	var k []byte
	if s.peek() != '{' {
		s.skip()
		return
	}
	s.object()
	for first := true; s.key(&k, first); first = false {
		if d, ok := dst[string(k)]; ok {
			*d = p.text()
		} else {
			s.skip()
		}
	}
}

// text reads a string or a number as text, at most maxContactString bytes
// (cut at a character boundary); anything else reads as nothing.
func (p *parser) text() string {
	b := p.idString()
	if len(b) > maxContactString {
		i := maxContactString
		for i > 0 && !utf8.RuneStart(b[i]) {
			i--
		}
		b = b[:i]
	}
	return string(b)
}

// tierOf reads a messaging limit as Meta writes it: a tier name ("TIER_2K",
// "TIER_UNLIMITED") or a number (-1 for unlimited). It returns 0 for
// anything else, and for TIER_NOT_SET (a number not used yet).
func tierOf(b []byte) int {
	switch string(b) {
	case "TIER_50":
		return 50
	case "TIER_250":
		return 250
	case "TIER_1K":
		return 1000
	case "TIER_2K":
		return 2000
	case "TIER_10K":
		return 10000
	case "TIER_100K":
		return 100000
	case "TIER_UNLIMITED", "-1":
		return provider.Unlimited
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n <= 0 || n > 1e9 {
		return 0
	}
	return n
}
