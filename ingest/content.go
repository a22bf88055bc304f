package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// This file builds Meta's objects for the location, contacts and reaction
// messages of messages/send, and holds the checks send-interactive shares.
// Every refusal names the field's full path ("content.contacts[1].phones[0].phone").

// locationContent is the content of a location message.
type locationContent struct {
	// Latitude and Longitude are required: pointers tell 0 from missing.
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Name      string   `json:"name"`
	Address   string   `json:"address"`
}

// buildLocation appends Meta's location object for a messages/send content.
func (s *Server) buildLocation(_ Principal, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return buildLocationContent(raw, dst)
}

// buildLocationContent checks a location content ({latitude, longitude,
// name, address}) and appends Meta's location object to dst, with the
// message's preview.
func buildLocationContent(raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	var l locationContent
	if e := decodeAt(raw, &l, "content"); e != nil {
		return dst, "", e
	}
	if e := checkCoordinate("content.latitude", l.Latitude, 90); e != nil {
		return dst, "", e
	}
	if e := checkCoordinate("content.longitude", l.Longitude, 180); e != nil {
		return dst, "", e
	}
	dst = append(dst, `{"latitude":`...)
	dst = strconv.AppendFloat(dst, *l.Latitude, 'f', -1, 64)
	dst = append(dst, `,"longitude":`...)
	dst = strconv.AppendFloat(dst, *l.Longitude, 'f', -1, 64)
	if l.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = message.AppendJSONString(dst, l.Name)
	}
	if l.Address != "" {
		dst = append(dst, `,"address":`...)
		dst = message.AppendJSONString(dst, l.Address)
	}
	dst = append(dst, '}')
	preview := l.Name
	switch {
	case preview == "" && l.Address != "":
		preview = l.Address
	case preview == "":
		preview = strconv.FormatFloat(*l.Latitude, 'f', -1, 64) + ", " + strconv.FormatFloat(*l.Longitude, 'f', -1, 64)
	}
	return dst, "[location] " + preview, nil
}

// checkCoordinate refuses a missing coordinate or one outside ±limit degrees.
func checkCoordinate(path string, v *float64, limit float64) *apiError {
	if v == nil {
		return required(path)
	}
	if *v < -limit || *v > limit {
		return invalidRequest(fmt.Sprintf("%s must be from %g to %g degrees", path, -limit, limit),
			map[string]any{"field": path, "value": *v, "min": -limit, "max": limit})
	}
	return nil
}

// contactsContent is the content of a contacts message: Meta's contact
// objects, decoded one level at a time so that errors name their path.
type contactsContent struct {
	Contacts []json.RawMessage `json:"contacts"`
}

// contactIn is one contact as the caller sends it, with Meta's (vCard)
// field names.
type contactIn struct {
	Name      json.RawMessage   `json:"name"`
	Phones    []json.RawMessage `json:"phones"`
	Emails    []json.RawMessage `json:"emails"`
	URLs      []json.RawMessage `json:"urls"`
	Addresses []json.RawMessage `json:"addresses"`
	Org       json.RawMessage   `json:"org"`
	Birthday  string            `json:"birthday"`
}

type contactName struct {
	FormattedName string `json:"formatted_name"`
	FirstName     string `json:"first_name"`
	LastName      string `json:"last_name"`
	MiddleName    string `json:"middle_name"`
	Suffix        string `json:"suffix"`
	Prefix        string `json:"prefix"`
}

type contactPhone struct {
	Phone string `json:"phone"`
	Type  string `json:"type"`
	WaID  string `json:"wa_id"`
}

type contactEmail struct {
	Email string `json:"email"`
	Type  string `json:"type"`
}

type contactURL struct {
	URL  string `json:"url"`
	Type string `json:"type"`
}

type contactAddress struct {
	Street      string `json:"street"`
	City        string `json:"city"`
	State       string `json:"state"`
	Zip         string `json:"zip"`
	Country     string `json:"country"`
	CountryCode string `json:"country_code"`
	Type        string `json:"type"`
}

type contactOrg struct {
	Company    string `json:"company"`
	Department string `json:"department"`
	Title      string `json:"title"`
}

// The type values Meta documents: phones take CELL, MAIN, IPHONE, HOME and
// WORK; emails, urls and addresses HOME and WORK.
var (
	phoneTypes = []string{"CELL", "MAIN", "IPHONE", "HOME", "WORK"}
	placeTypes = []string{"HOME", "WORK"}
)

