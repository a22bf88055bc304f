package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wagate/wagate/message"
)

// This file checks interactive, location, contacts and reaction objects as
// Meta does: a missing parameter or a wrong count is Meta's code 100, a
// value Meta will not take (too long, out of range, repeated) its code
// 131009 "Parameter value is not valid", with details naming the parameter.

// interactive is Meta's interactive object, as far as the simulator checks it.
type interactive struct {
	Type   string             `json:"type"`
	Header *interactiveHeader `json:"header"`
	Body   *struct {
		Text string `json:"text"`
	} `json:"body"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Action *interactiveAction `json:"action"`
}

type interactiveHeader struct {
	Type     string       `json:"type"`
	Text     string       `json:"text"`
	Image    *mediaObject `json:"image"`
	Video    *mediaObject `json:"video"`
	Document *mediaObject `json:"document"`
}

type interactiveAction struct {
	// Buttons is a reply-button message's.
	Buttons []struct {
		Type  string `json:"type"`
		Reply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"reply"`
	} `json:"buttons"`
	// Button and Sections are a list message's (sections also a
	// multi-product message's, whose rows are product_items).
	Button   string `json:"button"`
	Sections []struct {
		Title *string `json:"title"`
		Rows  []struct {
			ID          string `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"rows"`
	} `json:"sections"`
	// Name and Parameters are a cta_url message's (and flow's, catalog's…).
	Name       string `json:"name"`
	Parameters *struct {
		DisplayText string `json:"display_text"`
		URL         string `json:"url"`
	} `json:"parameters"`
}

// locationObject is Meta's location object. Meta's spec types the
// coordinates as strings and its examples as numbers; both are taken.
type locationObject struct {
	Latitude  json.RawMessage `json:"latitude"`
	Longitude json.RawMessage `json:"longitude"`
	Name      string          `json:"name"`
	Address   string          `json:"address"`
}

type reactionObject struct {
	MessageID string  `json:"message_id"`
	Emoji     *string `json:"emoji"`
}

// contactObject is Meta's contact object, as far as the simulator checks it.
type contactObject struct {
	Name *struct {
		FormattedName string `json:"formatted_name"`
	} `json:"name"`
	Birthday string `json:"birthday"`
	Phones   []struct {
		Phone string `json:"phone"`
	} `json:"phones"`
	Emails []struct {
		Email string `json:"email"`
	} `json:"emails"`
	URLs []struct {
		URL string `json:"url"`
	} `json:"urls"`
}

var interactiveTypes = map[string]bool{
	"button": true, "list": true, "cta_url": true, "product": true, "product_list": true, "flow": true,
	"catalog_message": true, "location_request_message": true, "address_message": true, "call_permission_request": true,
	"order_details": true, "order_status": true,
}

// errValue is Meta's answer for a parameter whose value it will not take.
func errValue(details string) *apiError {
	return &apiError{status: 400, typ: "OAuthException", code: 131009, message: "(#131009) Parameter value is not valid", details: details}
}

func required(param string) *apiError { e := errRequired(param); return &e }

func invalidParam(message, details string) *apiError { e := errParam(message, details); return &e }

// tooLong refuses text at param longer than max characters (runes), or
// empty when needed.
func tooLong(param, text string, max int, needed bool) *apiError {
	if needed && text == "" {
		return required(param)
	}
	if n := utf8.RuneCountInString(text); n > max {
		return errValue("Param " + param + " is " + strconv.Itoa(n) + " characters long; at most " + strconv.Itoa(max) + " are allowed.")
	}
	return nil
}

func idx(param string, i int) string { return param + "[" + strconv.Itoa(i) + "]" }

func validateInteractive(in *interactive) *apiError {
	switch {
	case in == nil:
		return required("interactive")
	case in.Type == "":
		return required("interactive['type']")
	case !interactiveTypes[in.Type]:
		return invalidParam("(#100) Param interactive['type'] is not a valid interactive type - got \""+in.Type+"\".", "Unsupported interactive type.")
	case in.Action == nil:
		return required("interactive['action']")
	case in.Body != nil && utf8.RuneCountInString(in.Body.Text) > message.MaxBodyText:
		return invalidParam("(#100) Param interactive['body']['text'] must be at most 1024 characters long.", "Body text is too long.")
	case in.Footer != nil && utf8.RuneCountInString(in.Footer.Text) > message.MaxFooterText:
		return invalidParam("(#100) Param interactive['footer']['text'] must be at most 60 characters long.", "Footer text is too long.")
	case in.Footer != nil && in.Footer.Text == "":
		return required("interactive['footer']['text']")
	}
	switch in.Type {
	case "button", "list", "cta_url":
		if in.Body == nil || in.Body.Text == "" {
			return required("interactive['body']['text']")
		}
		if e := validateHeader(in.Type, in.Header); e != nil {
			return e
		}
	}
	switch in.Type {
	case "button":
		return validateButtons(in.Action)
	case "list":
		return validateList(in.Action)
	case "cta_url":
		return validateCTA(in.Action)
	}
	return nil
}

