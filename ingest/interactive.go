package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// interactiveRequest is the body of POST
// /api/v1/whatsapp/messages/send-interactive (seed 001).
type interactiveRequest struct {
	GuestPhone string `json:"guest_phone"`
	// InteractiveType is "buttons", "list" or "cta_url"; Meta's "button"
	// is taken for "buttons".
	InteractiveType string `json:"interactive_type"`
	// Content is the type's content; see interactiveContent.
	Content        json.RawMessage `json:"content"`
	ConversationID string          `json:"conversation_id"`
	StaffMemberID  string          `json:"staff_member_id"`
	// From picks one of the tenant's numbers; empty means its default.
	From string `json:"from"`
	delivery
}

// interactiveTypes are the interactive_type values send-interactive takes.
var interactiveTypes = []string{"buttons", "list", "cta_url"}

// interactiveContent is the content of send-interactive: every type's
// fields in one object; decodeInteractive refuses those of another type.
type interactiveContent struct {
	// Text is the body, for every type.
	Text *string `json:"text"`
	// Header is a string (its text) or {type, text | link, filename};
	// Footer a string or {text}.
	Header json.RawMessage `json:"header"`
	Footer json.RawMessage `json:"footer"`
	// Buttons: [{id, title}], for "buttons".
	Buttons []json.RawMessage `json:"buttons"`
	// ButtonText and Sections ([{title, rows:[{id, title, description}]}]),
	// for "list".
	ButtonText *string           `json:"button_text"`
	Sections   []json.RawMessage `json:"sections"`
	// DisplayText and URL, for "cta_url".
	DisplayText *string `json:"display_text"`
	URL         *string `json:"url"`
}

// interactiveHeader is a header as the caller gives it in object form.
type interactiveHeader struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Link     string `json:"link"`
	Filename string `json:"filename"`
}

// replyButton is one quick-reply button.
type replyButton struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// listSection is one section of a list message as the caller gives it.
type listSection struct {
	Title *string           `json:"title"`
	Rows  []json.RawMessage `json:"rows"`
}

// listRow is one row of a list section.
type listRow struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// interactiveMsg is a checked interactive message, ready to be written
// as Meta's interactive object.
type interactiveMsg struct {
	// kind is Meta's interactive type: "button", "list" or "cta_url".
	kind string
	// header.Type is "" when there is no header.
	header       interactiveHeader
	body, footer string
	buttons      []replyButton
	buttonText   string
	sectionTitle []string
	// sectionRows[i] is the end of section i's rows in rows.
	sectionRows      []int
	rows             []listRow
	displayText, url string
}

// reset clears m for reuse, keeping its slices' capacity.
func (m *interactiveMsg) reset() {
	*m = interactiveMsg{buttons: m.buttons[:0], sectionTitle: m.sectionTitle[:0],
		sectionRows: m.sectionRows[:0], rows: m.rows[:0]}
}

// interactiveState is the per-request scratch of send-interactive; it
// comes from interactivePool and the handler owns it until it returns.
type interactiveState struct {
	req     interactiveRequest
	msg     interactiveMsg
	o       outbound
	content []byte
	args    redis.EnqueueArgs
	out     []byte
}

var interactivePool = sync.Pool{New: func() any {
	return &interactiveState{content: make([]byte, 0, 1024), out: make([]byte, 0, 128)}
}}

// handleSendInteractive serves POST /api/v1/whatsapp/messages/send-interactive:
// reply buttons, list messages and call-to-action URL buttons.
func (s *Server) handleSendInteractive(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	st := interactivePool.Get().(*interactiveState)
	defer interactivePool.Put(st)
	if e := decodeInteractiveRequest(ctx.PostBody(), &st.req, &st.msg); e != nil {
		writeError(ctx, e)
		return
	}
	r := &st.req
	st.content = appendInteractive(st.content[:0], &st.msg)
	st.o = outbound{GuestPhone: r.GuestPhone, From: r.From, Type: message.TypeInteractive, Content: st.content,
		ConversationID: r.ConversationID, StaffMemberID: r.StaffMemberID, Preview: st.msg.body, Delivery: &r.delivery}
	st.out = s.enqueue(ctx, p, &st.o, &st.args, st.out[:0])
}

// decodeInteractiveRequest parses and checks a send-interactive body into
// r and m. The error names the field.
func decodeInteractiveRequest(body []byte, r *interactiveRequest, m *interactiveMsg) *apiError {
	*r = interactiveRequest{}
	if e := decodeJSON(body, r); e != nil {
		return e
	}
	if e := checkGuestPhone(r.GuestPhone); e != nil {
		return e
	}
	switch r.InteractiveType {
	case "":
		return invalidRequest("interactive_type is required", map[string]any{"field": "interactive_type", "allowed": interactiveTypes})
	case "buttons", "button", "list", "cta_url":
	default:
		return invalidRequest("interactive_type "+quote(r.InteractiveType)+" is not one of buttons, list, cta_url",
			map[string]any{"field": "interactive_type", "allowed": interactiveTypes})
	}
	if !present(r.Content) {
		return required("content")
	}
	return decodeInteractive(r.InteractiveType, r.Content, m)
}

