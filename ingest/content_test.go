package ingest

import (
	"strings"
	"testing"
)

// ixMetaContact is the contact of Meta's "Send Contact Message" example,
// with both of its addresses and emails.
const ixMetaContact = `{"addresses":[{"city":"Menlo Park","country":"United States","country_code":"us","state":"CA","street":"1 Hacker Way","type":"HOME","zip":"94025"},` +
	`{"city":"Menlo Park","country":"United States","country_code":"us","state":"CA","street":"200 Jefferson Dr","type":"WORK","zip":"94025"}],` +
	`"birthday":"2012-08-18","emails":[{"email":"test@fb.com","type":"WORK"},{"email":"test@whatsapp.com","type":"HOME"}],` +
	`"name":{"first_name":"John","formatted_name":"John Smith","last_name":"Smith","middle_name":"D.","prefix":"Dr","suffix":"Jr"},` +
	`"org":{"company":"WhatsApp","department":"Design","title":"Manager"},` +
	`"phones":[{"phone":"+1 (940) 555-1234","type":"HOME"},{"phone":"+1 (650) 555-1234","type":"WORK","wa_id":"16505551234"}],` +
	`"urls":[{"type":"WORK","url":"https://www.facebook.com"},{"type":"HOME","url":"https://www.whatsapp.com"}]}`

// ixSend is a messages/send body of type typ to the seed's guest.
func ixSend(typ, content string) string {
	return `{"guest_phone":"+1234567890","message_type":"` + typ + `","content":` + content + `}`
}

func TestLocationMessages(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	accepted := 0
	ok := func(name, content, want string) {
		t.Helper()
		id := h.ixAccepted(sendPath, staffToken, ixSend("location", content))
		accepted++
		if typ, got := h.ixStored(id); typ != "location" || got != want {
			t.Errorf("%s: stored %s %s, want location %s", name, typ, got, want)
		}
	}
	bad := func(name, content, field string) {
		t.Helper()
		code, v, _ := h.do("POST", sendPath, staffToken, ixSend("location", content))
		ixRefused(t, name, code, v, 400, "INVALID_REQUEST", field, 0, 0)
	}
	ok("hotel", `{"latitude":52.5200066,"longitude":13.404954,"name":"Grand Plaza Hotel","address":"Unter den Linden 1, Berlin"}`,
		`{"latitude":52.5200066,"longitude":13.404954,"name":"Grand Plaza Hotel","address":"Unter den Linden 1, Berlin"}`)
	ok("north-east corner", `{"latitude":90,"longitude":180}`, `{"latitude":90,"longitude":180}`)
	ok("south-west corner", `{"latitude":-90,"longitude":-180}`, `{"latitude":-90,"longitude":-180}`)
	ok("zero is a coordinate", `{"latitude":0,"longitude":0,"name":"Null Island"}`, `{"latitude":0,"longitude":0,"name":"Null Island"}`)
	bad("latitude over 90", `{"latitude":90.000001,"longitude":0}`, "content.latitude")
	bad("latitude under -90", `{"latitude":-90.5,"longitude":0}`, "content.latitude")
	bad("longitude over 180", `{"latitude":0,"longitude":180.000001}`, "content.longitude")
	bad("longitude under -180", `{"latitude":0,"longitude":-181}`, "content.longitude")
	bad("no latitude", `{"longitude":13.4}`, "content.latitude")
	bad("null longitude", `{"latitude":52.5,"longitude":null}`, "content.longitude")
	bad("latitude a string", `{"latitude":"52.5","longitude":13.4}`, "content.latitude")
	bad("name a number", `{"latitude":52.5,"longitude":13.4,"name":5}`, "content.name")
	bad("unknown field", `{"latitude":52.5,"longitude":13.4,"zoom":3}`, "content.zoom")
	bad("content an array", `[52.5,13.4]`, "content")
	if n := h.queued(); n != int64(accepted) {
		t.Fatalf("%d queued, want %d", n, accepted)
	}
}