// validateHeader checks the header of a button, list or cta_url message:
// a list's can only be text.
func validateHeader(typ string, h *interactiveHeader) *apiError {
	if h == nil {
		return nil
	}
	var media *mediaObject
	switch h.Type {
	case "":
		return required("interactive['header']['type']")
	case "text":
		return tooLong("interactive['header']['text']", h.Text, message.MaxHeaderText, true)
	case "image":
		media = h.Image
	case "video":
		media = h.Video
	case "document":
		media = h.Document
	default:
		return invalidParam("(#100) Param interactive['header']['type'] must be one of {TEXT, IMAGE, VIDEO, DOCUMENT} - got \""+h.Type+"\".", "Unsupported header type.")
	}
	if typ == "list" {
		return errValue("Param interactive['header']['type'] must be text for a list message - got \"" + h.Type + "\".")
	}
	if e := validateMedia("interactive['header']['"+h.Type+"']", media); e != nil {
		return e
	}
	if media.Link != "" && !httpURL(media.Link) {
		return errValue("Param interactive['header']['" + h.Type + "']['link'] must be an http(s) URL.")
	}
	return nil
}

func validateButtons(a *interactiveAction) *apiError {
	if n := len(a.Buttons); n < 1 || n > message.MaxButtons {
		return invalidParam("(#100) Param interactive['action']['buttons'] must have between 1 and 3 elements.", "A button message has 1 to 3 buttons.")
	}
	for i, b := range a.Buttons {
		p := idx("interactive['action']['buttons']", i)
		switch {
		case b.Type == "":
			return required(p + "['type']")
		case b.Type != "reply":
			return errValue("Param " + p + "['type'] must be \"reply\" - got \"" + b.Type + "\".")
		case b.Reply == nil:
			return required(p + "['reply']")
		}
		if e := tooLong(p+"['reply']['id']", b.Reply.ID, message.MaxButtonID, true); e != nil {
			return e
		}
		if strings.TrimSpace(b.Reply.ID) != b.Reply.ID {
			return errValue("Param " + p + "['reply']['id'] must not have leading or trailing spaces.")
		}
		if e := tooLong(p+"['reply']['title']", b.Reply.Title, message.MaxButtonTitle, true); e != nil {
			return e
		}
		for j := range i {
			q := idx("interactive['action']['buttons']", j)
			if r := a.Buttons[j].Reply; r != nil && r.ID == b.Reply.ID {
				return errValue("Param " + p + "['reply']['id'] repeats " + q + "['reply']['id']; button ids must be unique.")
			}
			if r := a.Buttons[j].Reply; r != nil && r.Title == b.Reply.Title {
				return errValue("Param " + p + "['reply']['title'] repeats " + q + "['reply']['title']; button titles must be unique.")
			}
		}
	}
	return nil
}

func validateList(a *interactiveAction) *apiError {
	if a.Button == "" {
		return required("interactive['action']['button']")
	}
	if e := tooLong("interactive['action']['button']", a.Button, message.MaxListButton, true); e != nil {
		return e
	}
	rows := 0
	for _, s := range a.Sections {
		rows += len(s.Rows)
	}
	if n := len(a.Sections); n < 1 || n > message.MaxSections || rows < 1 || rows > message.MaxListRows {
		return invalidParam("(#100) Param interactive['action']['sections'] must have 1 to 10 sections and 1 to 10 rows in all.",
			"Total row count must be 1 to 10 - got "+strconv.Itoa(rows)+".")
	}
	seen := make(map[string]string, rows)
	for i, s := range a.Sections {
		p := idx("interactive['action']['sections']", i)
		title := ""
		if s.Title != nil {
			title = *s.Title
		}
		if len(a.Sections) > 1 && title == "" {
			return required(p + "['title']")
		}
		if e := tooLong(p+"['title']", title, message.MaxSectionTitle, false); e != nil {
			return e
		}
		if len(s.Rows) == 0 {
			return required(p + "['rows']")
		}
		for k, r := range s.Rows {
			rp := idx(p+"['rows']", k)
			if e := tooLong(rp+"['id']", r.ID, message.MaxRowID, true); e != nil {
				return e
			}
			if e := tooLong(rp+"['title']", r.Title, message.MaxRowTitle, true); e != nil {
				return e
			}
			if e := tooLong(rp+"['description']", r.Description, message.MaxRowDescription, false); e != nil {
				return e
			}
			if first, ok := seen[r.ID]; ok {
				return errValue("Param " + rp + "['id'] repeats " + first + "['id']; row ids must be unique.")
			}
			seen[r.ID] = rp
		}
	}
	return nil
}