// buildContacts appends Meta's contacts array for a messages/send content.
func (s *Server) buildContacts(_ Principal, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return buildContactsContent(raw, dst)
}

// buildContactsContent checks a contacts content ({contacts:[…]}, Meta's
// contact objects) and appends Meta's contacts array to dst, with the
// message's preview.
func buildContactsContent(raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	var c contactsContent
	if e := decodeAt(raw, &c, "content"); e != nil {
		return dst, "", e
	}
	switch n := len(c.Contacts); {
	case n == 0:
		return dst, "", invalidRequest("content.contacts is required: a contacts message has 1 to 5 contacts",
			map[string]any{"field": "content.contacts", "count": 0, "min_items": 1, "max_items": message.MaxContacts})
	case n > message.MaxContacts:
		return dst, "", invalidRequest(fmt.Sprintf("content.contacts has %d contacts; WhatsApp allows at most %d", n, message.MaxContacts),
			map[string]any{"field": "content.contacts", "count": n, "max_items": message.MaxContacts})
	}
	start := len(dst)
	dst = append(dst, '[')
	var preview strings.Builder
	preview.WriteString("[contact] ")
	for i, cr := range c.Contacts {
		if i > 0 {
			dst = append(dst, ',')
			preview.WriteString(", ")
		}
		var name string
		var e *apiError
		dst, name, e = appendContact(dst, cr, "content.contacts["+strconv.Itoa(i)+"]")
		if e != nil {
			return dst[:start], "", e
		}
		preview.WriteString(name)
	}
	return append(dst, ']'), preview.String(), nil
}

// appendContact checks one contact at path and appends Meta's contact
// object, fields in Meta's order; it returns the contact's formatted name.
func appendContact(dst []byte, raw json.RawMessage, path string) ([]byte, string, *apiError) {
	var c contactIn
	if e := decodeAt(raw, &c, path); e != nil {
		return dst, "", e
	}
	if !present(c.Name) {
		return dst, "", invalidRequest(path+".name is required (with its formatted_name)", map[string]any{"field": path + ".name"})
	}
	var n contactName
	if e := decodeAt(c.Name, &n, path+".name"); e != nil {
		return dst, "", e
	}
	if strings.TrimSpace(n.FormattedName) == "" {
		return dst, "", required(path + ".name.formatted_name")
	}
	var org contactOrg
	if present(c.Org) {
		if e := decodeAt(c.Org, &org, path+".org"); e != nil {
			return dst, "", e
		}
	}
	if c.Birthday != "" {
		if _, err := time.Parse(time.DateOnly, c.Birthday); err != nil || len(c.Birthday) != len(time.DateOnly) {
			return dst, "", invalidRequest(path+".birthday must be a date in YYYY-MM-DD form, e.g. 1984-06-30",
				map[string]any{"field": path + ".birthday", "value": quote(c.Birthday)})
		}
	}
	dst = append(dst, '{')
	comma := false
	key := func(k string) {
		if comma {
			dst = append(dst, ',')
		}
		comma = true
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":`...)
	}
	var e *apiError
	if len(c.Addresses) > 0 {
		key("addresses")
		if dst, e = appendEach(dst, c.Addresses, path+".addresses", appendAddress); e != nil {
			return dst, "", e
		}
	}
	if c.Birthday != "" {
		key("birthday")
		dst = message.AppendJSONString(dst, c.Birthday)
	}
	if len(c.Emails) > 0 {
		key("emails")
		if dst, e = appendEach(dst, c.Emails, path+".emails", appendEmail); e != nil {
			return dst, "", e
		}
	}
	key("name")
	dst = appendFields(dst, "formatted_name", n.FormattedName, "first_name", n.FirstName, "last_name", n.LastName,
		"middle_name", n.MiddleName, "suffix", n.Suffix, "prefix", n.Prefix)
	if org != (contactOrg{}) {
		key("org")
		dst = appendFields(dst, "company", org.Company, "department", org.Department, "title", org.Title)
	}
	if len(c.Phones) > 0 {
		key("phones")
		if dst, e = appendEach(dst, c.Phones, path+".phones", appendPhone); e != nil {
			return dst, "", e
		}
	}
	if len(c.URLs) > 0 {
		key("urls")
		if dst, e = appendEach(dst, c.URLs, path+".urls", appendURL); e != nil {
			return dst, "", e
		}
	}
	return append(dst, '}'), n.FormattedName, nil
}

