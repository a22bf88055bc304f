package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
)

const testWABA = "200000000000001"

func templatesClient(t *testing.T, s *Server, token string) *meta.Templates {
	t.Helper()
	c, err := meta.NewTemplates(meta.Config{BaseURL: s.URL(), AccessToken: token, WABAID: testWABA,
		PhoneNumberIDs: map[string]string{"+15550001000": testPhoneID}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// templateEvents reads the template status changes out of what r got.
func templateEvents(t *testing.T, r *receiver) []provider.TemplateStatus {
	t.Helper()
	var out templateCollector
	for _, p := range r.snapshot() {
		if err := meta.ParseWebhook(p.body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out.got
}

type templateCollector struct {
	received
	got []provider.TemplateStatus
}

func (c *templateCollector) HandleTemplateStatus(s *provider.TemplateStatus) error {
	c.got = append(c.got, *s)
	return nil
}

func parseTemplate(t *testing.T, s string) message.Template {
	t.Helper()
	var tp message.Template
	if err := json.Unmarshal([]byte(s), &tp); err != nil {
		t.Fatal(err)
	}
	tp.Normalize()
	return tp
}

func seedLate(t *testing.T) message.Template {
	return parseTemplate(t, `{"name":"late_checkout_confirmation","category":"UTILITY","language":"en","components":[
		{"type":"HEADER","format":"TEXT","text":"Late Checkout Confirmed"},
		{"type":"BODY","text":"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},
		{"type":"FOOTER","text":"Thank you for staying with us!"}]}`)
}

func TestTemplateReviewPostsASignedWebhook(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL, TemplateReviewDelay: 50 * time.Millisecond})
	c := templatesClient(t, s, testToken)
	ctx := context.Background()

	late := seedLate(t)
	res, err := c.CreateTemplate(ctx, &late)
	if err != nil || res.ID == "" || res.Status != message.TemplatePending || res.Category != message.CategoryUtility {
		t.Fatalf("%+v %v", res, err)
	}
	// The reviewers reject a body that ends with a variable.
	bad := seedLate(t)
	bad.Name = "late_checkout_v2"
	bad.Components[1].Text = "Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}"
	badRes, err := c.CreateTemplate(ctx, &bad)
	if err != nil || badRes.Status != message.TemplatePending {
		t.Fatalf("%+v %v", badRes, err)
	}
	listed, err := c.ListTemplates(ctx)
	if err != nil || len(listed) != 2 || listed[0].Status != message.TemplatePending {
		t.Fatalf("before the review: %+v %v", listed, err)
	}
	testwait.For(t, 5*time.Second, "two template webhooks", func() bool { return len(templateEvents(t, r)) == 2 })
	events := templateEvents(t, r)
	byName := map[string]provider.TemplateStatus{}
	for _, e := range events {
		byName[e.Name] = e
	}
	want := provider.TemplateStatus{AccountID: testWABA, TemplateID: res.ID, Name: "late_checkout_confirmation", Language: "en", Event: "APPROVED"}
	got := byName["late_checkout_confirmation"]
	got.AtMS = 0
	if got != want {
		t.Fatalf("approval webhook %+v, want %+v", got, want)
	}
	if rej := byName["late_checkout_v2"]; rej.Event != "REJECTED" || rej.Reason != "INVALID_FORMAT" || rej.TemplateID != badRes.ID || rej.AtMS == 0 {
		t.Fatalf("rejection webhook %+v", rej)
	}
	if r.badSigs != 0 {
		t.Fatalf("%d webhooks failed the signature check", r.badSigs)
	}
	listed, _ = c.ListTemplates(ctx)
	st := map[string]message.TemplateStatus{}
	for _, l := range listed {
		st[l.Name] = l.Status
	}
	if st["late_checkout_confirmation"] != message.TemplateApproved || st["late_checkout_v2"] != message.TemplateRejected {
		t.Fatalf("after the review: %v", st)
	}
	if posted, dropped := s.TemplateWebhooks(); posted != 2 || dropped != 0 {
		t.Fatalf("posted %d dropped %d", posted, dropped)
	}

	// Meta pauses a template: the change is posted too.
	if !s.SetTemplateStatus(testWABA, "late_checkout_confirmation", "en", message.TemplatePaused, "Low quality") {
		t.Fatal("template not found")
	}
	testwait.For(t, 5*time.Second, "the pause webhook", func() bool { return len(templateEvents(t, r)) == 3 })
	if e := templateEvents(t, r)[2]; e.Event != "PAUSED" || e.Reason != "Low quality" {
		t.Fatalf("pause %+v", e)
	}
}

func TestTemplateSubmissionIsCheckedAsMetaDoes(t *testing.T) {
	s := startSim(t, Config{})
	url := s.URL() + "/v23.0/" + testWABA + "/message_templates"
	bearer := "Bearer " + testToken
	f := func(name, method, u, auth, body string, status, code, subcode int, inDetails string) {
		t.Helper()
		a := do(t, method, u, auth, "application/json", []byte(body))
		if a.status != status || a.err.Code != code || a.err.Subcode != subcode || !strings.Contains(a.err.ErrorData.Details+a.err.Message, inDetails) {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
	}
	ok := `{"name":"room_ready","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"Good news {{1}}, your room is ready for you now."}]}`
	if a := do(t, "POST", url, bearer, "application/json", []byte(ok)); a.status != 200 || !strings.Contains(string(a.body), `"status":"PENDING","category":"UTILITY"`) {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	f("again", "POST", url, bearer, ok, 400, 100, subcodeTemplateExists, "already exists")
	f("no token", "POST", url, "", ok, 401, 190, 0, "Invalid OAuth access token")
	f("unknown account", "POST", s.URL()+"/v23.0/999/message_templates", bearer, ok, 400, 100, 33, "Object with ID '999' does not exist")
	f("not JSON", "POST", url, bearer, `{"name":`, 400, 100, 0, "not valid JSON")
	f("no category", "POST", url, bearer, strings.Replace(ok, `"category":"UTILITY",`, "", 1), 400, 100, 0, "The parameter category is required")
	f("no components", "POST", url, bearer, `{"name":"x","language":"en","category":"UTILITY"}`, 400, 100, 0, "The parameter components is required")
	f("bad name", "POST", url, bearer, strings.Replace(ok, "room_ready", "Room Ready", 1), 400, 100, 0, "TEMPLATE name: name may hold only lowercase")
	f("footer variable", "POST", url, bearer, strings.Replace(ok, `]}`, `,{"type":"FOOTER","text":"Bye {{1}}"}]}`, 1), 400, 100, 0, "FOOTER text: a footer may not hold variables")
	f("delete", "DELETE", url, bearer, "", 400, 100, 33, "Unsupported delete request")
}

func TestTemplateListingPages(t *testing.T) {
	var seeds []message.Template
	for i := range 5 {
		seeds = append(seeds, message.Template{Name: fmt.Sprintf("t%d", i), Language: "en", Category: message.CategoryUtility,
			Components: []message.TemplateComponent{{Type: "BODY", Text: "Hello there, thanks for staying."}}})
	}
	s := startSim(t, Config{Templates: map[string][]message.Template{testWABA: seeds}})
	url := s.URL() + "/v23.0/" + testWABA + "/message_templates?limit=2"
	var names []string
	for page := 0; url != "" && page < 10; page++ {
		a := do(t, "GET", url, "Bearer "+testToken, "", nil)
		var ans struct {
			Data []struct {
				Name, Status, ID string
			} `json:"data"`
			Paging struct {
				Cursors struct{ After string } `json:"cursors"`
				Next    string                 `json:"next"`
			} `json:"paging"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &ans) != nil {
			t.Fatalf("%d %s", a.status, a.body)
		}
		for _, d := range ans.Data {
			if d.Status != "APPROVED" || d.ID == "" {
				t.Fatalf("seeded template %+v", d)
			}
			names = append(names, d.Name)
		}
		url = ans.Paging.Next
	}
	if fmt.Sprint(names) != "[t0 t1 t2 t3 t4]" {
		t.Fatalf("pages gave %v", names)
	}
	all, err := templatesClient(t, s, testToken).ListTemplates(context.Background())
	if err != nil || len(all) != 5 {
		t.Fatalf("%d %v", len(all), err)
	}
	if _, err := templatesClient(t, s, "wrong").ListTemplates(context.Background()); !errors.As(err, new(*provider.Error)) {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestTemplateSendsNeedAnApprovedTemplate(t *testing.T) {
	welcome := parseTemplate(t, `{"name":"welcome_checkin","language":"en","category":"UTILITY","components":[
		{"type":"BODY","text":"Hello {{guest_name}}, welcome to {{hotel_name}}! Your room {{room_number}} is ready at {{checkin_time}} until {{checkout_date}} as planned."},
		{"type":"BUTTONS","buttons":[{"type":"URL","text":"Key","url":"https://hotel.example/key/{{1}}"}]}]}`)
	offer := parseTemplate(t, `{"name":"promotional_offer","language":"en","category":"MARKETING","components":[
		{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Dear {{1}}, enjoy {{2}} off your next stay with us."}]}`)
	late := seedLate(t)
	pending := seedLate(t)
	pending.Name, pending.Status = "pending_one", message.TemplatePending
	s := startSim(t, Config{Templates: map[string][]message.Template{testWABA: {welcome, offer, late, pending}}})
	req := func(content string) string {
		return `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"template","template":` + content + `}`
	}
	build := func(tp message.Template, values map[string]string) string {
		obj, _, err := tp.BuildSend(values)
		if err != nil {
			t.Fatal(err)
		}
		return string(obj)
	}
	f := func(name, content string, status, code int, inDetails string) {
		t.Helper()
		a := send(t, s, req(content))
		if a.status != status || a.err.Code != code || !strings.Contains(a.err.ErrorData.Details, inDetails) {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
	}
	welcomeValues := map[string]string{"guest_name": "John Smith", "hotel_name": "Grand Plaza Hotel", "room_number": "205",
		"checkin_time": "3:00 PM", "checkout_date": "January 18, 2024", "button_0": "RB123456"}
	for _, ok := range []string{
		build(welcome, welcomeValues),
		build(offer, map[string]string{"1": "Ana", "2": "20%", "header_media_url": "https://hotel.example/spa.jpg"}),
		build(late, map[string]string{"1": "Ana", "2": "1 PM", "3": "412", "4": "$20"}),
	} {
		if a := send(t, s, req(ok)); a.status != 200 {
			t.Fatalf("%s: %d %s", ok, a.status, a.body)
		}
	}
	f("unknown", `{"name":"nope","language":{"code":"en"}}`, 404, 132001, "template name (nope) does not exist in en")
	f("other language", strings.Replace(build(late, map[string]string{"1": "a", "2": "b", "3": "c", "4": "d"}), `"code":"en"`, `"code":"es"`, 1),
		404, 132001, "does not exist in es")
	f("not approved", `{"name":"pending_one","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"text","text":"c"},{"type":"text","text":"d"}]}]}`,
		404, 132001, "pending_one")
	f("three of four", `{"name":"late_checkout_confirmation","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"text","text":"c"}]}]}`,
		400, 132000, "body: number of localizable_params (3) does not match the expected number of params (4)")
	f("no header image", `{"name":"promotional_offer","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		400, 132000, "header: number of localizable_params (0)")
	withoutButton := build(welcome, welcomeValues)
	withoutButton = withoutButton[:strings.Index(withoutButton, `,{"type":"button"`)] + `]}`
	f("no url suffix", withoutButton, 400, 132000, "button at index 0 of type Url")
	f("positional to a named template", strings.ReplaceAll(build(welcome, welcomeValues), `"parameter_name":"hotel_name",`, ""), 400, 132012, "parameter_name is required")

	if !s.SetTemplateStatus(testWABA, "late_checkout_confirmation", "en", message.TemplatePaused, "") {
		t.Fatal("no such template")
	}
	f("paused", build(late, map[string]string{"1": "a", "2": "b", "3": "c", "4": "d"}), 400, 132015, "paused")
	s.SetTemplateStatus(testWABA, "late_checkout_confirmation", "en", message.TemplateDisabled, "")
	f("disabled", build(late, map[string]string{"1": "a", "2": "b", "3": "c", "4": "d"}), 400, 132016, "disabled")
}

func TestTemplateConfigIsChecked(t *testing.T) {
	tp := message.Template{Name: "x", Language: "en", Category: message.CategoryUtility}
	f := func(name string, cfg Config, want string) {
		t.Helper()
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f("unknown account", Config{Templates: map[string][]message.Template{"9": {tp}}}, "no number of that account")
	f("twice", Config{Templates: map[string][]message.Template{DefaultWABAID: {tp, tp}}}, "given twice")
	bad := tp
	bad.Language = "klingon"
	f("bad language", Config{Templates: map[string][]message.Template{DefaultWABAID: {bad}}}, "not a name and language")
	f("negative delay", Config{TemplateReviewDelay: -time.Second}, "review delay")
}
