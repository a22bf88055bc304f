package sim

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// js is s as a JSON string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// runes is a text of n two-byte characters, so that a limit counted in
// bytes would show.
func runes(n int) string { return strings.Repeat("é", n) }

func replyButton(id, title string) string {
	return `{"type":"reply","reply":{"id":` + js(id) + `,"title":` + js(title) + `}}`
}

func buttonsMessage(buttons ...string) string {
	return `{"type":"button","body":{"text":"Extend your stay?"},"action":{"buttons":[` + strings.Join(buttons, ",") + `]}}`
}

func listRow(id, title, description string) string {
	return `{"id":` + js(id) + `,"title":` + js(title) + `,"description":` + js(description) + `}`
}

func listSection(title string, rows ...string) string {
	t := ""
	if title != "" {
		t = `"title":` + js(title) + `,`
	}
	return `{` + t + `"rows":[` + strings.Join(rows, ",") + `]}`
}

func listMessage(button string, sections ...string) string {
	return `{"type":"list","body":{"text":"What service would you like?"},"action":{"button":` + js(button) +
		`,"sections":[` + strings.Join(sections, ",") + `]}}`
}

// rows makes n rows with ids prefix0…
func rows(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = listRow(prefix+strconv.Itoa(i), "Row "+strconv.Itoa(i), "")
	}
	return out
}

func ctaMessage(display, url string) string {
	return `{"type":"cta_url","body":{"text":"Your digital key"},"action":{"name":"cta_url","parameters":{"display_text":` +
		js(display) + `,"url":` + js(url) + `}}}`
}

// checkSends posts each case to a fresh simulator: refusals must be Meta's
// error body with the code and a message or details naming the parameter,
// and change nothing; acceptances answer 200.
type sendCase struct {
	name, typ, object string
	// code 0: accepted.
	code int
	want string
}

