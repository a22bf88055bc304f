package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
)

const interactivePath = "/api/v1/whatsapp/messages/send-interactive"

// The seed's two send-interactive calls (001), exactly as written.
const (
	seedButtonsCall = `{"guest_phone":"+1234567890","interactive_type":"buttons","content":{"text":"How would you like to extend your stay?",
"buttons":[{"id":"extend_1_night","title":"1 More Night"},{"id":"extend_2_nights","title":"2 More Nights"},{"id":"call_front_desk","title":"Call Front Desk"}]}}`
	seedListCall = `{"guest_phone":"+1234567890","interactive_type":"list","content":{"text":"What service would you like to request?","button_text":"View Services",
"sections":[{"title":"Room Services","rows":[{"id":"housekeeping","title":"Housekeeping","description":"Extra towels, cleaning"},
{"id":"room_service","title":"Room Service","description":"Food and beverage delivery"},{"id":"maintenance","title":"Maintenance","description":"Technical issues"}]},
{"title":"Guest Services","rows":[{"id":"concierge","title":"Concierge","description":"Local recommendations, bookings"},
{"id":"transportation","title":"Transportation","description":"Taxi, shuttle service"}]}]}}`
)

// Meta's interactive objects for the seed's calls, written by hand from
// the "Send Reply Button" and "Send List Message" examples of Meta's spec.
const (
	seedButtonsMeta = `{"type":"button","body":{"text":"How would you like to extend your stay?"},"action":{"buttons":[` +
		`{"type":"reply","reply":{"id":"extend_1_night","title":"1 More Night"}},` +
		`{"type":"reply","reply":{"id":"extend_2_nights","title":"2 More Nights"}},` +
		`{"type":"reply","reply":{"id":"call_front_desk","title":"Call Front Desk"}}]}}`
	seedListMeta = `{"type":"list","body":{"text":"What service would you like to request?"},"action":{"button":"View Services","sections":[` +
		`{"title":"Room Services","rows":[{"id":"housekeeping","title":"Housekeeping","description":"Extra towels, cleaning"},` +
		`{"id":"room_service","title":"Room Service","description":"Food and beverage delivery"},` +
		`{"id":"maintenance","title":"Maintenance","description":"Technical issues"}]},` +
		`{"title":"Guest Services","rows":[{"id":"concierge","title":"Concierge","description":"Local recommendations, bookings"},` +
		`{"id":"transportation","title":"Transportation","description":"Taxi, shuttle service"}]}]}}`
)

// ixJS is s as a JSON string literal.
func ixJS(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ixRunes is a text of n two-byte characters, so that a limit counted in
// bytes would show.
func ixRunes(n int) string { return strings.Repeat("é", n) }

// ixBody is a send-interactive body to the seed's guest.
func ixBody(typ, content string) string {
	return `{"guest_phone":"+1234567890","interactive_type":"` + typ + `","content":` + content + `}`
}

func ixButton(id, title string) string { return `{"id":` + ixJS(id) + `,"title":` + ixJS(title) + `}` }

func ixButtons(buttons ...string) string {
	return `{"text":"Extend your stay?","buttons":[` + strings.Join(buttons, ",") + `]}`
}

func ixRow(id, title, description string) string {
	return `{"id":` + ixJS(id) + `,"title":` + ixJS(title) + `,"description":` + ixJS(description) + `}`
}

func ixRows(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = ixRow(prefix+strconv.Itoa(i), "Row "+strconv.Itoa(i), "")
	}
	return out
}

func ixSection(title string, rows ...string) string {
	t := ""
	if title != "" {
		t = `"title":` + ixJS(title) + `,`
	}
	return `{` + t + `"rows":[` + strings.Join(rows, ",") + `]}`
}

func ixList(button string, sections ...string) string {
	return `{"text":"What service?","button_text":` + ixJS(button) + `,"sections":[` + strings.Join(sections, ",") + `]}`
}

func ixCTA(display, url string) string {
	return `{"text":"Your digital key is ready","display_text":` + ixJS(display) + `,"url":` + ixJS(url) + `}`
}

// ixStored returns the type and content the dispatcher will send for an
// accepted message.
func (h *harness) ixStored(id string) (message.Type, string) {
	h.t.Helper()
	st, err := h.store.State(context.Background(), id)
	must(h.t, err)
	return st.Type, string(h.begin(id).Msg.Content)
}