// decodeInteractive checks the content of an interactive message of type
// typ ("buttons", "button", "list" or "cta_url") into m.
func decodeInteractive(typ string, raw json.RawMessage, m *interactiveMsg) *apiError {
	m.reset()
	var c interactiveContent
	if e := decodeAt(raw, &c, "content"); e != nil {
		return e
	}
	switch typ {
	case "buttons", "button":
		typ, m.kind = "buttons", "button"
	case "list", "cta_url":
		m.kind = typ
	default:
		return invalidRequest("interactive_type "+quote(typ)+" is not one of buttons, list, cta_url",
			map[string]any{"field": "interactive_type", "allowed": interactiveTypes})
	}
	if e := foreignFields(typ, &c); e != nil {
		return e
	}
	if c.Text == nil {
		return required("content.text")
	}
	if e := checkText("content.text", *c.Text, message.MaxBodyText, true); e != nil {
		return e
	}
	m.body = *c.Text
	if e := decodeHeader(c.Header, m); e != nil {
		return e
	}
	if e := decodeFooter(c.Footer, m); e != nil {
		return e
	}
	switch m.kind {
	case "button":
		return decodeButtons(c.Buttons, m)
	case "list":
		return decodeList(&c, m)
	}
	if c.DisplayText == nil {
		return required("content.display_text")
	}
	if e := checkText("content.display_text", *c.DisplayText, message.MaxCTADisplayText, true); e != nil {
		return e
	}
	if c.URL == nil {
		return required("content.url")
	}
	if e := checkURL("content.url", *c.URL); e != nil {
		return e
	}
	m.displayText, m.url = *c.DisplayText, *c.URL
	return nil
}

// foreignFields refuses the fields of another interactive type, which
// would otherwise be dropped without a word.
func foreignFields(typ string, c *interactiveContent) *apiError {
	for _, f := range [...]struct {
		name, of string
		given    bool
	}{
		{"buttons", "buttons", c.Buttons != nil},
		{"button_text", "list", c.ButtonText != nil},
		{"sections", "list", c.Sections != nil},
		{"display_text", "cta_url", c.DisplayText != nil},
		{"url", "cta_url", c.URL != nil},
	} {
		if f.given && f.of != typ {
			return invalidRequest("content."+f.name+" is a field of "+f.of+" messages, not of "+typ+" messages",
				map[string]any{"field": "content." + f.name, "interactive_type": typ})
		}
	}
	return nil
}

// decodeHeader checks the optional header: a string is a text header. A
// list message's header can only be text; the others may show an image, a
// video or a document by link.
func decodeHeader(raw json.RawMessage, m *interactiveMsg) *apiError {
	raw = bytes.TrimSpace(raw)
	if !present(raw) {
		return nil
	}
	h := &m.header
	switch raw[0] {
	case '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return invalidRequest("content.header is not a valid JSON string", map[string]any{"field": "content.header"})
		}
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if e := checkText("content.header", text, message.MaxHeaderText, true); e != nil {
			return e
		}
		*h = interactiveHeader{Type: "text", Text: text}
		return nil
	case '{':
		if e := decodeAt(raw, h, "content.header"); e != nil {
			return e
		}
	default:
		return invalidRequest("content.header must be a string (its text) or an object {type, text | link}",
			map[string]any{"field": "content.header"})
	}
	if h.Type == "" && h.Link == "" && h.Filename == "" {
		h.Type = "text"
	}
	allowed := []string{"text", "image", "video", "document"}
	if m.kind == "list" {
		allowed = allowed[:1]
	}
	switch h.Type {
	case "":
		return invalidRequest("content.header.type is required", map[string]any{"field": "content.header.type", "allowed": allowed})
	case "text":
		if h.Link != "" || h.Filename != "" {
			f := "link"
			if h.Link == "" {
				f = "filename"
			}
			return invalidRequest("content.header."+f+" is for image, video and document headers, not text ones",
				map[string]any{"field": "content.header." + f})
		}
		return checkText("content.header.text", h.Text, message.MaxHeaderText, true)
	case "image", "video", "document":
		if m.kind == "list" {
			return invalidRequest("content.header.type must be text: a list message's header can only be text", map[string]any{"field": "content.header.type", "allowed": allowed})
		}
		if h.Text != "" {
			return invalidRequest("content.header.text is for text headers; an "+h.Type+" header shows the file at content.header.link",
				map[string]any{"field": "content.header.text"})
		}
		if h.Filename != "" && h.Type != "document" {
			return invalidRequest("content.header.filename is for document headers", map[string]any{"field": "content.header.filename"})
		}
		if h.Link == "" {
			return required("content.header.link")
		}
		// Meta fetches the file as it does a media message's: https only.
		return checkMediaLink(h.Link, "content.header.link")
	}
	return invalidRequest("content.header.type "+quote(h.Type)+" is not one of "+strings.Join(allowed, ", "),
		map[string]any{"field": "content.header.type", "allowed": allowed})
}

