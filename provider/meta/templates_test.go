package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

const testWABA = "200000000000001"

func newTestTemplates(t *testing.T, baseURL string) *Templates {
	t.Helper()
	c, err := NewTemplates(Config{BaseURL: baseURL, AccessToken: "EAAG-test-token", WABAID: testWABA,
		PhoneNumberIDs: map[string]string{testSender: testPhoneID}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lateCheckout() *message.Template {
	return &message.Template{Name: "late_checkout_confirmation", Language: "en", Category: message.CategoryUtility,
		Components: []message.TemplateComponent{
			{Type: "HEADER", Format: "TEXT", Text: "Late Checkout Confirmed"},
			{Type: "BODY", Text: "Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}.",
				Example: &message.TemplateExample{BodyText: [][]string{{"Ana", "1 PM", "412", "$20 & tax"}}}},
			{Type: "FOOTER", Text: "Thank you for staying with us!"},
			{Type: "BUTTONS", Buttons: []message.TemplateButton{{Type: "URL", Text: "Manage stay", URL: "https://hotel.example/stay/{{1}}", Example: []string{"RB123"}}}},
		}}
}

func TestCreateTemplateSendsMetasBody(t *testing.T) {
	fm := newFakeMeta(t)
	fm.answer(200, `{"id":"1689556908129832","status":"PENDING","category":"UTILITY"}`, "")
	c := newTestTemplates(t, "http://"+fm.ln.Addr().String())
	res, err := c.CreateTemplate(context.Background(), lateCheckout())
	if err != nil {
		t.Fatal(err)
	}
	if res != (provider.TemplateResult{ID: "1689556908129832", Status: message.TemplatePending, Category: message.CategoryUtility}) {
		t.Fatalf("result %+v", res)
	}
	reqs := fm.take()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/v23.0/"+testWABA+"/message_templates" || r.auth != "Bearer EAAG-test-token" || r.contentType != "application/json" {
		t.Fatalf("request %s %s %q %q", r.method, r.path, r.auth, r.contentType)
	}
	want := `{"name":"late_checkout_confirmation","language":"en","category":"UTILITY","parameter_format":"POSITIONAL","components":[` +
		`{"type":"HEADER","format":"TEXT","text":"Late Checkout Confirmed"},` +
		`{"type":"BODY","text":"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}.","example":{"body_text":[["Ana","1 PM","412","$20 & tax"]]}},` +
		`{"type":"FOOTER","text":"Thank you for staying with us!"},` +
		`{"type":"BUTTONS","buttons":[{"type":"URL","text":"Manage stay","url":"https://hotel.example/stay/{{1}}","example":["RB123"]}]}]}`
	if string(r.body) != want {
		t.Fatalf("body\n got %s\nwant %s", r.body, want)
	}
}

func TestCreateTemplateErrors(t *testing.T) {
	fm := newFakeMeta(t)
	c := newTestTemplates(t, "http://"+fm.ln.Addr().String())
	f := func(name string, status int, body string, class provider.Class, exists bool, wantDetails string) {
		t.Run(name, func(t *testing.T) {
			fm.answer(status, body, "")
			_, err := c.CreateTemplate(context.Background(), lateCheckout())
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Class != class || pe.HTTPStatus != status {
				t.Fatalf("err %v (%+v)", err, pe)
			}
			if errors.Is(err, provider.ErrTemplateExists) != exists {
				t.Fatalf("exists: %v", err)
			}
			if !strings.Contains(pe.Details, wantDetails) || !strings.Contains(err.Error(), "late_checkout_confirmation") {
				t.Fatalf("details %q, err %v", pe.Details, err)
			}
		})
	}
	f("exists", 400, `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2388024,"is_transient":false,`+
		`"error_user_title":"Content in This Language Already Exists","error_user_msg":"There is already en content for this template.","fbtrace_id":"A1"}}`,
		provider.ClassPermanent, true, "There is already en content")
	f("invalid", 400, `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2388040,`+
		`"error_user_msg":"Message template body text can't have more than 1024 characters.","fbtrace_id":"A2"}}`,
		provider.ClassPermanent, false, "1024 characters")
	f("throttled", 400, `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"fbtrace_id":"A3"}}`,
		provider.ClassThrottle, false, "")
	f("server", 500, `{"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":2,"fbtrace_id":"A4"}}`,
		provider.ClassRetry, false, "")
	fm.answer(200, `{"success":true}`, "")
	if _, err := c.CreateTemplate(context.Background(), lateCheckout()); err == nil || !strings.Contains(err.Error(), "without an id") {
		t.Fatalf("answer without id: %v", err)
	}
}

func TestNewTemplatesNeedsTheAccount(t *testing.T) {
	cfg := Config{BaseURL: "http://127.0.0.1:1", AccessToken: "x", PhoneNumberIDs: map[string]string{testSender: testPhoneID}}
	if _, err := NewTemplates(cfg); err == nil || !strings.Contains(err.Error(), "waba") {
		t.Fatalf("no waba: %v", err)
	}
	cfg.WABAID = "../x"
	if _, err := NewTemplates(cfg); err == nil || !strings.Contains(err.Error(), "waba id") {
		t.Fatalf("bad waba: %v", err)
	}
}

// listServer answers the listing in pages of two, as Meta does with
// limit and after.
type listServer struct {
	mu      sync.Mutex
	queries []string
	all     []string
}

func (l *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.queries = append(l.queries, r.URL.RawQuery)
	l.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer EAAG-test-token" || r.URL.Path != "/v23.0/"+testWABA+"/message_templates" || r.Method != "GET" {
		http.Error(w, `{"error":{"message":"bad request","code":100}}`, 400)
		return
	}
	start := 0
	if a := r.URL.Query().Get("after"); a != "" {
		fmt.Sscanf(a, "c%d", &start)
	}
	end := min(start+2, len(l.all))
	page := `{"data":[` + strings.Join(l.all[start:end], ",") + `],"paging":{"cursors":{"before":"b","after":"c` + fmt.Sprint(end) + `"}`
	if end < len(l.all) {
		page += `,"next":"https://graph.facebook.com/next"`
	}
	fmt.Fprint(w, page+`}}`)
}

func TestListTemplatesFollowsThePages(t *testing.T) {
	ls := &listServer{all: []string{
		`{"name":"hello_world","components":[{"type":"BODY","text":"Welcome and congratulations!!"}],"language":"en_US","status":"APPROVED","category":"MARKETING","id":"1192339204654487"}`,
		`{"name":"2023_april_promo","components":[{"type":"BODY","text":"Hi {{1}}, our Fall Sale is on!","example":{"body_text":[["Mark"]]}},{"type":"BUTTONS","buttons":[{"type":"QUICK_REPLY","text":"Stop promotions"}]}],"language":"en_US","status":"REJECTED","rejected_reason":"PROMOTIONAL","category":"MARKETING","id":"920070352646140"}`,
		`{"name":"room_ready","components":[{"type":"BODY","text":"Your room {{room}} is ready."}],"language":"es","status":"PAUSED","parameter_format":"NAMED","category":"UTILITY","id":"3"}`,
		`{"name":"otp","components":[{"type":"BODY","add_security_recommendation":true},{"type":"BUTTONS","buttons":[{"type":"OTP","otp_type":"COPY_CODE","text":"Copy"}]}],"language":"en","status":"APPROVED","category":"AUTHENTICATION","id":"4"}`,
		`{"name":"new_one","components":[],"language":"de","status":"PENDING","category":"UTILITY","id":"5"}`,
	}}
	srv := httptest.NewServer(ls)
	defer srv.Close()
	c := newTestTemplates(t, srv.URL)
	got, err := c.ListTemplates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, tp := range got {
		summary = append(summary, fmt.Sprintf("%s/%s/%s/%s/%s/%s/%s", tp.Name, tp.Language, tp.Status, tp.Category, tp.ProviderID, tp.RejectedReason, tp.Format()))
	}
	want := []string{"hello_world/en_US/APPROVED/MARKETING/1192339204654487//POSITIONAL",
		"2023_april_promo/en_US/REJECTED/MARKETING/920070352646140/PROMOTIONAL/POSITIONAL",
		"room_ready/es/PAUSED/UTILITY/3//NAMED", "otp/en/APPROVED/AUTHENTICATION/4//POSITIONAL", "new_one/de/PENDING/UTILITY/5//POSITIONAL"}
	if !reflect.DeepEqual(summary, want) {
		t.Fatalf("got  %q\nwant %q", summary, want)
	}
	if got[1].Components[0].Example.BodyText[0][0] != "Mark" || got[1].Components[1].Buttons[0].Text != "Stop promotions" {
		t.Fatalf("components %+v", got[1].Components)
	}
	if len(ls.queries) != 3 || strings.Contains(ls.queries[0], "after=") || !strings.Contains(ls.queries[1], "after=c2") ||
		!strings.Contains(ls.queries[2], "after=c4") || !strings.Contains(ls.queries[0], "fields=id%2Cname%2Clanguage%2Cstatus") {
		t.Fatalf("queries %q", ls.queries)
	}
}

func TestListTemplatesErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"X"}}`)
	}))
	defer srv.Close()
	_, err := newTestTemplates(t, srv.URL).ListTemplates(context.Background())
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != 190 || pe.Class != provider.ClassStopSender {
		t.Fatalf("err %v", err)
	}
}

// collectTemplates is a TemplateHandler keeping what it is given.
type collectTemplates struct {
	collect
}

func (c *collectTemplates) HandleTemplateStatus(s *provider.TemplateStatus) error {
	c.items = append(c.items, *s)
	return c.fail
}

// templateStatusBody is Meta's message_template_status_update delivery.
const templateStatusBody = `{"entry":[{"id":"200000000000001","time":1700000000,"changes":[{"value":{"event":"REJECTED","message_template_id":1689556908129832,` +
	`"message_template_name":"late_checkout_confirmation","message_template_language":"en","reason":"INCORRECT_CATEGORY"},"field":"message_template_status_update"}]}],"object":"whatsapp_business_account"}`

func TestParseTemplateStatusWebhook(t *testing.T) {
	f := func(name, body string, want ...any) {
		t.Run(name, func(t *testing.T) {
			var c collectTemplates
			if err := ParseWebhook([]byte(body), &c); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.items, want) {
				t.Fatalf("\n got %+v\nwant %+v", c.items, want)
			}
		})
	}
	f("rejected", templateStatusBody, provider.TemplateStatus{AccountID: "200000000000001", TemplateID: "1689556908129832",
		Name: "late_checkout_confirmation", Language: "en", Event: "REJECTED", Reason: "INCORRECT_CATEGORY", AtMS: 1700000000000})
	f("approved, id last, reason NONE",
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":"77",`+
			`"message_template_name":"welcome_checkin","message_template_language":"en_US","reason":"NONE"}}],"id":"5"}]}`,
		provider.TemplateStatus{AccountID: "5", TemplateID: "77", Name: "welcome_checkin", Language: "en_US", Event: "APPROVED"})
	f("paused with other_info",
		`{"object":"whatsapp_business_account","entry":[{"id":"5","changes":[{"field":"message_template_status_update","value":{"event":"PAUSED","message_template_id":9,`+
			`"message_template_name":"promotional_offer","message_template_language":"en","reason":null,"other_info":{"title":"FIRST_PAUSE","description":"Paused for 3 hours because of low quality."}}}]}]}`,
		provider.TemplateStatus{AccountID: "5", TemplateID: "9", Name: "promotional_offer", Language: "en", Event: "PAUSED", Reason: "Paused for 3 hours because of low quality."})
	f("other template fields are skipped",
		`{"object":"whatsapp_business_account","entry":[{"id":"5","changes":[{"field":"message_template_quality_update","value":{"previous_quality_score":"GREEN","new_quality_score":"YELLOW",`+
			`"message_template_id":9,"message_template_name":"x","message_template_language":"en"}},{"field":"account_update","value":{"event":{"odd":"shape"}}}]}]}`)
	sent := provider.StatusUpdate{ProviderMessageID: "wamid.A", Status: message.StatusSent, AtMS: 1700000000000, RecipientID: "1", PhoneNumberID: "100000000000001"}
	f("in body order with statuses",
		`{"object":"whatsapp_business_account","entry":[{"id":"5","changes":[`+
			`{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"100000000000001"},"statuses":[{"id":"wamid.A","status":"sent","timestamp":"1700000000","recipient_id":"1"}]}},`+
			`{"field":"message_template_status_update","value":{"event":"DISABLED","message_template_id":9,"message_template_name":"x","message_template_language":"en","reason":"SCAM"}}]}]}`,
		sent, provider.TemplateStatus{AccountID: "5", TemplateID: "9", Name: "x", Language: "en", Event: "DISABLED", Reason: "SCAM"})

	// A Handler that is not a TemplateHandler is given the rest only.
	var plain collect
	if err := ParseWebhook([]byte(templateStatusBody), &plain); err != nil || len(plain.items) != 0 {
		t.Fatalf("plain handler: %v %+v", err, plain.items)
	}
	var c collectTemplates
	bad := `{"object":"whatsapp_business_account","entry":[{"id":"5","changes":[{"field":"message_template_status_update","value":{"message_template_name":"x"}}]}]}`
	if err := ParseWebhook([]byte(bad), &c); !errors.Is(err, ErrMalformed) || len(c.items) != 0 {
		t.Fatalf("status without event: %v %+v", err, c.items)
	}
	c = collectTemplates{collect: collect{fail: errors.New("store down")}}
	if err := ParseWebhook([]byte(templateStatusBody), &c); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("handler error not returned: %v", err)
	}
}

func TestAppendCreateBodyIsJSON(t *testing.T) {
	tp := lateCheckout()
	tp.Name = `a"b`
	b, err := AppendCreateBody([]byte("x"), tp)
	if err != nil || b[0] != 'x' || !json.Valid(b[1:]) {
		t.Fatalf("%s %v", b, err)
	}
}