// ixAccepted posts body to path and returns the message id of its 202
// {message_id, status: "queued"}.
func (h *harness) ixAccepted(path, token, body string) string {
	h.t.Helper()
	code, v, _ := h.do("POST", path, token, body)
	id, _ := v["message_id"].(string)
	if code != 202 || v["status"] != "queued" || !strings.HasPrefix(id, "msg_") {
		h.t.Fatalf("want 202 {message_id, status: queued}, got %d %v for %.200s", code, v, body)
	}
	return id
}

// ixRefused checks an answer is refused with code, naming field, and (when
// max > 0) the actual length and the limit.
func ixRefused(t *testing.T, what string, code int, v map[string]any, wantStatus int, wantCode, field string, length, max int) {
	t.Helper()
	if code != wantStatus || errCode(t, v) != wantCode {
		t.Errorf("%s: got %d %v, want %d %s", what, code, v, wantStatus, wantCode)
		return
	}
	e := v["error"].(map[string]any)
	d := e["details"].(map[string]any)
	if d["field"] != field {
		t.Errorf("%s: details.field %v, want %q (%v)", what, d["field"], field, e["message"])
	}
	if msg, _ := e["message"].(string); !strings.Contains(msg, field) {
		t.Errorf("%s: message %q does not name %s", what, msg, field)
	}
	if max > 0 && (d["length"] != float64(length) || d["max_length"] != float64(max)) {
		t.Errorf("%s: details %v, want length %d and max_length %d", what, d, length, max)
	}
}

func TestInteractiveSeedCallsAreQueuedAsMetasObjects(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	for _, c := range []struct{ name, call, want string }{
		{"buttons", seedButtonsCall, seedButtonsMeta},
		{"list", seedListCall, seedListMeta},
	} {
		id := h.ixAccepted(interactivePath, staffToken, c.call)
		typ, content := h.ixStored(id)
		if typ != message.TypeInteractive || content != c.want {
			t.Errorf("%s: stored %s %s\nwant interactive %s", c.name, typ, content, c.want)
		}
	}
}

// Interactive, location, contacts and reaction messages are free-form:
// they need the guest's 24-hour window open.
func TestInteractiveNeedsTheGuestsWindow(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ name, path, body string }{
		{"buttons", interactivePath, `{"guest_phone":"+14155559999","interactive_type":"buttons","content":` + ixButtons(ixButton("a", "A")) + `}`},
		{"location", sendPath, `{"guest_phone":"+14155559999","message_type":"location","content":{"latitude":1,"longitude":2}}`},
	} {
		code, v, _ := h.do("POST", c.path, staffToken, c.body)
		if code != 403 || errCode(t, v) != "MESSAGE_WINDOW_EXPIRED" {
			t.Errorf("%s to a guest who never wrote: %d %v", c.name, code, v)
		}
	}
	if n := h.queued(); n != 0 {
		t.Fatalf("%d queued outside the window", n)
	}
}

