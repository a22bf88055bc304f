package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

const (
	templatesPath    = "/api/v1/whatsapp/templates"
	templateSendPath = "/api/v1/whatsapp/templates/send"
)

// hotelTemplates are grand-plaza's templates in these tests.
var hotelTemplates = []string{
	`{"name":"welcome_checkin","language":"en","category":"UTILITY","group":"guest_journey","status":"APPROVED","components":[
		{"type":"BODY","text":"Hello {{guest_name}}, welcome to {{hotel_name}}! Your room {{room_number}} is ready for check-in at {{checkin_time}}. We look forward to your stay until {{checkout_date}}.",
		 "example":{"body_text_named_params":[{"param_name":"guest_name","example":"John Smith"},{"param_name":"hotel_name","example":"Grand Plaza Hotel"},
		  {"param_name":"room_number","example":"205"},{"param_name":"checkin_time","example":"3:00 PM"},{"param_name":"checkout_date","example":"January 18, 2024"}]}},
		{"type":"FOOTER","text":"Grand Plaza Hotel"}]}`,
	`{"name":"welcome_checkin","language":"es","category":"UTILITY","group":"guest_journey","status":"PENDING","components":[
		{"type":"BODY","text":"Hola {{guest_name}}, bienvenido a {{hotel_name}}. Su habitación {{room_number}} estará lista a las {{checkin_time}} hasta el {{checkout_date}} de su estancia."}]}`,
	`{"name":"service_confirmation","language":"en","category":"UTILITY","group":"guest_services","status":"APPROVED","components":[
		{"type":"BODY","text":"Your {{service_type}} is confirmed for {{appointment_time}} at {{location}}. It will take about {{estimated_duration}}. Reply here if you need to change it."}]}`,
	`{"name":"promotional_offer","language":"en","category":"MARKETING","group":"marketing","status":"REJECTED","rejected_reason":"PROMOTIONAL","components":[
		{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Dear {{1}}, enjoy {{2}} off your next stay with us this season."},
		{"type":"BUTTONS","buttons":[{"type":"URL","text":"Book now","url":"https://grandplaza.example/offers/{{1}}"}]}]}`,
	`{"name":"room_ready","language":"en","category":"UTILITY","group":"guest_journey","status":"APPROVED","components":[
		{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Good news {{1}}, room {{2}} is ready for you now."},
		{"type":"BUTTONS","buttons":[{"type":"URL","text":"Digital key","url":"https://grandplaza.example/key/{{1}}"},{"type":"QUICK_REPLY","text":"Need help"}]}]}`,
}

func (h *harness) putTemplates(tenant string, defs ...string) {
	h.t.Helper()
	var ts []message.Template
	for _, d := range defs {
		var t message.Template
		must(h.t, json.Unmarshal([]byte(d), &t))
		ts = append(ts, t)
	}
	must(h.t, h.store.PutTemplates(context.Background(), tenant, ts))
}

// seedWelcome and seedService are seed 001's two template sends, as written.
const (
	seedWelcome = `{"guest_phone":"+1234567890","template_name":"welcome_checkin","language":"en",
		"parameters":{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel","room_number":"205","checkin_time":"3:00 PM","checkout_date":"January 18, 2024"},
		"conversation_metadata":{"booking_reference":"RB123456","guest_tier":"gold_member"}}`
	seedService = `{"guest_phone":"+1234567890","template_name":"service_confirmation","language":"en",
		"parameters":{"service_type":"Spa Massage","appointment_time":"Tomorrow at 2:00 PM","location":"Wellness Center - Room 3","estimated_duration":"90 minutes"}}`
)

