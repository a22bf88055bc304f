package metaspec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// decoded is the spec, decoded once for the package's tests.
var decoded = sync.OnceValues(Decode)

func spec(t *testing.T) *Spec {
	t.Helper()
	s, err := decoded()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validator returns a Validator of the spec with patches.
func validator(t *testing.T, patches ...Patch) *Validator {
	t.Helper()
	v, err := spec(t).Validator(patches...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// load returns the Validator with every patch.
func load(t *testing.T) *Validator {
	t.Helper()
	return validator(t, Patches()...)
}

// violation is a violation a test expects: its path, and the last token
// of its keyword location.
type violation struct{ path, keyword string }

// wantViolations fails t unless err is an *Error with every violation in
// want.
func wantViolations(t *testing.T, what string, body []byte, err error, want ...violation) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: got %v, want violations %v\n%s", what, err, want, body)
		return
	}
	for _, w := range want {
		if !e.Has(w.path, w.keyword) {
			t.Errorf("%s: no %s violation at %q among\n%v\nbody %s", what, w.keyword, w.path, e, body)
		}
	}
}

// wantMessage fails t unless err has a violation at path whose message
// holds text (the name of a missing property).
func wantMessage(t *testing.T, what string, err error, path, text string) {
	t.Helper()
	var e *Error
	if errors.As(err, &e) {
		for _, v := range e.Violations {
			if v.Path == path && strings.Contains(v.Message, text) {
				return
			}
		}
	}
	t.Errorf("%s: no violation at %q about %s in %v", what, path, text, err)
}

func TestMetaSpecIsMetasFile(t *testing.T) {
	sum := sha256.Sum256(specYAML)
	if got := hex.EncodeToString(sum[:]); got != SpecSHA256 {
		t.Fatalf("the vendored spec's SHA-256 is %s, want %s: correct the spec in patches.go, not in the file", got, SpecSHA256)
	}
	lic, err := os.ReadFile("testdata/meta-business-messaging-api.LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lic), "MIT License") || !strings.Contains(string(lic), "Copyright (c) Meta Platforms, Inc. and affiliates.") {
		t.Fatalf("the spec's license lost Meta's notice:\n%s", lic)
	}
}

// sendExamples returns the request examples of Meta's send endpoint, by
// name, as JSON.
func sendExamples(t *testing.T) map[string][]byte {
	t.Helper()
	ex, err := lookup(spec(t).doc, "#/paths/~1{Version}~1{Phone-Number-ID}~1messages/post/requestBody/content/application~1json/examples")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for name, e := range ex {
		b, err := json.Marshal(e.(map[string]any)["value"])
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// TestMetaSpecAcceptsMetasExamples: every request example Meta gives for
// the send endpoint passes the patched spec, but for those below, where
// Meta's examples and Meta's schema disagree on something wagate never
// does (it always sends type and recipient_type, and button indexes as
// strings) or on message types wagate does not send.
func TestMetaSpecAcceptsMetasExamples(t *testing.T) {
	v := load(t)
	noRecipientType := violation{"", "required"}
	disagree := map[string][]violation{
		"Send Contact Message":          {noRecipientType},
		"Send Reply to Contact Message": {noRecipientType},
		"Send Test Message":             {noRecipientType},
		"Send Flow Template Message":    {noRecipientType, {"/template/components/0/sub_type", "enum"}},
		"Send Sample Issue Resolution Template": {noRecipientType,
			{"/template/components/1/index", "type"}, {"/template/components/2/index", "type"}},
		"Send Catalog Template Message":          {{"/template/components/1/index", "type"}, {"/template/components/1/sub_type", "enum"}},
		"Send Text Message with Preview URL":     {{"/type", "discriminator"}},
		"Send Reply to List Message":             {{"/type", "discriminator"}},
		"Send typing indicator and read receipt": {{"/type", "discriminator"}},
		"Send Order Details Message":             {{"/interactive/type", "enum"}},
		"Send Order Status Message":              {{"/interactive/type", "enum"}},
		"Send Multi-Product Message":             {{"/interactive/header/type", "enum"}},
	}
	examples := sendExamples(t)
	if len(examples) < 40 {
		t.Fatalf("only %d examples in the spec", len(examples))
	}
	covered := map[string]bool{}
	for name, body := range examples {
		err := v.ValidateSendBody(body)
		if want, ok := disagree[name]; ok {
			wantViolations(t, name, body, err, want...)
			if slices.Contains(want, noRecipientType) {
				wantMessage(t, name, err, "", "recipient_type")
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, body)
			continue
		}
		var m struct {
			Type        string `json:"type"`
			Interactive struct {
				Type string `json:"type"`
			} `json:"interactive"`
		}
		json.Unmarshal(body, &m)
		covered[strings.TrimSuffix(m.Type+"/"+m.Interactive.Type, "/")] = true
	}
	for name := range disagree {
		if _, ok := examples[name]; !ok {
			t.Errorf("the spec has no example %q any more", name)
		}
	}
	// Each type wagate sends passes with at least one of Meta's examples
	// (contacts: with the recipient_type Meta's two examples leave out,
	// in TestMetaSpecAcceptsEachTypesBody).
	for _, typ := range []string{"text", "image", "document", "audio", "video", "sticker", "location", "reaction",
		"template", "interactive/button", "interactive/list"} {
		if !covered[typ] {
			t.Errorf("no example of Meta's for %s passed (passed: %v)", typ, keys(covered))
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A valid body of each type wagate sends, in the shape of Meta's examples.
const (
	textBody     = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"Hello World!","preview_url":false}}`
	buttonsBody  = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"interactive","interactive":{"type":"button","body":{"text":"Pick one"},"action":{"buttons":[%s]}}}`
	listBody     = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"interactive","interactive":{"type":"list","body":{"text":"Pick one"},"action":{"button":"Options","sections":[{"title":"All","rows":[%s]}]}}}`
	ctaURLBody   = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"interactive","interactive":{"type":"cta_url","header":{"type":"image","image":{"link":"https://www.luckyshrub.com/assets/lucky-shrub-banner-logo-v1.png"}},"body":{"text":"Tap the button below to see available dates."},"action":{"name":"cta_url","parameters":{"display_text":"See Dates","url":"https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"}},"footer":{"text":"Dates subject to change."}}}`
	contactsBody = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"contacts","contacts":[{"name":{"formatted_name":"John Smith","first_name":"John"},"phones":[{"phone":"+1 (650) 555-1234","type":"%s","wa_id":"16505551234"}]}]}`
)

// replies returns n reply buttons; rows n list rows.
func replies(n int) string {
	var b []string
	for i := range n {
		id := string(rune('a' + i))
		b = append(b, `{"type":"reply","reply":{"id":"`+id+`","title":"Option `+id+`"}}`)
	}
	return strings.Join(b, ",")
}

func rows(n int) string {
	var b []string
	for i := range n {
		id := string(rune('a' + i))
		b = append(b, `{"id":"`+id+`","title":"Row `+id+`","description":"The row called `+id+`"}`)
	}
	return strings.Join(b, ",")
}

func sprintf(format, arg string) []byte { return []byte(strings.Replace(format, "%s", arg, 1)) }

func TestMetaSpecAcceptsEachTypesBody(t *testing.T) {
	v := load(t)
	metasContact := strings.Replace(string(sendExamples(t)["Send Contact Message"]), `"messaging_product":"whatsapp",`,
		`"messaging_product":"whatsapp","recipient_type":"individual",`, 1)
	for name, body := range map[string][]byte{
		"Meta's contacts example with recipient_type": []byte(metasContact),
		"text":                       []byte(textBody),
		"text at 4096 characters":    []byte(strings.Replace(textBody, "Hello World!", strings.Repeat("é", 4096), 1)),
		"3 reply buttons":            sprintf(buttonsBody, replies(3)),
		"list with 10 rows":          sprintf(listBody, rows(10)),
		"cta_url":                    []byte(ctaURLBody),
		"contacts with a work phone": sprintf(contactsBody, "WORK"),
		"contacts with a cell phone": sprintf(contactsBody, "CELL"),
	} {
		if err := v.ValidateSendBody(body); err != nil {
			t.Errorf("%s: %v\n%s", name, err, body)
		}
	}
}

func TestMetaSpecRejectsDefects(t *testing.T) {
	v := load(t)
	f := func(name string, body []byte, want ...violation) {
		t.Helper()
		wantViolations(t, name, body, v.ValidateSendBody(body), want...)
	}
	noTo := []byte(strings.Replace(textBody, `"to":"16505551234",`, "", 1))
	f("missing to", noTo, violation{"", "required"})
	wantMessage(t, "missing to", v.ValidateSendBody(noTo), "", "'to'")
	f("unknown type", []byte(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"fax","fax":{"body":"Hi"}}`),
		violation{"/type", "discriminator"})
	f("no type", []byte(strings.Replace(textBody, `"type":"text",`, "", 1)), violation{"/type", "discriminator"})
	f("text over 4096", []byte(strings.Replace(textBody, "Hello World!", strings.Repeat("a", 4097), 1)), violation{"/text/body", "maxLength"})
	f("text without a body", []byte(strings.Replace(textBody, `"body":"Hello World!",`, "", 1)), violation{"/text", "required"})
	f("4 reply buttons", sprintf(buttonsBody, replies(4)), violation{"/interactive/action/buttons", "maxItems"})
	f("no reply button", sprintf(buttonsBody, ""), violation{"/interactive/action/buttons", "minItems"})
	f("button title of 21", sprintf(buttonsBody, `{"type":"reply","reply":{"id":"a","title":"`+strings.Repeat("x", 21)+`"}}`),
		violation{"/interactive/action/buttons/0/reply/title", "maxLength"})
	f("list with 11 rows", sprintf(listBody, rows(11)), violation{"/interactive/action/sections/0/rows", "maxItems"})
	f("row title of 25", sprintf(listBody, `{"id":"a","title":"`+strings.Repeat("x", 25)+`"}`),
		violation{"/interactive/action/sections/0/rows/0/title", "maxLength"})
	f("cta_url display_text of 21", []byte(strings.Replace(ctaURLBody, "See Dates", strings.Repeat("x", 21), 1)),
		violation{"/interactive/action/parameters/display_text", "maxLength"})
	f("unknown top-level field", []byte(strings.Replace(textBody, `"type":"text",`, `"type":"text","priority":"high",`, 1)),
		violation{"", "additionalProperties"})
	f("unknown text field", []byte(strings.Replace(textBody, `"preview_url":false`, `"preview_url":false,"bold":true`, 1)),
		violation{"/text", "additionalProperties"})
	f("6 contacts", []byte(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"contacts","contacts":[{},{},{},{},{},{}]}`),
		violation{"/contacts", "maxItems"})
	f("phone type FAX", sprintf(contactsBody, "FAX"), violation{"/contacts/0/phones/0/type", "enum"})
	var e *Error
	if err := v.ValidateSendBody([]byte(`{"type":`)); !errors.As(err, &e) || !strings.Contains(e.Violations[0].Message, "not one JSON value") {
		t.Errorf("not JSON: %v", err)
	}
}

// TestMetaSpecPatchFixesItsDefect: for each patch, a body the spec
// without that patch gets wrong (refuses a valid one, or takes an
// invalid one) and the patched spec gets right.
func TestMetaSpecPatchFixesItsDefect(t *testing.T) {
	v := load(t)
	templateExample := sendExamples(t)["Send Message Template Interactive"]
	locationExample := sendExamples(t)["Send Location Message"]
	tooLong := []byte(strings.Replace(textBody, "Hello World!", strings.Repeat("a", 4097), 1))
	// patchInboundRefs has its own test, TestMetaSpecInboundMessages.
	tested := map[string]bool{"patchInboundRefs": true}
	for _, c := range []struct {
		patch string
		body  []byte
		// without is what the spec without the patch says; with is nil
		// for a valid body, the violation for an invalid one.
		without violation
		with    *violation
	}{
		{"patchAllOfClosedMembers", []byte(textBody), violation{"", "additionalProperties"}, nil},
		{"patchLanguagePolicy", templateExample, violation{"/template/language", "required"}, nil},
		{"patchButtonIndex", templateExample, violation{"/template/components/2/index", "pattern"}, nil},
		{"patchCTAURL", []byte(ctaURLBody), violation{"/interactive/type", "enum"}, nil},
		{"patchLocationCoordinates", locationExample, violation{"/location/latitude", "type"}, nil},
		{"patchPhoneTypes", sprintf(contactsBody, "CELL"), violation{"/contacts/0/phones/0/type", "enum"}, nil},
		{"patchTextBody", tooLong, violation{}, &violation{"/text/body", "maxLength"}},
		{"patchTextBody", []byte(strings.Replace(textBody, `"body":"Hello World!",`, "", 1)), violation{}, &violation{"/text", "required"}},
	} {
		tested[c.patch] = true
		t.Run(c.patch, func(t *testing.T) {
			without := validator(t, PatchesExcept(c.patch)...)
			errWithout, errWith := without.ValidateSendBody(c.body), v.ValidateSendBody(c.body)
			if c.with == nil {
				wantViolations(t, "without "+c.patch, c.body, errWithout, c.without)
				if errWith != nil {
					t.Errorf("with %s: %v\n%s", c.patch, errWith, c.body)
				}
				return
			}
			if errWithout != nil {
				t.Errorf("without %s the spec already refuses it: %v", c.patch, errWithout)
			}
			wantViolations(t, "with "+c.patch, c.body, errWith, *c.with)
		})
	}
	for _, p := range Patches() {
		if !tested[p.Name] {
			t.Errorf("%s has no case here", p.Name)
		}
	}
}

// TestMetaSpecInboundMessages: patchInboundRefs makes every example the
// spec gives of a webhook's message pass, which the unpatched spec refuses
// because IncomingMessage points at the send schemas.
func TestMetaSpecInboundMessages(t *testing.T) {
	v := load(t)
	without := validator(t, PatchesExcept("patchInboundRefs")...)
	doc := spec(t).doc
	for _, name := range []string{"TextMessage_2", "ReactionMessage_1", "ImageMessage_1", "LocationMessage_1", "ContactSharingMessage",
		"UnsupportedMessage", "ButtonMessage", "InteractiveMessageReply", "OrderMessage"} {
		member, err := lookup(doc, "#/components/schemas/"+name+"/allOf/1")
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(member["example"])
		if err != nil || member["example"] == nil {
			t.Fatalf("%s has no example", name)
		}
		if err := v.ValidateInboundMessage(body); err != nil {
			t.Errorf("%s's own example: %v\n%s", name, err, body)
		}
		wantMessage(t, name+" without patchInboundRefs", without.ValidateInboundMessage(body), "", "messaging_product")
		if err := v.ValidateSendBody(body); err == nil {
			t.Errorf("%s's example, an inbound message, passed as a send body", name)
		}
	}
	if err := v.ValidateInboundMessage([]byte(textBody)); err == nil {
		t.Error("a send body passed as an inbound message")
	}
}

// TestMetaSpecPatchesCheckTheirDefect: a patch applied to a spec without
// its defect (here: the spec it already patched) fails, so that a spec
// Meta has corrected is not patched blindly.
func TestMetaSpecPatchesCheckTheirDefect(t *testing.T) {
	doc := clone(spec(t).doc).(map[string]any)
	for _, p := range Patches() {
		if err := p.apply(doc); err != nil {
			t.Fatalf("%s on Meta's spec: %v", p.Name, err)
		}
	}
	for _, p := range Patches() {
		if err := p.apply(doc); err == nil {
			t.Errorf("%s applied twice did not notice its defect is gone", p.Name)
		}
	}
}