func TestInteractiveBuildsEachType(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	f := func(name, body, want string) {
		t.Helper()
		id := h.ixAccepted(interactivePath, staffToken, body)
		if _, got := h.ixStored(id); got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	f("Meta's name button, header and footer as strings",
		ixBody("button", `{"text":"Late checkout?","header":"Room 205","footer":"Grand Plaza","buttons":[{"id":"yes","title":"Yes"}]}`),
		`{"type":"button","header":{"type":"text","text":"Room 205"},"body":{"text":"Late checkout?"},"footer":{"text":"Grand Plaza"},`+
			`"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`)
	f("image header, footer object",
		ixBody("buttons", `{"text":"Your room","header":{"type":"image","link":"https://example.com/room.jpg"},"footer":{"text":"See you"},"buttons":[{"id":"ok","title":"OK"}]}`),
		`{"type":"button","header":{"type":"image","image":{"link":"https://example.com/room.jpg"}},"body":{"text":"Your room"},"footer":{"text":"See you"},`+
			`"action":{"buttons":[{"type":"reply","reply":{"id":"ok","title":"OK"}}]}}`)
	f("list with one untitled section and a text header",
		ixBody("list", `{"text":"Pick","header":{"type":"text","text":"Menu"},"button_text":"Open","sections":[{"rows":[{"id":"1","title":"Pizza"}]}]}`),
		`{"type":"list","header":{"type":"text","text":"Menu"},"body":{"text":"Pick"},"action":{"button":"Open","sections":[{"rows":[{"id":"1","title":"Pizza"}]}]}}`)
	f("cta_url with a document header",
		ixBody("cta_url", `{"text":"Your invoice","header":{"type":"document","link":"https://example.com/i.pdf","filename":"invoice.pdf"},"display_text":"Pay now","url":"https://pay.example.com/RB123456"}`),
		`{"type":"cta_url","header":{"type":"document","document":{"link":"https://example.com/i.pdf","filename":"invoice.pdf"}},"body":{"text":"Your invoice"},`+
			`"action":{"name":"cta_url","parameters":{"display_text":"Pay now","url":"https://pay.example.com/RB123456"}}}`)
	f("escaping", ixBody("buttons", `{"text":"Say \"hi\"\n<b>&</b>","buttons":[{"id":"a\\b","title":"Tab\there"}]}`),
		`{"type":"button","body":{"text":"Say \"hi\"\n<b>&</b>"},"action":{"buttons":[{"type":"reply","reply":{"id":"a\\b","title":"Tab\there"}}]}}`)

	// The delivery fields of every send apply.
	id := h.ixAccepted(interactivePath, staffToken, `{"guest_phone":"+1234567890","interactive_type":"buttons","content":`+ixButtons(ixButton("a", "A"))+
		`,"priority":"bulk","campaign_id":"spring","conversation_id":"conv_abc123","staff_member_id":"staff_456","from":"+15550001001"}`)
	st, err := h.store.State(context.Background(), id)
	must(t, err)
	if st.Lane != message.LaneBulk || st.Campaign != "spring" || st.Sender != "+15550001001" || st.ConversationID != "conv_abc123" || st.StaffMemberID != "staff_456" {
		t.Errorf("delivery fields not applied: %+v", st)
	}
}

func TestInteractiveRefusesWhatMetaWouldAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	accepted := 0
	ok := func(name, body string) {
		t.Helper()
		if code, v, _ := h.do("POST", interactivePath, staffToken, body); code != 202 {
			t.Errorf("%s: want 202, got %d %v", name, code, v)
			return
		}
		accepted++
	}
	bad := func(name, body, field string, length, max int) {
		t.Helper()
		code, v, _ := h.do("POST", interactivePath, staffToken, body)
		ixRefused(t, name, code, v, 400, "INVALID_REQUEST", field, length, max)
	}
	b := ixButton
	three := []string{b("a", "One"), b("b", "Two"), b("c", "Three")}

	code, v, _ := h.do("POST", interactivePath, staffToken, `{"interactive_type":"buttons","content":`+ixButtons(b("a", "A"))+`}`)
	ixRefused(t, "no phone", code, v, 400, "INVALID_PHONE_NUMBER", "guest_phone", 0, 0)
	code, v, _ = h.do("POST", interactivePath, staffToken, `{"guest_phone":"1234567890","interactive_type":"buttons","content":`+ixButtons(b("a", "A"))+`}`)
	ixRefused(t, "phone without +", code, v, 400, "INVALID_PHONE_NUMBER", "guest_phone", 0, 0)
	bad("no type", `{"guest_phone":"+1234567890","content":`+ixButtons(b("a", "A"))+`}`, "interactive_type", 0, 0)
	bad("unknown type", ixBody("carousel", ixButtons(b("a", "A"))), "interactive_type", 0, 0)
	bad("no content", `{"guest_phone":"+1234567890","interactive_type":"buttons"}`, "content", 0, 0)
	bad("content not an object", ixBody("buttons", `"hello"`), "content", 0, 0)
	bad("unknown field", ixBody("buttons", `{"text":"Hi","buttons":[`+b("a", "A")+`],"color":"red"}`), "content.color", 0, 0)
	bad("unknown top-level field", `{"guest_phone":"+1234567890","interactive_type":"buttons","content":`+ixButtons(b("a", "A"))+`,"message_type":"interactive"}`, "message_type", 0, 0)
	bad("another type's field", ixBody("buttons", `{"text":"Hi","button_text":"Open","buttons":[`+b("a", "A")+`]}`), "content.button_text", 0, 0)
	bad("sections on cta_url", ixBody("cta_url", `{"text":"Hi","display_text":"Open","url":"https://example.com","sections":[]}`), "content.sections", 0, 0)
	bad("from another tenant's number", `{"guest_phone":"+1234567890","interactive_type":"buttons","content":`+ixButtons(b("a", "A"))+`,"from":"+15550002000"}`, "from", 0, 0)
	bad("bad ttl", `{"guest_phone":"+1234567890","interactive_type":"buttons","content":`+ixButtons(b("a", "A"))+`,"ttl_seconds":0}`, "ttl_seconds", 0, 0)

	// Body, header, footer.
	ok("body of 1024", ixBody("buttons", `{"text":"`+ixRunes(1024)+`","buttons":[`+b("a", "A")+`]}`))
	bad("body of 1025", ixBody("buttons", `{"text":"`+ixRunes(1025)+`","buttons":[`+b("a", "A")+`]}`), "content.text", 1025, 1024)
	bad("no body", ixBody("buttons", `{"buttons":[`+b("a", "A")+`]}`), "content.text", 0, 0)
	bad("blank body", ixBody("list", `{"text":"  ","button_text":"Open","sections":[`+ixSection("", ixRow("a", "A", ""))+`]}`), "content.text", 0, 0)
	bad("body a number", ixBody("buttons", `{"text":5,"buttons":[`+b("a", "A")+`]}`), "content.text", 0, 0)
	ok("header of 60", ixBody("buttons", `{"text":"Hi","header":"`+ixRunes(60)+`","buttons":[`+b("a", "A")+`]}`))
	bad("header of 61", ixBody("buttons", `{"text":"Hi","header":"`+ixRunes(61)+`","buttons":[`+b("a", "A")+`]}`), "content.header", 61, 60)
	bad("header text of 61", ixBody("cta_url", `{"text":"Hi","header":{"type":"text","text":"`+ixRunes(61)+`"},"display_text":"Open","url":"https://example.com"}`), "content.header.text", 61, 60)
	bad("image header without link", ixBody("buttons", `{"text":"Hi","header":{"type":"image"},"buttons":[`+b("a", "A")+`]}`), "content.header.link", 0, 0)
	bad("image header by http", ixBody("buttons", `{"text":"Hi","header":{"type":"image","link":"http://example.com/a.jpg"},"buttons":[`+b("a", "A")+`]}`), "content.header.link", 0, 0)
	bad("image header by ftp", ixBody("buttons", `{"text":"Hi","header":{"type":"image","link":"ftp://example.com/a.jpg"},"buttons":[`+b("a", "A")+`]}`), "content.header.link", 0, 0)
	bad("image header with text", ixBody("buttons", `{"text":"Hi","header":{"type":"image","text":"x","link":"https://example.com/a.jpg"},"buttons":[`+b("a", "A")+`]}`), "content.header.text", 0, 0)
	bad("filename on an image", ixBody("buttons", `{"text":"Hi","header":{"type":"image","link":"https://example.com/a.jpg","filename":"a.jpg"},"buttons":[`+b("a", "A")+`]}`), "content.header.filename", 0, 0)
	bad("sticker header", ixBody("buttons", `{"text":"Hi","header":{"type":"sticker","link":"https://example.com/a.webp"},"buttons":[`+b("a", "A")+`]}`), "content.header.type", 0, 0)
	bad("image header on a list", ixBody("list", `{"text":"Hi","header":{"type":"image","link":"https://example.com/a.jpg"},"button_text":"Open","sections":[`+ixSection("", ixRow("a", "A", ""))+`]}`), "content.header.type", 0, 0)
	bad("header unknown field", ixBody("buttons", `{"text":"Hi","header":{"type":"image","link":"https://example.com/a.jpg","caption":"x"},"buttons":[`+b("a", "A")+`]}`), "content.header.caption", 0, 0)
	bad("header a number", ixBody("buttons", `{"text":"Hi","header":7,"buttons":[`+b("a", "A")+`]}`), "content.header", 0, 0)
	ok("footer of 60", ixBody("buttons", `{"text":"Hi","footer":"`+ixRunes(60)+`","buttons":[`+b("a", "A")+`]}`))
	bad("footer of 61", ixBody("buttons", `{"text":"Hi","footer":"`+ixRunes(61)+`","buttons":[`+b("a", "A")+`]}`), "content.footer", 61, 60)
	bad("footer text of 61", ixBody("buttons", `{"text":"Hi","footer":{"text":"`+ixRunes(61)+`"},"buttons":[`+b("a", "A")+`]}`), "content.footer.text", 61, 60)

	// Buttons.
	ok("three buttons", ixBody("buttons", ixButtons(three...)))
	code, v, _ = h.do("POST", interactivePath, staffToken, ixBody("buttons", ixButtons(append(three, b("d", "Four"))...)))
	ixRefused(t, "four buttons", code, v, 400, "INVALID_REQUEST", "content.buttons", 0, 0)
	if d := v["error"].(map[string]any)["details"].(map[string]any); d["count"] != 4.0 || d["max_items"] != 3.0 {
		t.Errorf("four buttons: details %v, want count 4 and max_items 3", d)
	}
	bad("no buttons", ixBody("buttons", ixButtons()), "content.buttons", 0, 0)
	bad("buttons missing", ixBody("buttons", `{"text":"Hi"}`), "content.buttons", 0, 0)
	ok("title of 20", ixBody("buttons", ixButtons(b("a", "A"), b("b", "B"), b("c", ixRunes(20)))))
	bad("title of 21", ixBody("buttons", ixButtons(b("a", "A"), b("b", "B"), b("c", ixRunes(21)))), "content.buttons[2].title", 21, 20)
	bad("blank title", ixBody("buttons", ixButtons(b("a", " "))), "content.buttons[0].title", 0, 0)
	ok("id of 256", ixBody("buttons", ixButtons(b(strings.Repeat("i", 256), "A"))))
	bad("id of 257", ixBody("buttons", ixButtons(b("a", "A"), b(strings.Repeat("i", 257), "B"))), "content.buttons[1].id", 257, 256)
	bad("no id", ixBody("buttons", ixButtons(`{"title":"A"}`)), "content.buttons[0].id", 0, 0)
	bad("id with a trailing space", ixBody("buttons", ixButtons(b("a ", "A"))), "content.buttons[0].id", 0, 0)
	bad("duplicate ids", ixBody("buttons", ixButtons(b("a", "A"), b("b", "B"), b("a", "C"))), "content.buttons[2].id", 0, 0)
	bad("duplicate titles", ixBody("buttons", ixButtons(b("a", "Yes"), b("b", "Yes"))), "content.buttons[1].title", 0, 0)
	bad("button not an object", ixBody("buttons", ixButtons(`"yes"`)), "content.buttons[0]", 0, 0)
	bad("button unknown field", ixBody("buttons", ixButtons(`{"id":"a","title":"A","payload":"x"}`)), "content.buttons[0].payload", 0, 0)
	bad("title a number", ixBody("buttons", ixButtons(`{"id":"a","title":1}`)), "content.buttons[0].title", 0, 0)

	// Lists.
	two := func(a, b int) string {
		return ixBody("list", ixList("View", ixSection("Room", ixRows("r", a)...), ixSection("Guest", ixRows("g", b)...)))
	}
	sections := func(n int) string {
		ss := make([]string, n)
		for i := range ss {
			ss[i] = ixSection("S"+strconv.Itoa(i), ixRow("r"+strconv.Itoa(i), "Row", ""))
		}
		return ixBody("list", ixList("View", ss...))
	}
	one := func(title string, rows ...string) string {
		return ixBody("list", ixList("View", ixSection(title, rows...)))
	}
	ok("ten rows in all", two(6, 4))
	code, v, _ = h.do("POST", interactivePath, staffToken, two(6, 5))
	ixRefused(t, "eleven rows in all", code, v, 400, "INVALID_REQUEST", "content.sections[1].rows[4]", 0, 0)
	if d := v["error"].(map[string]any)["details"].(map[string]any); d["count"] != 11.0 || d["max_items"] != 10.0 {
		t.Errorf("eleven rows: details %v, want count 11 and max_items 10", d)
	}
	ok("ten sections", sections(10))
	bad("eleven sections", sections(11), "content.sections", 0, 0)
	bad("no sections", ixBody("list", ixList("View")), "content.sections", 0, 0)
	ok("one untitled section", one("", ixRow("a", "A", "")))
	bad("untitled second section", ixBody("list", ixList("View", ixSection("Room", ixRow("a", "A", "")), ixSection("", ixRow("b", "B", "")))), "content.sections[1].title", 0, 0)
	ok("section title of 24", one(ixRunes(24), ixRow("a", "A", "")))
	bad("section title of 25", one(ixRunes(25), ixRow("a", "A", "")), "content.sections[0].title", 25, 24)
	bad("section without rows", ixBody("list", ixList("View", ixSection("Room", ixRow("a", "A", "")), ixSection("Guest"))), "content.sections[1].rows", 0, 0)
	ok("button text of 20", ixBody("list", ixList(ixRunes(20), ixSection("", ixRow("a", "A", "")))))
	bad("button text of 21", ixBody("list", ixList(ixRunes(21), ixSection("", ixRow("a", "A", "")))), "content.button_text", 21, 20)
	bad("no button text", ixBody("list", `{"text":"Hi","sections":[`+ixSection("", ixRow("a", "A", ""))+`]}`), "content.button_text", 0, 0)
	ok("row id of 200", one("", ixRow(strings.Repeat("i", 200), "A", "")))
	bad("row id of 201", one("", ixRow(strings.Repeat("i", 201), "A", "")), "content.sections[0].rows[0].id", 201, 200)
	ok("row title of 24", one("", ixRow("a", ixRunes(24), "")))
	bad("row title of 25", one("", ixRow("a", "A", ""), ixRow("b", ixRunes(25), "")), "content.sections[0].rows[1].title", 25, 24)
	bad("row without title", one("", `{"id":"a"}`), "content.sections[0].rows[0].title", 0, 0)
	ok("description of 72", one("", ixRow("a", "A", ixRunes(72))))
	bad("description of 73", one("", ixRow("a", "A", ixRunes(73))), "content.sections[0].rows[0].description", 73, 72)
	bad("row ids repeated across sections", ixBody("list", ixList("View", ixSection("Room", ixRow("a", "A", ""), ixRow("b", "B", "")), ixSection("Guest", ixRow("b", "C", "")))), "content.sections[1].rows[0].id", 0, 0)
	bad("row unknown field", one("", `{"id":"a","title":"A","image":"x"}`), "content.sections[0].rows[0].image", 0, 0)

	// Call-to-action URL buttons.
	ok("display text of 20", ixBody("cta_url", ixCTA(ixRunes(20), "https://example.com/key?room=205")))
	bad("display text of 21", ixBody("cta_url", ixCTA(ixRunes(21), "https://example.com")), "content.display_text", 21, 20)
	bad("no display text", ixBody("cta_url", `{"text":"Hi","url":"https://example.com"}`), "content.display_text", 0, 0)
	ok("http url", ixBody("cta_url", ixCTA("Open", "http://example.com")))
	bad("no url", ixBody("cta_url", `{"text":"Hi","display_text":"Open"}`), "content.url", 0, 0)
	bad("relative url", ixBody("cta_url", ixCTA("Open", "example.com/key")), "content.url", 0, 0)
	bad("javascript url", ixBody("cta_url", ixCTA("Open", "javascript:alert(1)")), "content.url", 0, 0)
	bad("url with a space", ixBody("cta_url", ixCTA("Open", "https://example.com/a b")), "content.url", 0, 0)

	if n := h.queued(); n != int64(accepted) {
		t.Fatalf("%d messages queued, want only the %d accepted", n, accepted)
	}
}