func TestSeedTemplateSendsAreQueued(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	f := func(name, body, wantContent, wantTemplate string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", templateSendPath, staffToken, body)
			if code != 202 || v["status"] != "queued" || v["message_id"] == nil {
				t.Fatalf("%d %v", code, v)
			}
			st, err := h.store.State(context.Background(), v["message_id"].(string))
			must(t, err)
			if st.Type != message.TypeTemplate || st.Recipient != "+1234567890" || st.TenantID != "grand-plaza" || st.Status != message.StatusQueued {
				t.Fatalf("state %+v", st)
			}
			if string(st.Content) != wantContent {
				t.Fatalf("content\n got %s\nwant %s", st.Content, wantContent)
			}
		})
	}
	f("welcome_checkin", seedWelcome, `{"name":"welcome_checkin","language":{"code":"en"},"components":[{"type":"body","parameters":[`+
		`{"type":"text","parameter_name":"guest_name","text":"John Smith"},{"type":"text","parameter_name":"hotel_name","text":"Grand Plaza Hotel"},`+
		`{"type":"text","parameter_name":"room_number","text":"205"},{"type":"text","parameter_name":"checkin_time","text":"3:00 PM"},`+
		`{"type":"text","parameter_name":"checkout_date","text":"January 18, 2024"}]}]}`, "welcome_checkin")
	f("service_confirmation", seedService, `{"name":"service_confirmation","language":{"code":"en"},"components":[{"type":"body","parameters":[`+
		`{"type":"text","parameter_name":"service_type","text":"Spa Massage"},{"type":"text","parameter_name":"appointment_time","text":"Tomorrow at 2:00 PM"},`+
		`{"type":"text","parameter_name":"location","text":"Wellness Center - Room 3"},{"type":"text","parameter_name":"estimated_duration","text":"90 minutes"}]}]}`, "service_confirmation")
	f("positional, with a media header and buttons",
		`{"guest_phone":"+1234567890","template_name":"room_ready","language":"en","parameters":{"1":"Ana","2":412,"header_media_url":"https://grandplaza.example/r.jpg","button_0":"K-412","button_1":"HELP"}}`,
		`{"name":"room_ready","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"image","image":{"link":"https://grandplaza.example/r.jpg"}}]},`+
			`{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"412"}]},`+
			`{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"K-412"}]},`+
			`{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"HELP"}]}]}`, "room_ready")

	// The language may be left out when the template has only one.
	code, v, _ := h.do("POST", templateSendPath, staffToken, strings.Replace(seedService, `"language":"en",`, "", 1))
	if code != 202 {
		t.Fatalf("without language: %d %v", code, v)
	}
	// Templates go any time: no open window is needed, and the delivery
	// options every send takes apply.
	scheduled := `{"guest_phone":"+14155550199","template_name":"service_confirmation","language":"en","conversation_id":"conv_abc123","staff_member_id":"staff_456",
		"parameters":{"service_type":"Spa Massage","appointment_time":"Tomorrow at 2:00 PM","location":"Wellness Center - Room 3","estimated_duration":"90 minutes"},
		"send_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	code, v, _ = h.do("POST", templateSendPath, staffToken, scheduled)
	if code != 202 || v["status"] != "scheduled" {
		t.Fatalf("scheduled template: %d %v", code, v)
	}
}

func TestTemplateSendRefusesWhatCannotGoAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	f := func(name, body string, wantStatus int, wantCode, wantInMessage string, check func(details map[string]any) bool) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", templateSendPath, staffToken, body)
			if code != wantStatus || errCode(t, v) != wantCode {
				t.Fatalf("%d %v, want %d %s", code, v, wantStatus, wantCode)
			}
			e := v["error"].(map[string]any)
			if !strings.Contains(e["message"].(string), wantInMessage) {
				t.Fatalf("message %q does not say %q", e["message"], wantInMessage)
			}
			if check != nil && !check(e["details"].(map[string]any)) {
				t.Fatalf("details %v", e["details"])
			}
		})
	}
	with := func(old, new string) string { return strings.Replace(seedWelcome, old, new, 1) }
	f("unknown template", with(`"welcome_checkin"`, `"welcome_back"`), 404, "TEMPLATE_NOT_FOUND", `No template named "welcome_back"`,
		func(d map[string]any) bool { return d["template_name"] == "welcome_back" })
	f("missing language", with(`"language":"en"`, `"language":"de"`), 404, "TEMPLATE_NOT_FOUND", `has no "de" translation`,
		func(d map[string]any) bool {
			return fmt.Sprint(d["languages"]) == "[map[language:en status:APPROVED] map[language:es status:PENDING]]"
		})
	f("not approved yet", with(`"language":"en"`, `"language":"es"`), 404, "TEMPLATE_NOT_FOUND", "is not approved: its status is PENDING",
		func(d map[string]any) bool { return d["status"] == "PENDING" && d["language"] == "es" })
	f("rejected", `{"guest_phone":"+1234567890","template_name":"promotional_offer","language":"en","parameters":["Ana","20%"]}`, 404, "TEMPLATE_NOT_FOUND",
		"its status is REJECTED", func(d map[string]any) bool { return d["rejected_reason"] == "PROMOTIONAL" })
	f("several languages, none named", with(`"language":"en",`, ``), 400, "INVALID_REQUEST", "language is required", nil)
	f("a parameter missing", with(`"room_number":"205",`, ``), 400, "INVALID_REQUEST", "parameters.room_number is missing",
		func(d map[string]any) bool {
			return d["field"] == "parameters.room_number" &&
				fmt.Sprint(d["parameters"]) == "[guest_name hotel_name room_number checkin_time checkout_date]"
		})
	f("an extra parameter", with(`"room_number":"205"`, `"room_number":"205","floor":"2"`), 400, "INVALID_REQUEST", "parameters.floor is not a parameter of template welcome_checkin", nil)
	f("an empty parameter", with(`"John Smith"`, `"  "`), 400, "INVALID_REQUEST", "parameters.guest_name is empty", nil)
	f("a line break", with(`"John Smith"`, `"John\nSmith"`), 400, "INVALID_REQUEST", "parameters.guest_name may not hold line breaks", nil)
	f("every problem listed", with(`"room_number":"205",`, `"room_number":"","x":"1",`), 400, "INVALID_REQUEST", "parameters.room_number is empty",
		func(d map[string]any) bool { return len(d["errors"].([]any)) == 2 })
	f("a parameter not a string", with(`"205"`, `{"n":205}`), 400, "INVALID_REQUEST", "parameters.room_number must be a string", nil)
	f("parameters a string", with(`"parameters":{`, `"parameters":"x","p":{`), 400, "INVALID_REQUEST", "Unknown field p", nil)
	f("no template name", with(`"template_name":"welcome_checkin",`, ``), 400, "INVALID_REQUEST", "template_name is required", nil)
	f("bad phone", with(`"+1234567890"`, `"1234567890"`), 400, "INVALID_PHONE_NUMBER", "E.164", nil)
	f("no phone", with(`"guest_phone":"+1234567890",`, ``), 400, "INVALID_PHONE_NUMBER", "guest_phone is required", nil)
	f("metadata not strings", with(`"gold_member"`, `["gold"]`), 400, "INVALID_REQUEST", "conversation_metadata.guest_tier must be a string", nil)
	f("unknown field", with(`"language"`, `"langauge"`), 400, "INVALID_REQUEST", "Unknown field langauge", nil)
	f("another tenant's number", with(`"language":"en",`, `"language":"en","from":"+15550002000",`), 400, "INVALID_REQUEST", "from is not one of this tenant's numbers", nil)
	f("media header missing", `{"guest_phone":"+1234567890","template_name":"room_ready","language":"en","parameters":{"1":"Ana","2":"412","button_0":"K"}}`,
		400, "INVALID_REQUEST", "parameters.header_media_url is missing", nil)
	if n := h.queued(); n != 0 {
		t.Fatalf("%d messages queued by refused sends", n)
	}
}

func TestTemplatesAreTheTenantsOwn(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	code, v, _ := h.do("GET", templatesPath, otherToken, "")
	if code != 200 || v["total"] != float64(0) || len(v["templates"].([]any)) != 0 {
		t.Fatalf("another tenant lists %d %v", code, v)
	}
	if code, v, _ := h.do("GET", templatesPath+"/welcome_checkin", otherToken, ""); code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("another tenant reads it: %d %v", code, v)
	}
	body := strings.Replace(seedService, `"+1234567890"`, `"+1234567890","from":"+15550002000"`, 1)
	if code, v, _ := h.do("POST", templateSendPath, otherToken, body); code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("another tenant sends it: %d %v", code, v)
	}
	// Its own template of the same name is its own.
	h.putTemplates("seaside", strings.Replace(hotelTemplates[2], `"group":"guest_services"`, `"group":"spa"`, 1))
	if code, v, _ := h.do("POST", templateSendPath, otherToken, seedService); code != 202 {
		t.Fatalf("seaside's own template: %d %v", code, v)
	}
	code, v, _ = h.do("GET", templatesPath, otherToken, "")
	if code != 200 || v["total"] != float64(1) || v["templates"].([]any)[0].(map[string]any)["group"] != "spa" {
		t.Fatalf("seaside lists %v", v)
	}
	if n := h.queued(); n != 1 {
		t.Fatalf("%d queued", n)
	}
}

func listed(t *testing.T, v map[string]any) []string {
	t.Helper()
	var out []string
	for _, x := range v["templates"].([]any) {
		m := x.(map[string]any)
		out = append(out, m["name"].(string)+"/"+m["language"].(string))
	}
	return out
}

func TestTemplateListFilters(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	f := func(query string, want ...string) {
		t.Helper()
		code, v, _ := h.do("GET", templatesPath+query, staffToken, "")
		if code != 200 || fmt.Sprint(listed(t, v)) != fmt.Sprint(want) || v["total"] != float64(len(want)) {
			t.Fatalf("%s: %d %v, want %v", query, code, v, want)
		}
	}
	f("", "promotional_offer/en", "room_ready/en", "service_confirmation/en", "welcome_checkin/en", "welcome_checkin/es")
	f("?language=en&category=guest_services", "service_confirmation/en") // seed 001's call
	f("?category=utility&language=es", "welcome_checkin/es")
	f("?category=MARKETING", "promotional_offer/en")
	f("?category=guest_journey&status=APPROVED", "room_ready/en", "welcome_checkin/en")
	f("?status=rejected", "promotional_offer/en")
	f("?category=spa")
	code, v, _ := h.do("GET", templatesPath+"?status=LIVE", staffToken, "")
	if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
		t.Fatalf("bad status: %d %v", code, v)
	}
}

func TestTemplateDetailsAsTheSeedReadsThem(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	code, v, _ := h.do("GET", templatesPath+"/welcome_checkin", staffToken, "")
	if code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	for _, k := range []string{"name", "category", "language", "status", "components", "parameters", "example"} {
		if v[k] == nil {
			t.Fatalf("details lack %s: %v", k, v)
		}
	}
	if v["name"] != "welcome_checkin" || v["language"] != "en" || v["status"] != "APPROVED" || v["category"] != "UTILITY" || v["group"] != "guest_journey" {
		t.Fatalf("%v", v)
	}
	var names []string
	for _, p := range v["parameters"].([]any) {
		m := p.(map[string]any)
		names = append(names, m["name"].(string)+"@"+m["component"].(string))
	}
	if fmt.Sprint(names) != "[guest_name@BODY hotel_name@BODY room_number@BODY checkin_time@BODY checkout_date@BODY]" {
		t.Fatalf("parameters %v", names)
	}
	ex := v["example"].(map[string]any)
	if ex["text"] != "Hello John Smith, welcome to Grand Plaza Hotel! Your room 205 is ready for check-in at 3:00 PM. We look forward to your stay until January 18, 2024." {
		t.Fatalf("example %v", ex)
	}
	if fmt.Sprint(v["languages"]) != "[map[language:en status:APPROVED] map[language:es status:PENDING]]" {
		t.Fatalf("languages %v", v["languages"])
	}
	_, v, _ = h.do("GET", templatesPath+"/welcome_checkin?language=es", staffToken, "")
	if v["language"] != "es" || v["status"] != "PENDING" {
		t.Fatalf("es: %v", v)
	}
	code, v, _ = h.do("GET", templatesPath+"/welcome_checkin?language=fr", staffToken, "")
	if code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("fr: %d %v", code, v)
	}
	code, v, _ = h.do("GET", templatesPath+"/no_such_thing", staffToken, "")
	if code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("unknown: %d %v", code, v)
	}
}

// seedLateCheckout is seed 001's template submission, as written.
const seedLateCheckout = `{"name":"late_checkout_confirmation","category":"UTILITY","language":"en","components":[
	{"type":"HEADER","format":"TEXT","text":"Late Checkout Confirmed"},
	{"type":"BODY","text":"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},
	{"type":"FOOTER","text":"Thank you for staying with us!"}]}`

func TestTemplateSubmissionAsTheSeedMakesIt(t *testing.T) {
	h := newHarness(t)
	code, v, hdr := h.do("POST", templatesPath, adminToken, seedLateCheckout)
	if code != 201 || v["status"] != "PENDING" || v["name"] != "late_checkout_confirmation" || v["parameter_format"] != "POSITIONAL" ||
		hdr.Get("Location") != templatesPath+"/late_checkout_confirmation?language=en" {
		t.Fatalf("%d %v %v", code, v, hdr)
	}
	var keys []string
	for _, p := range v["parameters"].([]any) {
		keys = append(keys, p.(map[string]any)["name"].(string))
	}
	if fmt.Sprint(keys) != "[1 2 3 4]" {
		t.Fatalf("parameters %v", keys)
	}
	// Stored, and queued for submission to Meta.
	due, err := h.store.DueTemplateSubmissions(context.Background(), "grand-plaza", time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || due[0].Name != "late_checkout_confirmation" {
		t.Fatalf("queue %v %v", due, err)
	}
	if code, v, _ := h.do("GET", templatesPath+"/late_checkout_confirmation", staffToken, ""); code != 200 || v["status"] != "PENDING" {
		t.Fatalf("details %d %v", code, v)
	}
	// Not sendable while Meta reviews it.
	code, v, _ = h.do("POST", templateSendPath, staffToken, `{"guest_phone":"+1234567890","template_name":"late_checkout_confirmation","language":"en","parameters":["Ana","1 PM","412","$20"]}`)
	if code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("pending send: %d %v", code, v)
	}
	code, v, _ = h.do("POST", templatesPath, adminToken, seedLateCheckout)
	if code != 409 || errCode(t, v) != "TEMPLATE_EXISTS" || v["error"].(map[string]any)["details"].(map[string]any)["status"] != "PENDING" {
		t.Fatalf("again: %d %v", code, v)
	}
	// A name and language taken is 409 whatever the body; a missing field
	// is a bad request, not a template Meta would reject.
	if code, v, _ := h.do("POST", templatesPath, adminToken, strings.Replace(seedLateCheckout, "Hi {{1}}", "{{1}}", 1)); code != 409 || errCode(t, v) != "TEMPLATE_EXISTS" {
		t.Fatalf("again with a body Meta would reject: %d %v", code, v)
	}
	for _, field := range []string{"name", "language", "category"} {
		body := strings.Replace(seedLateCheckout, `"`+field+`"`, `"x_`+field+`"`, 1)
		body = strings.Replace(body, `"x_`+field+`"`, `"group"`, 1) // keep the body's JSON valid and known
		if code, v, _ := h.do("POST", templatesPath, adminToken, body); code != 400 || errCode(t, v) != "INVALID_REQUEST" || errDetails(v)["field"] != field {
			t.Fatalf("without %s: %d %v", field, code, v)
		}
	}
	if code, v, _ := h.do("POST", templatesPath, staffToken, strings.Replace(seedLateCheckout, "late_checkout_confirmation", "other_name", 1)); code != 403 || errCode(t, v) != "FORBIDDEN" {
		t.Fatalf("staff: %d %v", code, v)
	}
	if due, _ := h.store.DueTemplateSubmissions(context.Background(), "grand-plaza", time.Now().Add(time.Second), 10); len(due) != 1 {
		t.Fatalf("refused submissions were queued: %v", due)
	}
}

func TestTemplateSubmissionGivesEveryReasonMetaWouldReject(t *testing.T) {
	h := newHarness(t)
	f := func(name, body string, want ...string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", templatesPath, adminToken, body)
			if code != 422 || errCode(t, v) != "TEMPLATE_REJECTED" {
				t.Fatalf("%d %v", code, v)
			}
			var got []string
			for _, r := range v["error"].(map[string]any)["details"].(map[string]any)["reasons"].([]any) {
				m := r.(map[string]any)
				if m["message"] == "" {
					t.Fatalf("reason without message: %v", m)
				}
				got = append(got, m["component"].(string)+" "+m["field"].(string)+" "+m["rule"].(string))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
	f("variable at start and end", strings.Replace(seedLateCheckout, `"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."`,
		`"{{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}"`, 1),
		"BODY text variable_at_start", "BODY text variable_at_end")
	f("bad name, long footer", strings.Replace(strings.Replace(seedLateCheckout, "late_checkout_confirmation", "Late Checkout", 1),
		"Thank you for staying with us!", strings.Repeat("Thank you! ", 6), 1),
		"TEMPLATE name name_invalid", "FOOTER text footer_too_long")
	f("mixed and adjacent", strings.Replace(seedLateCheckout, "until {{2}} has", "until {{2}} {{guest}} has", 1),
		"BODY text adjacent_variables", "TEMPLATE parameter_format mixed_variables")
	f("no body", `{"name":"x","category":"UTILITY","language":"en","components":[{"type":"FOOTER","text":"Bye"}]}`, "BODY text body_required")
	f("bad language and category", strings.Replace(strings.Replace(seedLateCheckout, `"language":"en"`, `"language":"english"`, 1), `"UTILITY"`, `"TRANSACTIONAL"`, 1),
		"TEMPLATE language language_invalid", "TEMPLATE category category_invalid")
	code, v, _ := h.do("POST", templatesPath, adminToken, strings.Replace(seedLateCheckout, `"format":"TEXT"`, `"format":"TEXT","add_security_recommendation":true`, 1))
	if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
		t.Fatalf("unknown field: %d %v", code, v)
	}
	if code, v, _ := h.do("GET", templatesPath, adminToken, ""); code != 200 || v["total"] != float64(0) {
		t.Fatalf("refused templates stored: %v", v)
	}
}

// TestTemplateStatusesShowAndDecideSends: the review outcomes the inbound
// role records (package inbound applies Meta's webhooks) show in the
// templates and decide their sends.
func TestTemplateStatusesShowAndDecideSends(t *testing.T) {
	h := newHarness(t)
	if code, v, _ := h.do("POST", templatesPath, adminToken, seedLateCheckout); code != 201 {
		t.Fatalf("%d %v", code, v)
	}
	second := strings.Replace(seedLateCheckout, "late_checkout_confirmation", "late_checkout_reminder", 1)
	if code, v, _ := h.do("POST", templatesPath, adminToken, second); code != 201 {
		t.Fatalf("%d %v", code, v)
	}
	now := time.Now().UnixMilli()
	for _, u := range []redis.TemplateUpdate{
		{Name: "late_checkout_confirmation", Language: "en", ProviderID: "1689556908129832", Status: message.TemplateApproved, Reason: "NONE", AtMS: now},
		{Name: "late_checkout_reminder", Language: "en", ProviderID: "1689556908129833", Status: message.TemplateRejected, Reason: "INCORRECT_CATEGORY", AtMS: now},
	} {
		if _, err := h.store.SetTemplateStatus(context.Background(), "grand-plaza", u); err != nil {
			t.Fatal(err)
		}
	}
	_, v, _ := h.do("GET", templatesPath+"/late_checkout_confirmation", staffToken, "")
	if v["status"] != "APPROVED" || v["provider_template_id"] != "1689556908129832" {
		t.Fatalf("%v", v)
	}
	_, v, _ = h.do("GET", templatesPath+"/late_checkout_reminder", staffToken, "")
	if v["status"] != "REJECTED" || v["rejected_reason"] != "INCORRECT_CATEGORY" {
		t.Fatalf("%v", v)
	}
	send := `{"guest_phone":"+1234567890","template_name":"late_checkout_confirmation","language":"en","parameters":["Ana","1:00 PM","412","$20"]}`
	code, v, _ := h.do("POST", templateSendPath, staffToken, send)
	if code != 202 {
		t.Fatalf("approved template: %d %v", code, v)
	}
	code, v, _ = h.do("POST", templateSendPath, staffToken, strings.Replace(send, "late_checkout_confirmation", "late_checkout_reminder", 1))
	if code != 404 || v["error"].(map[string]any)["details"].(map[string]any)["status"] != "REJECTED" {
		t.Fatalf("rejected template: %d %v", code, v)
	}
}

func TestBatchOfTemplateMessages(t *testing.T) {
	h := newHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	body := `{"template_name":"service_confirmation","language":"en","messages":[
		{"phone":"+1234567890","parameters":{"service_type":"Spa Massage","appointment_time":"2 PM","location":"Wellness Center","estimated_duration":"90 minutes"}},
		{"phone":"+1234567891","template_name":"welcome_checkin","language":"en","parameters":{"guest_name":"Ana","hotel_name":"Grand Plaza","room_number":"12","checkin_time":"3 PM","checkout_date":"May 2"}},
		{"phone":"+1234567892","content":"A plain text among them"}]}`
	code, v, _ := h.do("POST", batchPath, staffToken, body)
	if code != 202 || v["accepted"] != float64(3) {
		t.Fatalf("%d %v", code, v)
	}
	id := v["batch_id"].(string)
	want := []string{
		`{"name":"service_confirmation","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","parameter_name":"service_type","text":"Spa Massage"},` +
			`{"type":"text","parameter_name":"appointment_time","text":"2 PM"},{"type":"text","parameter_name":"location","text":"Wellness Center"},{"type":"text","parameter_name":"estimated_duration","text":"90 minutes"}]}]}`,
		`{"name":"welcome_checkin","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","parameter_name":"guest_name","text":"Ana"},` +
			`{"type":"text","parameter_name":"hotel_name","text":"Grand Plaza"},{"type":"text","parameter_name":"room_number","text":"12"},{"type":"text","parameter_name":"checkin_time","text":"3 PM"},{"type":"text","parameter_name":"checkout_date","text":"May 2"}]}]}`,
		`{"body":"A plain text among them"}`,
	}
	types := []message.Type{message.TypeTemplate, message.TypeTemplate, message.TypeText}
	for i, w := range want {
		st, err := h.store.State(context.Background(), message.BatchMessageID(id, i))
		must(t, err)
		if st.Type != types[i] || string(st.Content) != w {
			t.Fatalf("message %d: %s %s\nwant %s", i, st.Type, st.Content, w)
		}
	}

	f := func(name, body string, wantStatus int, wantCode string, wantIndex int, wantInMessage string) {
		t.Run(name, func(t *testing.T) {
			before := h.queued()
			code, v, _ := h.do("POST", batchPath, staffToken, body)
			if code != wantStatus || errCode(t, v) != wantCode {
				t.Fatalf("%d %v", code, v)
			}
			errs := v["error"].(map[string]any)["details"].(map[string]any)["errors"].([]any)
			first := errs[0].(map[string]any)
			if first["index"] != float64(wantIndex) || !strings.Contains(first["message"].(string), wantInMessage) {
				t.Fatalf("errors %v", errs)
			}
			if h.queued() != before {
				t.Fatal("a refused batch queued messages")
			}
		})
	}
	f("a parameter missing", `{"template_name":"service_confirmation","messages":[
		{"phone":"+1234567890","parameters":{"service_type":"Spa","appointment_time":"2 PM","location":"Spa","estimated_duration":"1 h"}},
		{"phone":"+1234567891","parameters":{"service_type":"Spa","appointment_time":"2 PM","location":"Spa"}}]}`,
		400, "INVALID_REQUEST", 1, "messages[1].parameters.estimated_duration is missing")
	f("an unknown template", `{"messages":[{"phone":"+1234567890","template_name":"nope","parameters":[]}]}`, 404, "TEMPLATE_NOT_FOUND", 0, `messages[0]: No template named "nope"`)
	f("content and template", `{"messages":[{"phone":"+1234567890","content":"x","template_name":"service_confirmation"}]}`, 400, "INVALID_REQUEST", 0, "content or a template, not both")
	f("a rejected template", `{"template_name":"promotional_offer","messages":[{"phone":"+1234567890","parameters":["a","b"]}]}`,
		404, "TEMPLATE_NOT_FOUND", 0, "not approved")
	code, v, _ = h.do("POST", batchPath, otherToken, `{"template_name":"service_confirmation","messages":[{"phone":"+1234567890","parameters":{"service_type":"Spa","appointment_time":"2 PM","location":"Spa","estimated_duration":"1 h"}}]}`)
	if code != 404 || errCode(t, v) != "TEMPLATE_NOT_FOUND" {
		t.Fatalf("another tenant's batch: %d %v", code, v)
	}
}

func TestTemplateParamsDecoding(t *testing.T) {
	f := func(raw string, want map[string]string, wantErr string) {
		t.Helper()
		got, e := decodeTemplateParams(json.RawMessage(raw), "parameters")
		if wantErr != "" {
			if e == nil || !strings.Contains(e.Message, wantErr) {
				t.Fatalf("%s: %v", raw, e)
			}
			return
		}
		if e != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: %v %v", raw, got, e)
		}
	}
	f(`{"a":"x","b":12.50}`, map[string]string{"a": "x", "b": "12.50"}, "")
	f(`["x", 2]`, map[string]string{"1": "x", "2": "2"}, "")
	f(``, map[string]string{}, "")
	f(`null`, map[string]string{}, "")
	f(`{"a":true}`, nil, "parameters.a must be a string")
	f(`[null]`, nil, "parameters[0] must be a string")
	f(`"x"`, nil, "must be an object")
	f(`{"a":`, nil, "must be an object")
	f(`[`+strings.Repeat(`"x",`, 100)+`"x"]`, nil, "too many")
}

// TestTemplateLanguageFallback: a template asked for in a language it has
// no approved translation in goes in the nearest one it has (the language
// without its region, another region of it, the tenant's default), and
// the answer says which; a tenant may turn that off.
func TestTemplateLanguageFallback(t *testing.T) {
	h := newHarness(t)
	body := func(lang string) string {
		return `{"name":"checkout_reminder","language":"` + lang + `","category":"UTILITY","status":"APPROVED","components":[
			{"type":"BODY","text":"Checkout {{1}}."}]}`
	}
	h.putTemplates("grand-plaza", append(hotelTemplates, body("es"), body("pt_BR"))...)
	send := func(name, lang string, params string) (int, map[string]any) {
		code, v, _ := h.do("POST", "/api/v1/whatsapp/templates/send", staffToken,
			`{"guest_phone":"+1234567890","template_name":"`+name+`","language":"`+lang+`","parameters":`+params+`}`)
		return code, v
	}
	welcome := `{"guest_name":"John","hotel_name":"Grand Plaza","room_number":"205","checkin_time":"3 PM","checkout_date":"Jan 18"}`
	tests := []struct {
		name, template, lang, params string
		settings                     string
		code                         int
		went                         string // "" when it went in the language asked for
	}{
		{"the language itself", "checkout_reminder", "es", `["11:00"]`, "", 202, ""},
		{"without its region", "checkout_reminder", "es_MX", `["11:00"]`, "", 202, "es"},
		{"another region", "checkout_reminder", "pt_PT", `["11:00"]`, "", 202, "pt_BR"},
		{"only a pending translation, no default", "welcome_checkin", "es_MX", welcome, "", 404, ""},
		{"the tenant's default", "welcome_checkin", "es_MX", welcome, `{"default_template_language":"en"}`, 202, "en"},
		{"turned off", "checkout_reminder", "es_MX", `["11:00"]`, `{"template_language_fallback":false}`, 404, ""},
	}
	for _, tt := range tests {
		if tt.settings != "" {
			if code, v, _ := h.do("PUT", "/api/v1/whatsapp/settings", adminToken, tt.settings); code != 200 {
				t.Fatalf("%s: settings %d %v", tt.name, code, v)
			}
		}
		code, v := send(tt.template, tt.lang, tt.params)
		if code != tt.code {
			t.Errorf("%s: %d %v, want %d", tt.name, code, v, tt.code)
			continue
		}
		if code != 202 {
			if errCode(t, v) != "TEMPLATE_NOT_FOUND" {
				t.Errorf("%s: %v", tt.name, v)
			}
			continue
		}
		if tt.went == "" && v["language"] != nil || tt.went != "" && (v["language"] != tt.went || v["requested_language"] != tt.lang) {
			t.Errorf("%s: answered %v, want language %q", tt.name, v, tt.went)
		}
		st, err := h.store.State(context.Background(), v["message_id"].(string))
		must(t, err)
		want := tt.lang
		if tt.went != "" {
			want = tt.went
		}
		if !strings.Contains(string(st.Content), `"code":"`+want+`"`) {
			t.Errorf("%s: queued %s, want language %s", tt.name, st.Content, want)
		}
	}
}