func TestContactMessages(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	accepted := 0
	ok := func(name, content, want string) {
		t.Helper()
		id := h.ixAccepted(sendPath, staffToken, ixSend("contacts", content))
		accepted++
		typ, got := h.ixStored(id)
		if typ != "contacts" {
			t.Errorf("%s: stored as %s", name, typ)
		}
		for _, d := range ixJSONDiff([]byte(got), []byte(want)) {
			t.Errorf("%s: %s (stored %s)", name, d, got)
		}
	}
	bad := func(name, content, field string) {
		t.Helper()
		code, v, _ := h.do("POST", sendPath, staffToken, ixSend("contacts", content))
		ixRefused(t, name, code, v, 400, "INVALID_REQUEST", field, 0, 0)
	}
	desk := `{"name":{"formatted_name":"Front desk"}}`
	n := func(k int) string {
		return `{"contacts":[` + strings.TrimSuffix(strings.Repeat(desk+",", k), ",") + `]}`
	}
	with := func(fields string) string {
		return `{"contacts":[{"name":{"formatted_name":"Front desk"},` + fields + `}]}`
	}

	ok("Meta's example", `{"contacts":[`+ixMetaContact+`]}`, `[`+ixMetaContact+`]`)
	ok("types in any case", with(`"phones":[{"phone":"+49 30 1234567","type":"cell"}],"emails":[{"email":"desk@grandplaza.example","type":"work"}]`),
		`[{"name":{"formatted_name":"Front desk"},"phones":[{"phone":"+49 30 1234567","type":"CELL"}],"emails":[{"email":"desk@grandplaza.example","type":"WORK"}]}]`)
	ok("five contacts", n(5), "["+strings.TrimSuffix(strings.Repeat(desk+",", 5), ",")+"]")
	bad("six contacts", n(6), "content.contacts")
	bad("no contacts", `{"contacts":[]}`, "content.contacts")
	bad("contacts missing", `{}`, "content.contacts")
	bad("Meta's bare array", `[`+desk+`]`, "content")
	bad("no name", `{"contacts":[`+desk+`,{"phones":[{"phone":"+14155550123"}]}]}`, "content.contacts[1].name")
	bad("no formatted name", `{"contacts":[{"name":{"first_name":"Ana"}}]}`, "content.contacts[0].name.formatted_name")
	bad("blank formatted name", `{"contacts":[{"name":{"formatted_name":" "}}]}`, "content.contacts[0].name.formatted_name")
	bad("unknown name part", `{"contacts":[{"name":{"formatted_name":"Ana","nickname":"A"}}]}`, "content.contacts[0].name.nickname")
	bad("unknown contact field", with(`"notes":"x"`), "content.contacts[0].notes")
	bad("phone with letters", with(`"phones":[{"phone":"+1 650 CALL-NOW"}]`), "content.contacts[0].phones[0].phone")
	bad("phone of 6 digits", with(`"phones":[{"phone":"+14155550123"},{"phone":"123-456"}]`), "content.contacts[0].phones[1].phone")
	ok("phone of 7 digits", with(`"phones":[{"phone":"123-4567"}]`), `[{"name":{"formatted_name":"Front desk"},"phones":[{"phone":"123-4567"}]}]`)
	ok("phone of 15 digits", with(`"phones":[{"phone":"+123 456 789 012 345"}]`), `[{"name":{"formatted_name":"Front desk"},"phones":[{"phone":"+123 456 789 012 345"}]}]`)
	bad("phone of 16 digits", with(`"phones":[{"phone":"+1234 5678 9012 3456"}]`), "content.contacts[0].phones[0].phone")
	bad("plus inside a phone", with(`"phones":[{"phone":"1+4155550123"}]`), "content.contacts[0].phones[0].phone")
	bad("phone missing", with(`"phones":[{"type":"WORK"}]`), "content.contacts[0].phones[0].phone")
	bad("wa_id with +", with(`"phones":[{"phone":"+14155550123","wa_id":"+14155550123"}]`), "content.contacts[0].phones[0].wa_id")
	bad("phone type", with(`"phones":[{"phone":"+14155550123","type":"FAX"}]`), "content.contacts[0].phones[0].type")
	bad("email without @", with(`"emails":[{"email":"front desk"}]`), "content.contacts[0].emails[0].email")
	bad("email with a name", with(`"emails":[{"email":"Desk <desk@example.com>"}]`), "content.contacts[0].emails[0].email")
	bad("email without a domain dot", with(`"emails":[{"email":"desk@localhost"}]`), "content.contacts[0].emails[0].email")
	bad("email type CELL", with(`"emails":[{"email":"desk@example.com","type":"CELL"}]`), "content.contacts[0].emails[0].type")
	bad("relative url", with(`"urls":[{"url":"www.example.com"}]`), "content.contacts[0].urls[0].url")
	bad("birthday in another form", with(`"birthday":"18.08.2012"`), "content.contacts[0].birthday")
	bad("impossible birthday", with(`"birthday":"2012-02-30"`), "content.contacts[0].birthday")
	bad("birthday without zeros", with(`"birthday":"2012-8-18"`), "content.contacts[0].birthday")
	bad("empty address", with(`"addresses":[{"type":"HOME"}]`), "content.contacts[0].addresses[0]")
	bad("country code of three letters", with(`"addresses":[{"city":"Berlin","country_code":"deu"}]`), "content.contacts[0].addresses[0].country_code")
	bad("org a string", with(`"org":"WhatsApp"`), "content.contacts[0].org")
	bad("phones an object", with(`"phones":{"phone":"+14155550123"}`), "content.contacts[0].phones")
	if n := h.queued(); n != int64(accepted) {
		t.Fatalf("%d queued, want %d", n, accepted)
	}
}