// appendEach appends a JSON array of what one appends for each element
// of raws, the array at path.
func appendEach(dst []byte, raws []json.RawMessage, path string,
	one func(dst []byte, raw json.RawMessage, path string) ([]byte, *apiError)) ([]byte, *apiError) {
	dst = append(dst, '[')
	for i, raw := range raws {
		if i > 0 {
			dst = append(dst, ',')
		}
		var e *apiError
		if dst, e = one(dst, raw, path+"["+strconv.Itoa(i)+"]"); e != nil {
			return dst, e
		}
	}
	return append(dst, ']'), nil
}

func appendPhone(dst []byte, raw json.RawMessage, path string) ([]byte, *apiError) {
	var p contactPhone
	if e := decodeAt(raw, &p, path); e != nil {
		return dst, e
	}
	if p.Phone == "" {
		return dst, required(path + ".phone")
	}
	if !plausiblePhone(p.Phone) {
		return dst, invalidRequest(path+".phone is not a phone number: 7 to 15 digits, with an optional leading + and spaces, dashes, dots or brackets",
			map[string]any{"field": path + ".phone", "value": quote(p.Phone)})
	}
	if p.WaID != "" && !validWaID(p.WaID) {
		return dst, invalidRequest(path+".wa_id must be the WhatsApp id: the number's 7 to 15 digits, without +",
			map[string]any{"field": path + ".wa_id", "value": quote(p.WaID)})
	}
	t, e := contactType(path+".type", p.Type, phoneTypes)
	if e != nil {
		return dst, e
	}
	return appendFields(dst, "phone", p.Phone, "type", t, "wa_id", p.WaID), nil
}

func appendEmail(dst []byte, raw json.RawMessage, path string) ([]byte, *apiError) {
	var m contactEmail
	if e := decodeAt(raw, &m, path); e != nil {
		return dst, e
	}
	if m.Email == "" {
		return dst, required(path + ".email")
	}
	if !plausibleEmail(m.Email) {
		return dst, invalidRequest(path+".email is not an email address (name@example.com)",
			map[string]any{"field": path + ".email", "value": quote(m.Email)})
	}
	t, e := contactType(path+".type", m.Type, placeTypes)
	if e != nil {
		return dst, e
	}
	return appendFields(dst, "email", m.Email, "type", t), nil
}

func appendURL(dst []byte, raw json.RawMessage, path string) ([]byte, *apiError) {
	var u contactURL
	if e := decodeAt(raw, &u, path); e != nil {
		return dst, e
	}
	if e := checkURL(path+".url", u.URL); e != nil {
		return dst, e
	}
	t, e := contactType(path+".type", u.Type, placeTypes)
	if e != nil {
		return dst, e
	}
	return appendFields(dst, "type", t, "url", u.URL), nil
}

func appendAddress(dst []byte, raw json.RawMessage, path string) ([]byte, *apiError) {
	var a contactAddress
	if e := decodeAt(raw, &a, path); e != nil {
		return dst, e
	}
	if a.Street == "" && a.City == "" && a.State == "" && a.Zip == "" && a.Country == "" && a.CountryCode == "" {
		return dst, invalidRequest(path+" is empty: give at least one of street, city, state, zip, country, country_code",
			map[string]any{"field": path})
	}
	if a.CountryCode != "" && !isAlpha2(a.CountryCode) {
		return dst, invalidRequest(path+".country_code must be a two-letter ISO 3166 country code, e.g. us",
			map[string]any{"field": path + ".country_code", "value": quote(a.CountryCode)})
	}
	t, e := contactType(path+".type", a.Type, placeTypes)
	if e != nil {
		return dst, e
	}
	return appendFields(dst, "city", a.City, "country", a.Country, "country_code", a.CountryCode,
		"state", a.State, "street", a.Street, "type", t, "zip", a.Zip), nil
}

// appendFields appends a JSON object of the non-empty string values of
// kv, pairs of key and value; keys need no escaping.
func appendFields(dst []byte, kv ...string) []byte {
	dst = append(dst, '{')
	first := true
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, kv[i]...)
		dst = append(dst, `":`...)
		dst = message.AppendJSONString(dst, kv[i+1])
	}
	return append(dst, '}')
}