// decodeFooter checks the optional footer: a string or {text}.
func decodeFooter(raw json.RawMessage, m *interactiveMsg) *apiError {
	raw = bytes.TrimSpace(raw)
	if !present(raw) {
		return nil
	}
	switch raw[0] {
	case '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return invalidRequest("content.footer is not a valid JSON string", map[string]any{"field": "content.footer"})
		}
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if e := checkText("content.footer", text, message.MaxFooterText, true); e != nil {
			return e
		}
		m.footer = text
		return nil
	case '{':
		var f struct {
			Text string `json:"text"`
		}
		if e := decodeAt(raw, &f, "content.footer"); e != nil {
			return e
		}
		if e := checkText("content.footer.text", f.Text, message.MaxFooterText, true); e != nil {
			return e
		}
		m.footer = f.Text
		return nil
	}
	return invalidRequest("content.footer must be a string (its text) or an object {text}", map[string]any{"field": "content.footer"})
}

// decodeButtons checks 1 to 3 reply buttons with unique ids and titles.
func decodeButtons(raws []json.RawMessage, m *interactiveMsg) *apiError {
	if e := checkCount("content.buttons", len(raws), message.MaxButtons, "buttons"); e != nil {
		return e
	}
	for i, raw := range raws {
		path := "content.buttons[" + strconv.Itoa(i) + "]"
		var b replyButton
		if e := decodeAt(raw, &b, path); e != nil {
			return e
		}
		if e := checkText(path+".id", b.ID, message.MaxButtonID, true); e != nil {
			return e
		}
		if strings.TrimSpace(b.ID) != b.ID {
			return invalidRequest(path+".id must not start or end with spaces", map[string]any{"field": path + ".id", "value": quote(b.ID)})
		}
		if e := checkText(path+".title", b.Title, message.MaxButtonTitle, true); e != nil {
			return e
		}
		for j := range m.buttons {
			if m.buttons[j].ID == b.ID {
				return duplicate(path+".id", "content.buttons["+strconv.Itoa(j)+"].id", "Button ids")
			}
			if m.buttons[j].Title == b.Title {
				return duplicate(path+".title", "content.buttons["+strconv.Itoa(j)+"].title", "Button titles")
			}
		}
		m.buttons = append(m.buttons, b)
	}
	return nil
}

// decodeList checks a list message: its button text, 1 to 10 sections
// (titled when more than one) and 1 to 10 rows in all with unique ids.
func decodeList(c *interactiveContent, m *interactiveMsg) *apiError {
	if c.ButtonText == nil {
		return required("content.button_text")
	}
	if e := checkText("content.button_text", *c.ButtonText, message.MaxListButton, true); e != nil {
		return e
	}
	m.buttonText = *c.ButtonText
	if e := checkCount("content.sections", len(c.Sections), message.MaxSections, "sections"); e != nil {
		return e
	}
	secs := make([]listSection, len(c.Sections))
	total := 0
	for i, raw := range c.Sections {
		if e := decodeAt(raw, &secs[i], "content.sections["+strconv.Itoa(i)+"]"); e != nil {
			return e
		}
		total += len(secs[i].Rows)
	}
	for i := range secs {
		path := "content.sections[" + strconv.Itoa(i) + "]"
		title := ""
		if secs[i].Title != nil && strings.TrimSpace(*secs[i].Title) != "" {
			title = *secs[i].Title
		}
		if title == "" && len(secs) > 1 {
			return invalidRequest(path+".title is required: every section is titled when a list has more than one",
				map[string]any{"field": path + ".title"})
		}
		if e := checkText(path+".title", title, message.MaxSectionTitle, false); e != nil {
			return e
		}
		if len(secs[i].Rows) == 0 {
			return invalidRequest(path+".rows is required: every section has at least one row",
				map[string]any{"field": path + ".rows", "count": 0, "min_items": 1})
		}
		for k, raw := range secs[i].Rows {
			rpath := path + ".rows[" + strconv.Itoa(k) + "]"
			if len(m.rows) == message.MaxListRows {
				return invalidRequest(fmt.Sprintf("A list message has at most %d rows in all sections; this one has %d (%s is row %d)",
					message.MaxListRows, total, rpath, message.MaxListRows+1),
					map[string]any{"field": rpath, "count": total, "max_items": message.MaxListRows})
			}
			var row listRow
			if e := decodeAt(raw, &row, rpath); e != nil {
				return e
			}
			if e := checkText(rpath+".id", row.ID, message.MaxRowID, true); e != nil {
				return e
			}
			if e := checkText(rpath+".title", row.Title, message.MaxRowTitle, true); e != nil {
				return e
			}
			if e := checkText(rpath+".description", row.Description, message.MaxRowDescription, false); e != nil {
				return e
			}
			for j := range m.rows {
				if m.rows[j].ID == row.ID {
					return duplicate(rpath+".id", rowPath(m, j)+".id", "Row ids")
				}
			}
			m.rows = append(m.rows, row)
		}
		m.sectionTitle = append(m.sectionTitle, title)
		m.sectionRows = append(m.sectionRows, len(m.rows))
	}
	return nil
}