func TestReactionMessages(t *testing.T) {
	h := newHarness(t)
	h.openWindow("+1234567890")
	const pid = "wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjRFMkQ5NzY4NURFRjlEOUY2RgA="
	sent := h.sentMessage(pid)
	react := func(id, emoji string) string {
		return ixSend("reaction", `{"message_id":`+ixJS(id)+`,"emoji":`+ixJS(emoji)+`}`)
	}
	ok := func(name, body, want string) {
		t.Helper()
		id := h.ixAccepted(sendPath, staffToken, body)
		if typ, got := h.ixStored(id); typ != "reaction" || got != want {
			t.Errorf("%s: stored %s %s, want reaction %s", name, typ, got, want)
		}
	}
	bad := func(name, token, body string, status int, code, field string) {
		t.Helper()
		c, v, _ := h.do("POST", sendPath, token, body)
		ixRefused(t, name, c, v, status, code, field, 0, 0)
	}
	ok("to a sent message, by its wagate id", react(sent, "👍"), `{"message_id":"`+pid+`","emoji":"👍"}`)
	ok("to the guest's message, by its wamid", react("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", "🙏"),
		`{"message_id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","emoji":"🙏"}`)
	ok("removed", react(sent, ""), `{"message_id":"`+pid+`","emoji":""}`)
	ok("skin tone", react(sent, "👍🏽"), `{"message_id":"`+pid+`","emoji":"👍🏽"}`)
	ok("ZWJ sequence", react(sent, "👨‍👩‍👧‍👦"), `{"message_id":"`+pid+`","emoji":"👨‍👩‍👧‍👦"}`)
	ok("flag", react(sent, "🇩🇪"), `{"message_id":"`+pid+`","emoji":"🇩🇪"}`)
	queued := h.queued()

	bad("two emoji", staffToken, react(sent, "👍👍"), 400, "INVALID_REQUEST", "content.emoji")
	bad("a word", staffToken, react(sent, "ok"), 400, "INVALID_REQUEST", "content.emoji")
	bad("emoji and a space", staffToken, react(sent, "👍 "), 400, "INVALID_REQUEST", "content.emoji")
	bad("no emoji", staffToken, ixSend("reaction", `{"message_id":"`+sent+`"}`), 400, "INVALID_REQUEST", "content.emoji")
	bad("no message id", staffToken, ixSend("reaction", `{"emoji":"👍"}`), 400, "INVALID_REQUEST", "content.message_id")
	bad("a foreign id", staffToken, react("ABGGFlA5Fpa", "👍"), 400, "INVALID_REQUEST", "content.message_id")
	bad("a bare wamid prefix", staffToken, react("wamid.", "👍"), 400, "INVALID_REQUEST", "content.message_id")
	bad("no such message", staffToken, react("msg_01m7yb4j2d3c59g3vj0tbha_1", "👍"), 404, "MESSAGE_NOT_FOUND", "content.message_id")
	bad("a malformed message id", staffToken, react("msg_nope", "👍"), 404, "MESSAGE_NOT_FOUND", "content.message_id")
	// A reaction goes from the number the message was sent from.
	bad("from another number", staffToken, `{"guest_phone":"+1234567890","message_type":"reaction","from":"+15550001001","content":{"message_id":`+ixJS(sent)+`,"emoji":"👍"}}`,
		400, "INVALID_REQUEST", "from")

	// Another tenant's message is not found, whoever asks.
	_, v, _ := h.do("POST", sendPath, otherToken, seedSend("hi"))
	theirs := v["message_id"].(string)
	h.markSent(theirs, "wamid.HBgLMTIzNDU2Nzg5MBUCABEYEjRFMkQ5NzY4NURFRjlEOUY2Rhh=")
	bad("another tenant's message", staffToken, react(theirs, "👍"), 404, "MESSAGE_NOT_FOUND", "content.message_id")
	bad("this tenant's message to the other", otherToken, react(sent, "👍"), 404, "MESSAGE_NOT_FOUND", "content.message_id")

	// A message to another guest is not this chat's.
	h.openWindow("+14155550123")
	bad("a message to another guest", staffToken,
		`{"guest_phone":"+14155550123","message_type":"reaction","content":{"message_id":"`+sent+`","emoji":"👍"}}`, 400, "INVALID_REQUEST", "content.message_id")

	// A message not sent yet has no WhatsApp id to react to.
	_, v, _ = h.do("POST", sendPath, staffToken, seedSend("not sent yet"))
	pending := v["message_id"].(string)
	queued++
	c, v, _ := h.do("POST", sendPath, staffToken, react(pending, "👍"))
	ixRefused(t, "a queued message", c, v, 409, "MESSAGE_NOT_SENT", "content.message_id", 0, 0)
	if d := v["error"].(map[string]any)["details"].(map[string]any); d["status"] != "queued" || d["message_id"] != pending {
		t.Errorf("not sent: details %v", d)
	}

	if n := h.queued(); n != queued {
		t.Fatalf("%d queued, want %d: refused reactions must queue nothing", n, queued)
	}
}