// contactType checks a contact field's type against Meta's values (any
// case) and returns it upper-cased, as Meta writes it.
func contactType(path, t string, allowed []string) (string, *apiError) {
	if t == "" {
		return "", nil
	}
	for _, a := range allowed {
		if strings.EqualFold(t, a) {
			return a, nil
		}
	}
	return "", invalidRequest(path+" must be one of "+strings.Join(allowed, ", "),
		map[string]any{"field": path, "value": quote(t), "allowed": allowed})
}

// plausiblePhone reports whether s reads as a phone number: 7 to 15
// digits, an optional leading "+", and spaces, dashes, dots or brackets
// between them, as vCards write numbers ("+1 (650) 555-1234").
func plausiblePhone(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '+':
			if i != 0 {
				return false
			}
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 15
}

// validWaID reports whether s is a WhatsApp id: a number's 7 to 15 digits
// without "+", not starting with 0.
func validWaID(s string) bool {
	return message.ValidE164("+" + s)
}

// plausibleEmail reports whether s is a bare address local@domain.tld.
func plausibleEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	return strings.Contains(domain, ".") && domain[0] != '.' && domain[len(domain)-1] != '.' && !strings.Contains(domain, "..")
}

func isAlpha2(s string) bool {
	return len(s) == 2 && isLetter(s[0]) && isLetter(s[1])
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// reactionContent is the content of a reaction message.
type reactionContent struct {
	// MessageID is a wagate message id ("msg_…") or a WhatsApp one ("wamid.…").
	MessageID *string `json:"message_id"`
	// Emoji is one emoji, or "" to take the reaction back.
	Emoji *string `json:"emoji"`
}

// maxWAMIDLen bounds a WhatsApp message id given by the caller; Meta's are
// well under 100 characters.
const maxWAMIDLen = 256

// buildReaction appends Meta's reaction object for a messages/send content.
// A wagate message id is resolved to its WhatsApp id: the message must be
// the tenant's, sent to guest, and already sent.
//
// A reaction to a wagate message goes out from the number that sent it:
// o.From defaults to that number, and another one is refused.
func (s *Server) buildReaction(p Principal, o *outbound, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	id, emoji, e := decodeReaction(raw)
	if e != nil {
		return dst, "", e
	}
	if strings.HasPrefix(id, message.IDPrefix) {
		var from string
		if id, from, e = s.providerID(p, o.GuestPhone, id); e != nil {
			return dst, "", e
		}
		switch o.From {
		case "":
			o.From = from
		case from:
		default:
			return dst, "", invalidRequest("from is not the number the reacted-to message was sent from: a reaction goes to that chat",
				map[string]any{"field": "from", "value": o.From, "expected": from})
		}
	}
	dst = appendReaction(dst, id, emoji)
	if emoji == "" {
		return dst, "[reaction] removed", nil
	}
	return dst, "[reaction] " + emoji, nil
}

// decodeReaction checks a reaction content and returns its message id and
// emoji.
func decodeReaction(raw json.RawMessage) (id, emoji string, e *apiError) {
	var r reactionContent
	if e := decodeAt(raw, &r, "content"); e != nil {
		return "", "", e
	}
	if r.MessageID == nil || *r.MessageID == "" {
		return "", "", invalidRequest("content.message_id is required: the message to react to (msg_… or wamid.…)",
			map[string]any{"field": "content.message_id"})
	}
	if r.Emoji == nil {
		return "", "", invalidRequest(`content.emoji is required: one emoji, or "" to remove the reaction`,
			map[string]any{"field": "content.emoji"})
	}
	id, emoji = *r.MessageID, *r.Emoji
	if emoji != "" && !message.SingleEmoji(emoji) {
		return "", "", invalidRequest(`content.emoji must be exactly one emoji, or "" to remove the reaction`,
			map[string]any{"field": "content.emoji", "value": quote(emoji)})
	}
	if !strings.HasPrefix(id, message.IDPrefix) && !validWAMID(id) {
		return "", "", invalidRequest("content.message_id must be a message id of this API (msg_…) or a WhatsApp message id (wamid.…)",
			map[string]any{"field": "content.message_id", "value": quote(id)})
	}
	return id, emoji, nil
}

// validWAMID reports whether id looks like a WhatsApp message id: "wamid."
// and base64 (either alphabet).
func validWAMID(id string) bool {
	rest, ok := strings.CutPrefix(id, "wamid.")
	if !ok || rest == "" || len(id) > maxWAMIDLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(isLetter(c) || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// providerID resolves wagate message id to the WhatsApp id a reaction
// refers to.
func (s *Server) providerID(p Principal, guest, id string) (pid, from string, e *apiError) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	st, err := s.store.State(ctx, id)
	cancel()
	switch {
	case errors.Is(err, redis.ErrNotFound) || (err == nil && st.TenantID != p.Tenant.ID):
		// Another tenant's message is not found either, as on the status call.
		return "", "", &apiError{Code: message.CodeMessageNotFound, Message: "No message with the id in content.message_id",
			Details: map[string]any{"field": "content.message_id", "message_id": id}}
	case err != nil:
		s.log.Warn("reaction target", "err", fmt.Errorf("reaction: look up %s: %w", id, err))
		return "", "", unavailable("queued")
	case st.Recipient != guest:
		return "", "", invalidRequest("content.message_id is a message to another guest: a reaction goes to the chat of the message it reacts to",
			map[string]any{"field": "content.message_id", "message_id": id})
	case st.ProviderMessageID == "":
		return "", "", &apiError{Code: message.CodeMessageNotSent,
			Message: "content.message_id: message " + id + " has not been sent to WhatsApp yet (status " + string(st.Status) + "), so there is nothing to react to",
			Details: map[string]any{"field": "content.message_id", "message_id": id, "status": string(st.Status)},
			RecoveryOptions: []string{"React once the message's status is sent, delivered or read",
				"Give the WhatsApp message id (wamid.…) of a message the guest sent instead"}}
	}
	return st.ProviderMessageID, st.Sender, nil
}

// appendReaction appends Meta's reaction object.
func appendReaction(dst []byte, id, emoji string) []byte {
	dst = append(dst, `{"message_id":`...)
	dst = message.AppendJSONString(dst, id)
	dst = append(dst, `,"emoji":`...)
	dst = message.AppendJSONString(dst, emoji)
	return append(dst, '}')
}

// decodeAt decodes raw, the JSON object at path of a request body
// ("content", "content.buttons[2]"), into v, refusing unknown fields; an
// error names the full path of the field at fault.
func decodeAt(raw json.RawMessage, v any, path string) *apiError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return invalidRequest(path+" must be an object", map[string]any{"field": path})
	}
	e := decodeJSON(raw, v)
	if e == nil {
		return nil
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	f, _ := e.Details["field"].(string)
	switch {
	case f == "":
		e.Message = path + ": " + e.Message
		e.Details["field"] = path
	case strings.HasPrefix(e.Message, "Unknown field "):
		e.Details["field"] = path + "." + f
		e.Message = "Unknown field " + path + "." + f
	default:
		e.Details["field"] = path + "." + f
		e.Message = path + "." + e.Message
	}
	return e
}

// present reports whether an optional field was given (not absent, not null).
func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}