// rowPath is the path of the j-th row of m's sections decoded so far.
func rowPath(m *interactiveMsg, j int) string {
	start := 0
	for i, end := range m.sectionRows {
		if j < end {
			return "content.sections[" + strconv.Itoa(i) + "].rows[" + strconv.Itoa(j-start) + "]"
		}
		start = end
	}
	return "content.sections[" + strconv.Itoa(len(m.sectionRows)) + "].rows[" + strconv.Itoa(j-start) + "]"
}

// checkCount refuses an array at path with no element or more than max.
func checkCount(path string, n, max int, what string) *apiError {
	switch {
	case n == 0:
		return invalidRequest(fmt.Sprintf("%s is required: 1 to %d %s", path, max, what),
			map[string]any{"field": path, "count": 0, "min_items": 1, "max_items": max})
	case n > max:
		return invalidRequest(fmt.Sprintf("%s has %d %s; WhatsApp allows at most %d", path, n, what, max),
			map[string]any{"field": path, "count": n, "max_items": max})
	}
	return nil
}

// duplicate is the answer for a value at path repeating the one at first.
func duplicate(path, first, what string) *apiError {
	return invalidRequest(path+" repeats "+first+": "+what+" must be unique within the message",
		map[string]any{"field": path, "duplicate_of": first})
}

// appendInteractive appends Meta's interactive object for m.
func appendInteractive(dst []byte, m *interactiveMsg) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, m.kind...)
	dst = append(dst, '"')
	if h := &m.header; h.Type != "" {
		dst = append(dst, `,"header":{"type":"`...)
		dst = append(dst, h.Type...)
		dst = append(dst, '"')
		if h.Type == "text" {
			dst = append(dst, `,"text":`...)
			dst = message.AppendJSONString(dst, h.Text)
		} else {
			dst = append(dst, `,"`...)
			dst = append(dst, h.Type...)
			dst = append(dst, `":`...)
			dst = appendFields(dst, "link", h.Link, "filename", h.Filename)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"body":{"text":`...)
	dst = message.AppendJSONString(dst, m.body)
	dst = append(dst, '}')
	if m.footer != "" {
		dst = append(dst, `,"footer":{"text":`...)
		dst = message.AppendJSONString(dst, m.footer)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"action":{`...)
	switch m.kind {
	case "button":
		dst = append(dst, `"buttons":[`...)
		for i, b := range m.buttons {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":"reply","reply":{"id":`...)
			dst = message.AppendJSONString(dst, b.ID)
			dst = append(dst, `,"title":`...)
			dst = message.AppendJSONString(dst, b.Title)
			dst = append(dst, `}}`...)
		}
		dst = append(dst, ']')
	case "list":
		dst = append(dst, `"button":`...)
		dst = message.AppendJSONString(dst, m.buttonText)
		dst = append(dst, `,"sections":[`...)
		start := 0
		for i, end := range m.sectionRows {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			if m.sectionTitle[i] != "" {
				dst = append(dst, `"title":`...)
				dst = message.AppendJSONString(dst, m.sectionTitle[i])
				dst = append(dst, ',')
			}
			dst = append(dst, `"rows":[`...)
			for k, row := range m.rows[start:end] {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = appendFields(dst, "id", row.ID, "title", row.Title, "description", row.Description)
			}
			dst = append(dst, "]}"...)
			start = end
		}
		dst = append(dst, ']')
	case "cta_url":
		dst = append(dst, `"name":"cta_url","parameters":{"display_text":`...)
		dst = message.AppendJSONString(dst, m.displayText)
		dst = append(dst, `,"url":`...)
		dst = message.AppendJSONString(dst, m.url)
		dst = append(dst, '}')
	}
	return append(dst, "}}"...)
}