// TestContentPreviews checks what the inbox shows of each type.
func TestContentPreviews(t *testing.T) {
	f := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: preview %q, want %q", name, got, want)
		}
	}
	_, p, e := buildLocationContent([]byte(`{"latitude":52.52,"longitude":13.405,"name":"Grand Plaza","address":"Unter den Linden 1"}`), nil)
	f("location with a name", p, "[location] Grand Plaza")
	if e != nil {
		t.Fatal(e.Message)
	}
	_, p, _ = buildLocationContent([]byte(`{"latitude":52.52,"longitude":13.405,"address":"Unter den Linden 1"}`), nil)
	f("location with an address", p, "[location] Unter den Linden 1")
	_, p, _ = buildLocationContent([]byte(`{"latitude":52.52,"longitude":-13.405}`), nil)
	f("bare location", p, "[location] 52.52, -13.405")
	_, p, _ = buildContactsContent([]byte(`{"contacts":[{"name":{"formatted_name":"Front desk"}}]}`), nil)
	f("one contact", p, "[contact] Front desk")
	_, p, _ = buildContactsContent([]byte(`{"contacts":[{"name":{"formatted_name":"Front desk"}},{"name":{"formatted_name":"Spa"}}]}`), nil)
	f("two contacts", p, "[contact] Front desk, Spa")

	h := newHarness(t)
	s := h.srv
	_, p, e = s.buildReaction(Principal{}, &outbound{GuestPhone: "+1234567890"}, []byte(`{"message_id":"wamid.ABC","emoji":"👍"}`), nil)
	if e != nil {
		t.Fatal(e.Message)
	}
	f("reaction", p, "[reaction] 👍")
	_, p, _ = s.buildReaction(Principal{}, &outbound{GuestPhone: "+1234567890"}, []byte(`{"message_id":"wamid.ABC","emoji":""}`), nil)
	f("reaction removed", p, "[reaction] removed")

	var m interactiveMsg
	if e := decodeInteractive("buttons", []byte(`{"text":"How would you like to extend your stay?","buttons":[{"id":"a","title":"A"}]}`), &m); e != nil {
		t.Fatal(e.Message)
	}
	f("interactive", m.body, "How would you like to extend your stay?")
}
