package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
)

func TestSendValidation(t *testing.T) {
	// The account has the template the well-formed template send names.
	s := startSim(t, Config{Templates: map[string][]message.Template{"200000000000001": {{
		Name: "booking_confirmation", Language: "en_US", Category: message.CategoryUtility, Status: message.TemplateApproved,
		Components: []message.TemplateComponent{{Type: "BODY", Text: "Hello {{1}}, your booking is confirmed."}},
	}}}})
	const ok = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	f := func(name, phoneID, auth, body string, status, code, subcode int, message string) {
		t.Helper()
		a := do(t, "POST", sendURL(s, phoneID), auth, "application/json", []byte(body))
		if a.status != status || a.err.Code != code || a.err.Subcode != subcode || !strings.Contains(a.err.Message, message) {
			t.Fatalf("%s: got %d %s, want %d code %d/%d %q", name, a.status, a.body, status, code, subcode, message)
		}
		if a.err.Type == "" || a.err.TraceID == "" || a.err.ErrorData.MessagingProduct != "whatsapp" || a.err.ErrorData.Details == "" {
			t.Fatalf("%s: error body is not Meta's shape: %s", name, a.body)
		}
	}
	bearer := "Bearer " + testToken
	req := func(typ, object string) string {
		return `{"messaging_product":"whatsapp","recipient_type":"individual","to":"+4915112345678","type":"` + typ + `","` + typ + `":` + object + `}`
	}
	f("no token", testPhoneID, "", ok, 401, 190, 0, "Invalid OAuth access token - Cannot parse access token")
	f("wrong token", testPhoneID, "Bearer nope", ok, 401, 190, 0, "Invalid OAuth access token")
	f("token without Bearer", testPhoneID, testToken, ok, 401, 190, 0, "Invalid OAuth access token")
	f("unknown number", "999", bearer, ok, 400, 100, 33, "Unsupported post request. Object with ID '999' does not exist")
	f("not JSON", testPhoneID, bearer, `{"messaging_product":`, 400, 100, 0, "(#100)")
	f("no messaging_product", testPhoneID, bearer, `{"to":"4915112345678","type":"text","text":{"body":"hi"}}`, 400, 100, 0, "(#100) The parameter messaging_product is required.")
	f("other messaging_product", testPhoneID, bearer, `{"messaging_product":"sms","to":"4915112345678","text":{"body":"hi"}}`, 400, 100, 0, "messaging_product must be one of {WHATSAPP}")
	f("no to", testPhoneID, bearer, `{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}`, 400, 100, 0, "(#100) The parameter to is required.")
	f("to with letters", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":"49151abc","text":{"body":"hi"}}`, 400, 131009, 0, "(#131009) Parameter value is not valid")
	f("to too short", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":"+123456","text":{"body":"hi"}}`, 400, 131009, 0, "(#131009)")
	f("to too long", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":"1234567890123456","text":{"body":"hi"}}`, 400, 131009, 0, "(#131009)")
	f("to not a string", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":4915112345678,"text":{"body":"hi"}}`, 400, 100, 0, "(#100)")
	f("unknown type", testPhoneID, bearer, req("fax", `{}`), 400, 100, 0, `Param type must be one of`)
	f("no text", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":"4915112345678","type":"text"}`, 400, 100, 0, "(#100) The parameter text['body'] is required.")
	f("empty text", testPhoneID, bearer, req("text", `{"body":""}`), 400, 100, 0, "(#100) The parameter text['body'] is required.")
	f("text too long", testPhoneID, bearer, req("text", `{"body":"`+strings.Repeat("é", 4097)+`"}`), 400, 100, 0, "Param text['body'] must be at most 4096 characters long.")
	f("image without id or link", testPhoneID, bearer, req("image", `{"caption":"x"}`), 400, 100, 0, "must have either id or link")
	f("no image", testPhoneID, bearer, `{"messaging_product":"whatsapp","to":"4915112345678","type":"image"}`, 400, 100, 0, "The parameter image is required.")
	f("caption too long", testPhoneID, bearer, req("document", `{"id":"123","caption":"`+strings.Repeat("x", 1025)+`"}`), 400, 100, 0, "caption'] must be at most 1024 characters long.")
	f("interactive without type", testPhoneID, bearer, req("interactive", `{"action":{}}`), 400, 100, 0, "The parameter interactive['type'] is required.")
	f("interactive without action", testPhoneID, bearer, req("interactive", `{"type":"button","body":{"text":"x"}}`), 400, 100, 0, "The parameter interactive['action'] is required.")
	f("four buttons", testPhoneID, bearer, req("interactive", `{"type":"button","body":{"text":"x"},"action":{"buttons":[{},{},{},{}]}}`), 400, 100, 0, "between 1 and 3")
	f("list with 11 rows", testPhoneID, bearer, req("interactive", `{"type":"list","body":{"text":"x"},"action":{"button":"Menu","sections":[{"rows":[{},{},{},{},{},{}]},{"rows":[{},{},{},{},{}]}]}}`), 400, 100, 0, "1 to 10 rows")
	f("template without name", testPhoneID, bearer, req("template", `{"language":{"code":"en_US"}}`), 400, 100, 0, "The parameter template['name'] is required.")
	f("template without language", testPhoneID, bearer, req("template", `{"name":"welcome"}`), 400, 100, 0, "The parameter template['language']['code'] is required.")
	f("location without latitude", testPhoneID, bearer, req("location", `{"longitude":13.4}`), 400, 100, 0, "location['latitude']")
	f("empty contacts", testPhoneID, bearer, req("contacts", `[]`), 400, 100, 0, "The parameter contacts is required.")
	f("reaction without message id", testPhoneID, bearer, req("reaction", `{"emoji":"👍"}`), 400, 100, 0, "reaction['message_id']")

	// Refused sends change nothing.
	st := s.Stats()
	if st.Accepted != 0 || len(s.Requests(testPhoneID)) != 0 || len(s.SendsPerSecond(testPhoneID)) != 0 {
		t.Fatalf("refused sends were recorded: %+v", st)
	}
	if st.Rejected[190] != 3 || st.Rejected[131009] != 3 {
		t.Fatalf("rejections by code: %v", st.Rejected)
	}

	// The same kinds, well formed, are accepted.
	for _, body := range []string{
		req("text", `{"body":"`+strings.Repeat("é", 4096)+`","preview_url":true}`),
		req("image", `{"link":"https://example.com/room.jpg","caption":"Room 12"}`),
		req("document", `{"id":"`+mediaUploaded(t, s, "application/pdf", simPDF)+`","filename":"invoice.pdf"}`),
		req("interactive", `{"type":"button","body":{"text":"Late checkout?"},"action":{"buttons":[{"type":"reply","reply":{"id":"yes","title":"Yes"}}]}}`),
		req("interactive", `{"type":"list","body":{"text":"Menu"},"action":{"button":"Open","sections":[{"title":"Food","rows":[{"id":"1","title":"Pizza"}]}]}}`),
		req("interactive", `{"type":"cta_url","body":{"text":"Your key"},"action":{"name":"cta_url","parameters":{"display_text":"Open","url":"https://example.com"}}}`),
		req("template", `{"name":"booking_confirmation","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ana"}]}]}`),
		req("location", `{"latitude":52.52,"longitude":13.405,"name":"Hotel"}`),
		req("contacts", `[{"name":{"formatted_name":"Front desk"}}]`),
		req("reaction", `{"message_id":"wamid.X","emoji":"👍"}`),
		`{"messaging_product":"whatsapp","to":"4915112345678","text":{"body":"type defaults to text"}}`,
	} {
		if a := send(t, s, body); a.status != 200 {
			t.Fatalf("%.80s: %d %s", body, a.status, a.body)
		}
	}
}

var wamidRE = regexp.MustCompile(`^wamid\.[A-Za-z0-9+/]{24}$`)

func TestSendSuccess(t *testing.T) {
	s := startSim(t, Config{RecordRequests: 3})
	f := func(to string) (string, string) {
		t.Helper()
		body := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"` + to + `","type":"text","text":{"body":"hi"}}`
		a := send(t, s, body)
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		var ans struct {
			MessagingProduct string `json:"messaging_product"`
			Contacts         []struct {
				Input string `json:"input"`
				WaID  string `json:"wa_id"`
			} `json:"contacts"`
			Messages []struct {
				ID     string `json:"id"`
				Status string `json:"message_status"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(a.body, &ans); err != nil {
			t.Fatal(err)
		}
		if ans.MessagingProduct != "whatsapp" || len(ans.Contacts) != 1 || ans.Contacts[0].Input != to ||
			ans.Contacts[0].WaID != strings.TrimPrefix(to, "+") || len(ans.Messages) != 1 ||
			!wamidRE.MatchString(ans.Messages[0].ID) || ans.Messages[0].Status != "accepted" {
			t.Fatalf("answer %s", a.body)
		}
		return ans.Messages[0].ID, body
	}
	seen := map[string]bool{}
	var ids, bodies []string
	for _, to := range []string{"+4915112345678", "4915112345679", "+15550002000", "15550002001", "15550002002"} {
		id, body := f(to)
		if seen[id] {
			t.Fatalf("wamid %s repeated", id)
		}
		seen[id] = true
		ids, bodies = append(ids, id), append(bodies, body)
	}
	// The ring keeps the last three, oldest first.
	reqs := s.Requests(testPhoneID)
	if len(reqs) != 3 {
		t.Fatalf("%d requests recorded, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.WAMID != ids[i+2] || string(r.Body) != bodies[i+2] || r.Authorization != "Bearer "+testToken ||
			r.PhoneNumberID != testPhoneID || time.Since(r.At) > time.Minute {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	reqs[0].Body[0] = 'X' // a copy: the ring is untouched
	if s.Requests(testPhoneID)[0].Body[0] != '{' {
		t.Fatal("Requests returned the ring's own buffer")
	}
	total := 0
	for _, n := range s.SendsPerSecond(testPhoneID) {
		total += n
	}
	if total != 5 || s.Stats().Accepted != 5 {
		t.Fatalf("per-second counts add up to %d, accepted %d; want 5", total, s.Stats().Accepted)
	}
	if len(s.Requests(testPhoneID2)) != 0 || len(s.SendsPerSecond(testPhoneID2)) != 0 {
		t.Fatal("the other number recorded sends")
	}
}

func TestThroughput(t *testing.T) {
	s := startSim(t, Config{Throughput: 5, ThroughputBurst: 5})
	const body = `{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	accepted, throttled := 0, 0
	for i := 0; i < 12; i++ {
		a := send(t, s, body)
		switch {
		case a.status == 200:
			accepted++
		case a.status == 400 && a.err.Code == 130429 && a.err.Message == "(#130429) Rate limit hit" &&
			a.err.ErrorData.Details == "Cloud API message throughput has been reached.":
			throttled++
		default:
			t.Fatalf("send %d: %d %s", i, a.status, a.body)
		}
	}
	// A few milliseconds may refill part of a token, never a whole one.
	if accepted != 5 || throttled != 7 {
		t.Fatalf("accepted %d, throttled %d; want 5 and 7", accepted, throttled)
	}
	if st := s.Stats(); st.Throttled != 7 || st.Rejected[130429] != 7 {
		t.Fatalf("stats %+v", st)
	}
	// The other number has its own bucket.
	if a := do(t, "POST", sendURL(s, testPhoneID2), "Bearer "+testToken, "application/json", []byte(body)); a.status != 200 {
		t.Fatalf("second number: %d %s", a.status, a.body)
	}
	time.Sleep(250 * time.Millisecond) // one token back at 5/s
	if a := send(t, s, body); a.status != 200 {
		t.Fatalf("after refill: %d %s", a.status, a.body)
	}
	for sec, n := range s.SendsPerSecond(testPhoneID) {
		if n > 5+5 {
			t.Fatalf("second %d had %d sends", sec, n)
		}
	}
}

func TestOutage(t *testing.T) {
	const body = `{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	isOutage := func(a answer) bool {
		return a.status == 503 && a.err.Code == 2 && a.err.Message == "(#2) Service temporarily unavailable"
	}

	s := startSim(t, Config{})
	s.SetOutage(time.Now().Add(300 * time.Millisecond))
	if a := send(t, s, body); !isOutage(a) {
		t.Fatalf("during SetOutage: %d %s", a.status, a.body)
	}
	time.Sleep(350 * time.Millisecond)
	if a := send(t, s, body); a.status != 200 {
		t.Fatalf("after SetOutage: %d %s", a.status, a.body)
	}
	// Over HTTP.
	if a := do(t, "POST", s.URL()+"/_sim/outage?seconds=30", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/outage: %d %s", a.status, a.body)
	}
	if a := send(t, s, body); !isOutage(a) {
		t.Fatalf("during /_sim/outage: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", s.URL()+"/_sim/outage?seconds=0", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/outage end: %d %s", a.status, a.body)
	}
	if a := send(t, s, body); a.status != 200 {
		t.Fatalf("after /_sim/outage: %d %s", a.status, a.body)
	}
	if st := s.Stats(); st.Outage != 2 || st.Accepted != 2 || st.Rejected[2] != 2 {
		t.Fatalf("stats %+v", st)
	}

	// A configured window, from Start.
	s = startSim(t, Config{Outages: []Window{{Start: 0, End: 300 * time.Millisecond}}})
	if a := send(t, s, body); !isOutage(a) {
		t.Fatalf("during window: %d %s", a.status, a.body)
	}
	time.Sleep(350 * time.Millisecond)
	if a := send(t, s, body); a.status != 200 {
		t.Fatalf("after window: %d %s", a.status, a.body)
	}

	// Refuse mode closes the connection.
	s = startSim(t, Config{OutageMode: OutageRefuse})
	s.SetOutage(time.Now().Add(time.Minute))
	resp, err := http.Post(sendURL(s, testPhoneID), "application/json", strings.NewReader(body))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("refuse mode answered %d", resp.StatusCode)
	}
}

func TestMedia(t *testing.T) {
	s := startSim(t, Config{})
	f := func(fields map[string]string, file bool) answer {
		t.Helper()
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for k, v := range fields {
			if err := w.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if file {
			fw, err := w.CreateFormFile("file", "room.jpg")
			if err != nil {
				t.Fatal(err)
			}
			fw.Write([]byte("\xff\xd8\xff\xe0 not really a jpeg"))
		}
		w.Close()
		return do(t, "POST", s.URL()+"/v23.0/"+testPhoneID+"/media", "Bearer "+testToken, w.FormDataContentType(), buf.Bytes())
	}
	a := f(map[string]string{"messaging_product": "whatsapp", "type": "image/jpeg"}, true)
	var ans struct {
		ID string `json:"id"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || !regexp.MustCompile(`^[0-9]{16}$`).MatchString(ans.ID) {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	if a := f(map[string]string{"messaging_product": "whatsapp", "type": "image/jpeg"}, false); a.status != 400 || a.err.Code != 100 || !strings.Contains(a.err.Message, "file") {
		t.Fatalf("no file: %d %s", a.status, a.body)
	}
	if a := f(map[string]string{"type": "image/jpeg"}, true); a.status != 400 || a.err.Code != 100 || !strings.Contains(a.err.Message, "messaging_product") {
		t.Fatalf("no messaging_product: %d %s", a.status, a.body)
	}
	if a := f(map[string]string{"messaging_product": "sms", "type": "image/jpeg"}, true); a.status != 400 || a.err.Code != 100 {
		t.Fatalf("sms: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", s.URL()+"/v23.0/"+testPhoneID+"/media", "Bearer "+testToken, "application/json", []byte(`{}`)); a.status != 400 || a.err.Code != 100 {
		t.Fatalf("not multipart: %d %s", a.status, a.body)
	}
	if s.Stats().MediaUploads != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestRuntimeConfig(t *testing.T) {
	s := startSim(t, Config{})
	const body = `{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	a := do(t, "POST", s.URL()+"/_sim/config", "", "application/json", []byte(`{"error_rate":1,"latency":"30ms"}`))
	if a.status != 200 {
		t.Fatalf("config: %d %s", a.status, a.body)
	}
	if rt := s.Runtime(); rt.ErrorRate != 1 || rt.Latency != 30*time.Millisecond || rt.ReadRatio != 1 {
		t.Fatalf("runtime %+v", rt)
	}
	start := time.Now()
	a = send(t, s, body)
	if a.status != 500 || a.err.Code != 131000 || a.err.Message != "(#131000) Something went wrong" {
		t.Fatalf("injected error: %d %s", a.status, a.body)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("latency not applied")
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"soon"}`, `{"throughput":-1}`, `not json`} {
		if a := do(t, "POST", s.URL()+"/_sim/config", "", "application/json", []byte(bad)); a.status != 400 {
			t.Fatalf("%s: %d %s", bad, a.status, a.body)
		}
	}
	if rt := s.Runtime(); rt.ErrorRate != 1 {
		t.Fatalf("a refused change applied: %+v", rt)
	}
	if err := s.SetRuntime(Runtime{Throughput: 1, ThroughputBurst: 1, ReadRatio: 1}); err != nil {
		t.Fatal(err)
	}
	if a := send(t, s, body); a.status != 200 {
		t.Fatalf("after SetRuntime: %d %s", a.status, a.body)
	}
	if a := send(t, s, body); a.err.Code != 130429 {
		t.Fatalf("throughput 1/s: %d %s", a.status, a.body)
	}
	a = do(t, "GET", s.URL()+"/_sim/stats", "", "", nil)
	var st Stats
	if a.status != 200 || json.Unmarshal(a.body, &st) != nil || st.Accepted != 1 || st.Injected != 1 || st.Throttled != 1 || st.Rejected[131000] != 1 {
		t.Fatalf("stats: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", s.URL()+"/_sim/nothing", "", "", nil); a.status != 404 {
		t.Fatalf("unknown control: %d", a.status)
	}
}

// TestMetaClient sends through provider/meta's client, as the gateway
// does, and checks the classes of the simulator's answers.
func TestMetaClient(t *testing.T) {
	s := startSim(t, Config{Throughput: 2, ThroughputBurst: 2})
	client := func(token string) *meta.Client {
		c, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: token, Timeout: 5 * time.Second,
			PhoneNumberIDs: map[string]string{"+15550001000": testPhoneID, "+15559999999": "404"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(testToken)
	m := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeText, Content: []byte(`{"body":"hi"}`)}
	res, err := c.Send(context.Background(), m)
	if err != nil || !wamidRE.MatchString(res.ProviderMessageID) {
		t.Fatalf("send: %v %+v", err, res)
	}
	if r := s.Requests(testPhoneID); len(r) != 1 || r[0].WAMID != res.ProviderMessageID ||
		string(r[0].Body) != `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"body":"hi"}}` {
		t.Fatalf("recorded %+v", r)
	}
	class := func(c *meta.Client, m *message.Message) (provider.Class, int) {
		t.Helper()
		_, err := c.Send(context.Background(), m)
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("got %v, want a provider error", err)
		}
		return pe.Class, pe.Code
	}
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if cl, code := class(c, m); cl != provider.ClassThrottle || code != 130429 {
		t.Fatalf("over the rate: %v %d", cl, code)
	}
	if cl, code := class(client("wrong"), m); cl != provider.ClassStopSender || code != 190 {
		t.Fatalf("bad token: %v %d", cl, code)
	}
	other := *m
	other.Sender = "+15559999999"
	if cl, code := class(c, &other); cl != provider.ClassPermanent || code != 100 {
		t.Fatalf("unknown number: %v %d", cl, code)
	}
	s.SetOutage(time.Now().Add(time.Minute))
	if cl, code := class(c, m); cl != provider.ClassRetry || code != 2 {
		t.Fatalf("outage: %v %d", cl, code)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(name string, cfg Config) {
		t.Helper()
		if _, err := New(cfg, nil); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("bad number id", Config{Numbers: []Number{{PhoneNumberID: "1/2", DisplayPhoneNumber: "15550001000", WABAID: "1"}}})
	f("repeated number", Config{Numbers: []Number{testNumbers[0], testNumbers[0]}})
	f("display not digits", Config{Numbers: []Number{{PhoneNumberID: "1", DisplayPhoneNumber: "+15550001000", WABAID: "1"}}})
	f("webhook not http", Config{WebhookURL: "ftp://x"})
	f("error rate", Config{ErrorRate: 1.5})
	f("fail ratio", Config{FailRatio: -0.1})
	f("read ratio", Config{ReadRatio: 2})
	f("outage window", Config{Outages: []Window{{Start: time.Second, End: time.Second}}})
	f("outage mode", Config{OutageMode: "explode"})
	f("backoff", Config{WebhookBackoffMin: time.Second, WebhookBackoffMax: time.Millisecond})
	if _, err := New(Config{}, nil); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