// ixSim starts a Meta simulator for the test.
func ixSim(t *testing.T) *sim.Server {
	t.Helper()
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0"}, nil)
	must(t, err)
	must(t, s.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("sim shutdown: %v", err)
		}
	})
	return s
}

// ixPostMeta posts a send body to the simulator's messages endpoint.
func ixPostMeta(t *testing.T, s *sim.Server, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL()+"/v23.0/"+sim.DefaultPhoneNumberID+"/messages", bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+sim.DefaultAccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// ixJSONDiff lists where two JSON documents differ, by path; nil when they
// are the same document.
func ixJSONDiff(got, want []byte) []string {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return []string{"got is not JSON: " + err.Error()}
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return []string{"want is not JSON: " + err.Error()}
	}
	var out []string
	var walk func(path string, g, w any)
	walk = func(path string, g, w any) {
		switch w := w.(type) {
		case map[string]any:
			gm, ok := g.(map[string]any)
			if !ok {
				out = append(out, fmt.Sprintf("%s: got %v, want an object", path, g))
				return
			}
			keys := map[string]bool{}
			for k := range w {
				keys[k] = true
			}
			for k := range gm {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				gv, gok := gm[k]
				wv, wok := w[k]
				switch {
				case !gok:
					out = append(out, path+"."+k+": missing")
				case !wok:
					out = append(out, path+"."+k+": not in Meta's body")
				default:
					walk(path+"."+k, gv, wv)
				}
			}
		case []any:
			ga, ok := g.([]any)
			if !ok || len(ga) != len(w) {
				out = append(out, fmt.Sprintf("%s: got %v, want %d elements", path, g, len(w)))
				return
			}
			for i := range w {
				walk(path+"["+strconv.Itoa(i)+"]", ga[i], w[i])
			}
		default:
			if !reflect.DeepEqual(g, w) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", path, g, w))
			}
		}
	}
	walk("$", g, w)
	return out
}