func checkSends(t *testing.T, cases []sendCase) {
	t.Helper()
	s := startSim(t, Config{})
	accepted := 0
	for _, c := range cases {
		body := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"+4915112345678","type":"` + c.typ + `","` + c.typ + `":` + c.object + `}`
		a := send(t, s, body)
		if c.code == 0 {
			if a.status != 200 {
				t.Errorf("%s: refused, want accepted: %d %s", c.name, a.status, a.body)
			}
			accepted++
			continue
		}
		if a.status != 400 || a.err.Code != c.code || !strings.Contains(a.err.Message+" | "+a.err.ErrorData.Details, c.want) {
			t.Errorf("%s: got %d %s, want 400 code %d naming %q", c.name, a.status, a.body, c.code, c.want)
			continue
		}
		if a.err.Type != "OAuthException" || a.err.TraceID == "" || a.err.ErrorData.MessagingProduct != "whatsapp" || a.err.ErrorData.Details == "" {
			t.Errorf("%s: not Meta's error shape: %s", c.name, a.body)
		}
		if c.code == 131009 && a.err.Message != "(#131009) Parameter value is not valid" {
			t.Errorf("%s: 131009 with message %q", c.name, a.err.Message)
		}
	}
	if got := int(s.Stats().Accepted); got != accepted {
		t.Errorf("%d sends accepted, want %d: refused sends must not count", got, accepted)
	}
}

func TestSimInteractiveButtons(t *testing.T) {
	b := replyButton
	three := []string{b("a", "One"), b("b", "Two"), b("c", "Three")}
	withHeader := func(header string) string {
		return `{"type":"button","header":` + header + `,"body":{"text":"Hi"},"action":{"buttons":[` + b("a", "A") + `]}}`
	}
	checkSends(t, []sendCase{
		{"three buttons", "interactive", buttonsMessage(three...), 0, ""},
		{"four buttons", "interactive", buttonsMessage(append(three, b("d", "Four"))...), 100, "between 1 and 3"},
		{"no buttons", "interactive", buttonsMessage(), 100, "between 1 and 3"},
		{"title of 20", "interactive", buttonsMessage(b("a", runes(20))), 0, ""},
		{"title of 21", "interactive", buttonsMessage(b("a", runes(21))), 131009, "interactive['action']['buttons'][0]['reply']['title'] is 21 characters long; at most 20"},
		{"empty title", "interactive", buttonsMessage(b("a", "")), 100, "interactive['action']['buttons'][0]['reply']['title'] is required"},
		{"id of 256", "interactive", buttonsMessage(b(strings.Repeat("i", 256), "A")), 0, ""},
		{"id of 257", "interactive", buttonsMessage(b("a", "A"), b(strings.Repeat("i", 257), "B")), 131009, "['buttons'][1]['reply']['id'] is 257 characters long; at most 256"},
		{"no id", "interactive", buttonsMessage(b("", "A")), 100, "['buttons'][0]['reply']['id'] is required"},
		{"id with spaces", "interactive", buttonsMessage(b(" a", "A")), 131009, "['buttons'][0]['reply']['id'] must not have leading or trailing spaces"},
		{"type url", "interactive", buttonsMessage(`{"type":"url","reply":{"id":"a","title":"A"}}`), 131009, `['buttons'][0]['type'] must be "reply"`},
		{"no type", "interactive", buttonsMessage(`{"reply":{"id":"a","title":"A"}}`), 100, "['buttons'][0]['type'] is required"},
		{"no reply", "interactive", buttonsMessage(`{"type":"reply"}`), 100, "['buttons'][0]['reply'] is required"},
		{"duplicate ids", "interactive", buttonsMessage(b("a", "A"), b("b", "B"), b("a", "C")), 131009, "['buttons'][2]['reply']['id'] repeats interactive['action']['buttons'][0]"},
		{"duplicate titles", "interactive", buttonsMessage(b("a", "Yes"), b("b", "Yes")), 131009, "['buttons'][1]['reply']['title'] repeats"},
		{"body of 1024", "interactive", `{"type":"button","body":{"text":"` + runes(1024) + `"},"action":{"buttons":[` + b("a", "A") + `]}}`, 0, ""},
		{"body of 1025", "interactive", `{"type":"button","body":{"text":"` + runes(1025) + `"},"action":{"buttons":[` + b("a", "A") + `]}}`, 100, "interactive['body']['text'] must be at most 1024"},
		{"no body", "interactive", `{"type":"button","action":{"buttons":[` + b("a", "A") + `]}}`, 100, "interactive['body']['text'] is required"},
		{"footer of 60", "interactive", `{"type":"button","body":{"text":"Hi"},"footer":{"text":"` + runes(60) + `"},"action":{"buttons":[` + b("a", "A") + `]}}`, 0, ""},
		{"footer of 61", "interactive", `{"type":"button","body":{"text":"Hi"},"footer":{"text":"` + runes(61) + `"},"action":{"buttons":[` + b("a", "A") + `]}}`, 100, "interactive['footer']['text'] must be at most 60"},
		{"empty footer", "interactive", `{"type":"button","body":{"text":"Hi"},"footer":{"text":""},"action":{"buttons":[` + b("a", "A") + `]}}`, 100, "interactive['footer']['text'] is required"},
		{"text header of 60", "interactive", withHeader(`{"type":"text","text":"` + runes(60) + `"}`), 0, ""},
		{"text header of 61", "interactive", withHeader(`{"type":"text","text":"` + runes(61) + `"}`), 131009, "interactive['header']['text'] is 61 characters long; at most 60"},
		{"text header without text", "interactive", withHeader(`{"type":"text"}`), 100, "interactive['header']['text'] is required"},
		{"image header by link", "interactive", withHeader(`{"type":"image","image":{"link":"https://example.com/room.jpg"}}`), 0, ""},
		{"document header by id", "interactive", withHeader(`{"type":"document","document":{"id":"1003383421387256","filename":"menu.pdf"}}`), 0, ""},
		{"image header without image", "interactive", withHeader(`{"type":"image"}`), 100, "interactive['header']['image'] is required"},
		{"video header without link", "interactive", withHeader(`{"type":"video","video":{}}`), 100, "interactive['header']['video'] must have either id or link"},
		{"image header by ftp", "interactive", withHeader(`{"type":"image","image":{"link":"ftp://example.com/a.jpg"}}`), 131009, "interactive['header']['image']['link'] must be an http(s) URL"},
		{"sticker header", "interactive", withHeader(`{"type":"sticker"}`), 100, "interactive['header']['type'] must be one of"},
		{"header without type", "interactive", withHeader(`{"text":"Hi"}`), 100, "interactive['header']['type'] is required"},
	})
}

func TestSimInteractiveList(t *testing.T) {
	r := listRow
	two := func(a, b int) string {
		return listMessage("View", listSection("Room", rows("r", a)...), listSection("Guest", rows("g", b)...))
	}
	sections := func(n int) string {
		ss := make([]string, n)
		for i := range ss {
			ss[i] = listSection("S"+strconv.Itoa(i), r("r"+strconv.Itoa(i), "Row", ""))
		}
		return listMessage("View", ss...)
	}
	checkSends(t, []sendCase{
		{"ten rows in two sections", "interactive", two(6, 4), 0, ""},
		{"eleven rows in two sections", "interactive", two(6, 5), 100, "1 to 10 rows"},
		{"ten sections", "interactive", sections(10), 0, ""},
		{"eleven sections", "interactive", sections(11), 100, "1 to 10 sections"},
		{"no sections", "interactive", listMessage("View"), 100, "1 to 10 sections"},
		{"one untitled section", "interactive", listMessage("View", listSection("", r("a", "A", ""))), 0, ""},
		{"untitled second section", "interactive", listMessage("View", listSection("Room", r("a", "A", "")), listSection("", r("b", "B", ""))), 100, "interactive['action']['sections'][1]['title'] is required"},
		{"section title of 24", "interactive", listMessage("View", listSection(runes(24), r("a", "A", ""))), 0, ""},
		{"section title of 25", "interactive", listMessage("View", listSection(runes(25), r("a", "A", ""))), 131009, "['sections'][0]['title'] is 25 characters long; at most 24"},
		{"section without rows", "interactive", listMessage("View", listSection("Room", r("a", "A", "")), listSection("Empty")), 100, "['sections'][1]['rows'] is required"},
		{"button of 20", "interactive", listMessage(runes(20), listSection("", r("a", "A", ""))), 0, ""},
		{"button of 21", "interactive", listMessage(runes(21), listSection("", r("a", "A", ""))), 131009, "interactive['action']['button'] is 21 characters long; at most 20"},
		{"no button", "interactive", listMessage("", listSection("", r("a", "A", ""))), 100, "interactive['action']['button'] is required"},
		{"row id of 200", "interactive", listMessage("View", listSection("", r(strings.Repeat("i", 200), "A", ""))), 0, ""},
		{"row id of 201", "interactive", listMessage("View", listSection("", r(strings.Repeat("i", 201), "A", ""))), 131009, "['rows'][0]['id'] is 201 characters long; at most 200"},
		{"row title of 24", "interactive", listMessage("View", listSection("", r("a", runes(24), ""))), 0, ""},
		{"row title of 25", "interactive", listMessage("View", listSection("", r("a", runes(25), ""))), 131009, "['rows'][0]['title'] is 25 characters long; at most 24"},
		{"row without title", "interactive", listMessage("View", listSection("", r("a", "", ""))), 100, "['rows'][0]['title'] is required"},
		{"description of 72", "interactive", listMessage("View", listSection("", r("a", "A", runes(72)))), 0, ""},
		{"description of 73", "interactive", listMessage("View", listSection("", r("a", "A", runes(73)))), 131009, "['rows'][0]['description'] is 73 characters long; at most 72"},
		{"row ids repeated across sections", "interactive", listMessage("View", listSection("Room", r("a", "A", "")), listSection("Guest", r("a", "B", ""))),
			131009, "interactive['action']['sections'][1]['rows'][0]['id'] repeats interactive['action']['sections'][0]['rows'][0]['id']"},
		{"text header", "interactive", `{"type":"list","header":{"type":"text","text":"Services"},"body":{"text":"Pick"},"action":{"button":"View","sections":[` + listSection("", r("a", "A", "")) + `]}}`, 0, ""},
		{"image header", "interactive", `{"type":"list","header":{"type":"image","image":{"link":"https://example.com/a.jpg"}},"body":{"text":"Pick"},"action":{"button":"View","sections":[` + listSection("", r("a", "A", "")) + `]}}`, 131009, "interactive['header']['type'] must be text for a list message"},
	})
}

func TestSimInteractiveCTAURL(t *testing.T) {
	checkSends(t, []sendCase{
		{"display text of 20", "interactive", ctaMessage(runes(20), "https://example.com/key?room=205"), 0, ""},
		{"display text of 21", "interactive", ctaMessage(runes(21), "https://example.com"), 131009, "['parameters']['display_text'] is 21 characters long; at most 20"},
		{"no display text", "interactive", ctaMessage("", "https://example.com"), 100, "['parameters']['display_text'] is required"},
		{"http url", "interactive", ctaMessage("Open", "http://example.com"), 0, ""},
		{"no url", "interactive", ctaMessage("Open", ""), 100, "interactive['action']['parameters']['url'] is required"},
		{"relative url", "interactive", ctaMessage("Open", "example.com/key"), 131009, "interactive['action']['parameters']['url'] must be an absolute http(s) URL"},
		{"ftp url", "interactive", ctaMessage("Open", "ftp://example.com/key"), 131009, "['url'] must be an absolute http(s) URL"},
		{"no parameters", "interactive", `{"type":"cta_url","body":{"text":"Key"},"action":{"name":"cta_url"}}`, 100, "interactive['action']['parameters'] is required"},
		{"other name", "interactive", `{"type":"cta_url","body":{"text":"Key"},"action":{"name":"url","parameters":{"display_text":"Open","url":"https://example.com"}}}`, 131009, `interactive['action']['name'] must be "cta_url"`},
		{"no body", "interactive", `{"type":"cta_url","action":{"name":"cta_url","parameters":{"display_text":"Open","url":"https://example.com"}}}`, 100, "interactive['body']['text'] is required"},
		{"video header", "interactive", `{"type":"cta_url","header":{"type":"video","video":{"link":"https://example.com/tour.mp4"}},"body":{"text":"Tour"},"action":{"name":"cta_url","parameters":{"display_text":"Book","url":"https://example.com"}}}`, 0, ""},
	})
}

func TestSimLocation(t *testing.T) {
	loc := func(lat, long string) string {
		return `{"latitude":` + lat + `,"longitude":` + long + `,"name":"Grand Plaza"}`
	}
	checkSends(t, []sendCase{
		{"corners", "location", loc("90", "-180"), 0, ""},
		{"other corners", "location", loc("-90", "180"), 0, ""},
		{"latitude as a string (Meta's spec)", "location", loc(`"37.4847"`, `"-122.1486"`), 0, ""},
		{"latitude over 90", "location", loc("90.000001", "0"), 131009, "location['latitude'] must be between -90 and 90"},
		{"latitude under -90", "location", loc("-90.5", "0"), 131009, "location['latitude'] must be between -90 and 90"},
		{"longitude over 180", "location", loc("0", "180.000001"), 131009, "location['longitude'] must be between -180 and 180"},
		{"longitude under -180", "location", loc("0", "-181"), 131009, "location['longitude'] must be between -180 and 180"},
		{"latitude not a number", "location", loc(`"north"`, "0"), 100, "location['latitude'] must be a number"},
		{"latitude NaN", "location", loc(`"NaN"`, "0"), 100, "location['latitude'] must be a number"},
		{"no longitude", "location", `{"latitude":1}`, 100, "The parameter location['longitude'] is required."},
		{"null latitude", "location", `{"latitude":null,"longitude":1}`, 100, "The parameter location['latitude'] is required."},
	})
}

// metaContact is the contact of Meta's "Send Contact Message" example.
const metaContact = `{"addresses":[{"city":"Menlo Park","country":"United States","country_code":"us","state":"CA","street":"1 Hacker Way","type":"HOME","zip":"94025"}],
 "birthday":"2012-08-18","emails":[{"email":"test@fb.com","type":"WORK"}],
 "name":{"first_name":"John","formatted_name":"John Smith","last_name":"Smith","middle_name":"D.","prefix":"Dr","suffix":"Jr"},
 "org":{"company":"WhatsApp","department":"Design","title":"Manager"},
 "phones":[{"phone":"+1 (940) 555-1234","type":"HOME"},{"phone":"+1 (650) 555-1234","type":"WORK","wa_id":"16505551234"}],
 "urls":[{"type":"WORK","url":"https://www.facebook.com"}]}`

func TestSimContacts(t *testing.T) {
	named := `{"name":{"formatted_name":"Front desk"}}`
	n := func(k int) string { return "[" + strings.TrimSuffix(strings.Repeat(named+",", k), ",") + "]" }
	with := func(field string) string { return `[{"name":{"formatted_name":"Front desk"},` + field + `}]` }
	checkSends(t, []sendCase{
		{"Meta's example", "contacts", "[" + metaContact + "]", 0, ""},
		{"five contacts", "contacts", n(5), 0, ""},
		{"six contacts", "contacts", n(6), 100, "contacts must have at most 5 elements"},
		{"no contacts", "contacts", `[]`, 100, "The parameter contacts is required."},
		{"not an array", "contacts", `{"name":{"formatted_name":"x"}}`, 100, "The parameter contacts is required."},
		{"no name", "contacts", `[` + named + `,{"phones":[{"phone":"+14155550123"}]}]`, 100, "The parameter contacts[1]['name'] is required."},
		{"no formatted name", "contacts", `[{"name":{"first_name":"Ana"}}]`, 100, "The parameter contacts[0]['name']['formatted_name'] is required."},
		{"bad birthday", "contacts", with(`"birthday":"18.08.2012"`), 131009, "contacts[0]['birthday'] must be a date in YYYY-MM-DD format"},
		{"impossible birthday", "contacts", with(`"birthday":"2012-02-30"`), 131009, "contacts[0]['birthday']"},
		{"phone without number", "contacts", with(`"phones":[{"type":"WORK"}]`), 100, "contacts[0]['phones'][0]['phone'] is required"},
		{"bad email", "contacts", with(`"emails":[{"email":"front desk"}]`), 131009, "contacts[0]['emails'][0]['email'] must be an email address"},
		{"email without address", "contacts", with(`"emails":[{"type":"WORK"}]`), 100, "contacts[0]['emails'][0]['email'] is required"},
		{"relative url", "contacts", with(`"urls":[{"url":"www.example.com"}]`), 131009, "contacts[0]['urls'][0]['url'] must be an absolute http(s) URL"},
	})
}

func TestSimReaction(t *testing.T) {
	re := func(emoji string) string {
		return `{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA","emoji":` + js(emoji) + `}`
	}
	checkSends(t, []sendCase{
		{"thumbs up", "reaction", re("👍"), 0, ""},
		{"removal", "reaction", re(""), 0, ""},
		{"skin tone", "reaction", re("👍🏽"), 0, ""},
		{"heart with selector", "reaction", re("❤️"), 0, ""},
		{"family", "reaction", re("👨‍👩‍👧‍👦"), 0, ""},
		{"flag", "reaction", re("🇩🇪"), 0, ""},
		{"two emoji", "reaction", re("👍👍"), 131009, "reaction['emoji'] must be a single emoji"},
		{"letters", "reaction", re("ok"), 131009, "reaction['emoji'] must be a single emoji"},
		{"emoji and a space", "reaction", re("👍 "), 131009, "reaction['emoji']"},
		{"no emoji", "reaction", `{"message_id":"wamid.X"}`, 100, "The parameter reaction['emoji'] is required."},
		{"no message id", "reaction", `{"emoji":"👍"}`, 100, "The parameter reaction['message_id'] is required."},
	})
}