// required is the answer for a missing or blank field.
func required(path string) *apiError {
	return invalidRequest(path+" is required", map[string]any{"field": path})
}

// checkText refuses a text at path that is blank (when needed) or longer
// than max characters (runes, as WhatsApp counts).
func checkText(path, s string, max int, needed bool) *apiError {
	if needed && strings.TrimSpace(s) == "" {
		return required(path)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidRequest(fmt.Sprintf("%s is %d characters long; WhatsApp allows at most %d", path, n, max),
			map[string]any{"field": path, "length": n, "max_length": max})
	}
	return nil
}

// checkURL refuses a missing URL or one that is not absolute http(s).
func checkURL(path, s string) *apiError {
	if s == "" {
		return required(path)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalidRequest(path+" must be an absolute http or https URL, e.g. https://example.com/page",
			map[string]any{"field": path, "value": quote(s)})
	}
	return nil
}

// checkGuestPhone refuses a guest_phone that is missing or not E.164, as
// messages/send does.
func checkGuestPhone(phone string) *apiError {
	recovery := []string{"Give the guest's number in E.164 form, e.g. +14155550123"}
	if phone == "" {
		return &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is required",
			Details: map[string]any{"field": "guest_phone"}, RecoveryOptions: recovery}
	}
	if !message.ValidGuest(phone) {
		return &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)",
			Details:         map[string]any{"field": "guest_phone", "value": phone, "expected": "+ then country code and number, 7 to 15 digits, no spaces; or a business-scoped user id such as BR.1502576394655843"},
			RecoveryOptions: recovery}
	}
	return nil
}