func validateCTA(a *interactiveAction) *apiError {
	switch {
	case a.Name == "":
		return required("interactive['action']['name']")
	case a.Name != "cta_url":
		return errValue("Param interactive['action']['name'] must be \"cta_url\" - got \"" + a.Name + "\".")
	case a.Parameters == nil:
		return required("interactive['action']['parameters']")
	}
	if e := tooLong("interactive['action']['parameters']['display_text']", a.Parameters.DisplayText, message.MaxCTADisplayText, true); e != nil {
		return e
	}
	switch u := a.Parameters.URL; {
	case u == "":
		return required("interactive['action']['parameters']['url']")
	case !httpURL(u):
		return errValue("Param interactive['action']['parameters']['url'] must be an absolute http(s) URL.")
	}
	return nil
}

// httpURL reports whether s is an absolute http or https URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		!strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

func validateLocation(l *locationObject) *apiError {
	if l == nil {
		return required("location")
	}
	for _, c := range [...]struct {
		name  string
		raw   json.RawMessage
		limit float64
	}{{"latitude", l.Latitude, 90}, {"longitude", l.Longitude, 180}} {
		p := "location['" + c.name + "']"
		raw := bytes.TrimSpace(c.raw)
		if len(raw) == 0 || string(raw) == "null" {
			return required(p)
		}
		if raw[0] == '"' {
			raw = raw[1 : len(raw)-1]
		}
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return invalidParam("(#100) Param "+p+" must be a number.", "Param "+p+" has the wrong type.")
		}
		if v < -c.limit || v > c.limit {
			return errValue("Param " + p + " must be between " + strconv.FormatFloat(-c.limit, 'f', -1, 64) + " and " +
				strconv.FormatFloat(c.limit, 'f', -1, 64) + " - got " + strconv.FormatFloat(v, 'g', -1, 64) + ".")
		}
	}
	return nil
}

func validateContacts(raw json.RawMessage) *apiError {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' {
		return required("contacts")
	}
	var cs []contactObject
	if err := json.Unmarshal(raw, &cs); err != nil {
		return invalidParam("(#100) Invalid parameter", "Param contacts has the wrong type.")
	}
	switch {
	case len(cs) == 0:
		return required("contacts")
	case len(cs) > message.MaxContacts:
		return invalidParam("(#100) Param contacts must have at most 5 elements.", "A contacts message has 1 to 5 contacts.")
	}
	for i, c := range cs {
		p := idx("contacts", i)
		if c.Name == nil {
			return required(p + "['name']")
		}
		if c.Name.FormattedName == "" {
			return required(p + "['name']['formatted_name']")
		}
		if c.Birthday != "" {
			if _, err := time.Parse(time.DateOnly, c.Birthday); err != nil {
				return errValue("Param " + p + "['birthday'] must be a date in YYYY-MM-DD format.")
			}
		}
		for k, ph := range c.Phones {
			if ph.Phone == "" {
				return required(idx(p+"['phones']", k) + "['phone']")
			}
		}
		for k, em := range c.Emails {
			q := idx(p+"['emails']", k) + "['email']"
			if em.Email == "" {
				return required(q)
			}
			if a, err := mail.ParseAddress(em.Email); err != nil || a.Address != em.Email {
				return errValue("Param " + q + " must be an email address.")
			}
		}
		for k, u := range c.URLs {
			q := idx(p+"['urls']", k) + "['url']"
			if u.URL == "" {
				return required(q)
			}
			if !httpURL(u.URL) {
				return errValue("Param " + q + " must be an absolute http(s) URL.")
			}
		}
	}
	return nil
}

func validateReaction(r *reactionObject) *apiError {
	switch {
	case r == nil:
		return required("reaction")
	case r.MessageID == "":
		return required("reaction['message_id']")
	case r.Emoji == nil:
		return required("reaction['emoji']")
	case *r.Emoji != "" && !message.SingleEmoji(*r.Emoji):
		return errValue("Param reaction['emoji'] must be a single emoji, or empty to remove the reaction.")
	}
	return nil
}