// TestBodiesReachMetaAsDocumented sends each type through the API, wraps
// the stored content as the Meta adapter does, and checks that the
// simulator takes it and that it is, field by field, the body Meta's
// documentation shows.
func TestBodiesReachMetaAsDocumented(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	s := ixSim(t)
	sentID := h.sentMessage("wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjRFMkQ5NzY4NURFRjlEOUY2RgA=")
	const envelope = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"1234567890","type":"%s","%s":%s}`
	for _, c := range []struct {
		name, path, call, typ, meta string
	}{
		{"seed buttons", interactivePath, seedButtonsCall, "interactive", seedButtonsMeta},
		{"seed list", interactivePath, seedListCall, "interactive", seedListMeta},
		{"cta_url", interactivePath, ixBody("cta_url", `{"text":"Your digital key is ready","footer":"Grand Plaza","display_text":"Open key","url":"https://keys.example.com/RB123456"}`), "interactive",
			`{"type":"cta_url","body":{"text":"Your digital key is ready"},"footer":{"text":"Grand Plaza"},"action":{"name":"cta_url","parameters":{"display_text":"Open key","url":"https://keys.example.com/RB123456"}}}`},
		{"location", sendPath, `{"guest_phone":"+1234567890","message_type":"location","content":{"latitude":37.758056,"longitude":-122.425332,"name":"META HQ","address":"1 Hacker Way, Menlo Park, CA 94025"}}`, "location",
			`{"address":"1 Hacker Way, Menlo Park, CA 94025","latitude":37.758056,"longitude":-122.425332,"name":"META HQ"}`},
		{"contacts", sendPath, `{"guest_phone":"+1234567890","message_type":"contacts","content":{"contacts":[` + ixMetaContact + `]}}`, "contacts",
			`[` + ixMetaContact + `]`},
		{"reaction to a wagate message", sendPath, `{"guest_phone":"+1234567890","message_type":"reaction","content":{"message_id":"` + sentID + `","emoji":"👍"}}`, "reaction",
			`{"message_id":"wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjRFMkQ5NzY4NURFRjlEOUY2RgA=","emoji":"👍"}`},
		{"reaction removed", sendPath, `{"guest_phone":"+1234567890","message_type":"reaction","content":{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA","emoji":""}}`, "reaction",
			`{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA","emoji":""}`},
	} {
		id := h.ixAccepted(c.path, staffToken, c.call)
		typ, content := h.ixStored(id)
		body, err := meta.AppendSendBody(nil, &message.Message{Recipient: "+1234567890", Type: typ, Content: []byte(content)})
		if err != nil {
			t.Errorf("%s: AppendSendBody: %v", c.name, err)
			continue
		}
		if code, answer := ixPostMeta(t, s, body); code != 200 {
			t.Errorf("%s: the simulator refused %s: %d %s", c.name, body, code, answer)
		}
		want := fmt.Sprintf(envelope, c.typ, c.typ, c.meta)
		for _, d := range ixJSONDiff(body, []byte(want)) {
			t.Errorf("%s: %s", c.name, d)
		}
	}
}
