package sim

import (
	"bytes"
	"encoding/json"
	"github.com/wagate/wagate/message"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gallaboxAnswer is a Gallabox endpoint answer as the test client saw it.
type gallaboxAnswer struct {
	status int
	body   []byte
	ans    struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		StatusCode int    `json:"statusCode"`
		Error      string `json:"error"`
		Message    string `json:"message"`
	}
}

func gallaboxPost(t testing.TB, s *Server, method, key, secret, body string) gallaboxAnswer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+"/devapi/messages/whatsapp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("apiKey", key)
	}
	if secret != "" {
		req.Header.Set("apiSecret", secret)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s gallabox: %v", method, err)
	}
	defer resp.Body.Close()
	var a gallaboxAnswer
	a.status = resp.StatusCode
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	a.body = buf.Bytes()
	if err := json.Unmarshal(a.body, &a.ans); err != nil {
		t.Fatalf("answer %d %s is not JSON: %v", a.status, a.body, err)
	}
	return a
}

func gallaboxText(phone, body string) string {
	return `{"channelId":"629e0b6c3d6ad600044197a0","channelType":"whatsapp","recipient":{"name":"","phone":"` + phone +
		`"},"whatsapp":{"type":"text","text":{"body":` + string(message.AppendJSONString(nil, body)) + `}}}`
}

func TestGallaboxValidation(t *testing.T) {
	s := startSim(t, Config{})
	k, sec := DefaultGallaboxAPIKey, DefaultGallaboxAPISecret
	ok := gallaboxText("4915112345678", "hi")
	f := func(name, method, key, secret, body string, status int, message string) {
		t.Helper()
		a := gallaboxPost(t, s, method, key, secret, body)
		if a.status != status || a.ans.StatusCode != status || a.ans.Error != http.StatusText(status) || !strings.Contains(a.ans.Message, message) {
			t.Fatalf("%s: got %d %s, want %d %q", name, a.status, a.body, status, message)
		}
	}
	wa := func(whatsapp string) string {
		return `{"channelId":"c1","recipient":{"phone":"+4915112345678"},"whatsapp":` + whatsapp + `}`
	}
	f("no credentials", "POST", "", "", ok, 401, "Invalid apiKey or apiSecret")
	f("wrong secret", "POST", k, "nope", ok, 401, "Invalid apiKey or apiSecret")
	f("wrong key", "POST", "nope", sec, ok, 401, "Invalid apiKey or apiSecret")
	f("GET", "GET", k, sec, "", 405, "Cannot GET /devapi/messages/whatsapp")
	f("not JSON", "POST", k, sec, `{"channelId":`, 400, "not valid JSON")
	f("phone not a string", "POST", k, sec, `{"channelId":"c1","recipient":{"phone":4915112345678}}`, 400, "recipient.phone has the wrong type")
	f("no channel", "POST", k, sec, `{"recipient":{"phone":"4915112345678"},"whatsapp":{"type":"text","text":{"body":"hi"}}}`, 400, "channelId is required")
	f("sms channel type", "POST", k, sec, `{"channelId":"c1","channelType":"sms"}`, 400, "channelType must be whatsapp")
	f("no recipient", "POST", k, sec, `{"channelId":"c1","whatsapp":{"type":"text","text":{"body":"hi"}}}`, 400, "recipient.phone is required")
	f("phone with letters", "POST", k, sec, gallaboxText("49151abc", "hi"), 400, "recipient.phone must be a phone number")
	f("phone too short", "POST", k, sec, gallaboxText("123456", "hi"), 400, "recipient.phone must be a phone number")
	f("no whatsapp", "POST", k, sec, `{"channelId":"c1","recipient":{"phone":"4915112345678"}}`, 400, "whatsapp.type is required")
	f("image", "POST", k, sec, wa(`{"type":"image","image":{"link":"x"}}`), 400, "whatsapp.type must be one of text, template")
	f("text without body", "POST", k, sec, wa(`{"type":"text","text":{}}`), 400, "whatsapp.text.body is required")
	f("text too long", "POST", k, sec, gallaboxText("4915112345678", strings.Repeat("é", 4097)), 400, "at most 4096 characters")
	f("template without name", "POST", k, sec, wa(`{"type":"template","template":{"bodyValues":{"1":"Ana"}}}`), 400, "whatsapp.template.templateName is required")
	f("body value not a string", "POST", k, sec, wa(`{"type":"template","template":{"templateName":"t","bodyValues":{"1":5}}}`), 400, "has the wrong type")

	st := s.Stats()
	if st.GallaboxAccepted != 0 || len(s.GallaboxRequests()) != 0 || st.Accepted != 0 || len(st.Rejected) != 0 {
		t.Fatalf("refused sends were recorded: %+v", st)
	}
	if st.GallaboxRejected[401] != 3 || st.GallaboxRejected[405] != 1 || st.GallaboxRejected[400] != 13 {
		t.Fatalf("rejections by status: %v", st.GallaboxRejected)
	}
	for _, body := range []string{
		gallaboxText("+4915112345678", strings.Repeat("é", 4096)),
		wa(`{"type":"template","template":{"templateName":"booking_confirmation","bodyValues":{"1":"Ana","guest":"Jörg"},"headerValues":{"mediaUrl":"https://example.com/a.pdf","mediaName":"a.pdf"},"buttonValues":[{"index":0,"sub_type":"quick_reply","parameters":{"type":"payload","payload":"X"}}]}}`),
	} {
		if a := gallaboxPost(t, s, "POST", k, sec, body); a.status != 202 {
			t.Fatalf("%.60s: %d %s", body, a.status, a.body)
		}
	}
}

var gallaboxIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestGallaboxSuccess(t *testing.T) {
	s := startSim(t, Config{RecordRequests: 2, GallaboxAPIKey: "key-1", GallaboxAPISecret: "secret-1"})
	seen := map[string]bool{}
	var ids, bodies []string
	for i, phone := range []string{"4915112345678", "+4915112345679", "15550002000"} {
		body := gallaboxText(phone, "message "+string(rune('a'+i)))
		a := gallaboxPost(t, s, "POST", "key-1", "secret-1", body)
		if a.status != 202 || !gallaboxIDRE.MatchString(a.ans.ID) || seen[a.ans.ID] || a.ans.Status != "ACCEPTED" {
			t.Fatalf("send %d: %d %s", i, a.status, a.body)
		}
		seen[a.ans.ID] = true
		ids, bodies = append(ids, a.ans.ID), append(bodies, body)
	}
	reqs := s.GallaboxRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded, want the last 2", len(reqs))
	}
	for i, r := range reqs {
		if r.ID != ids[i+1] || string(r.Body) != bodies[i+1] || r.ChannelID != "629e0b6c3d6ad600044197a0" || r.Type != "text" ||
			time.Since(r.At) > time.Minute {
			t.Fatalf("recorded %d: %+v", i, r)
		}
	}
	if reqs[0].Phone != "+4915112345679" || reqs[1].Phone != "15550002000" {
		t.Fatalf("phones %q %q", reqs[0].Phone, reqs[1].Phone)
	}
	reqs[0].Body[0] = 'X' // a copy: the ring is untouched
	if s.GallaboxRequests()[0].Body[0] != '{' {
		t.Fatal("GallaboxRequests returned the ring's own buffer")
	}
	if st := s.Stats(); st.GallaboxAccepted != 3 || st.Accepted != 0 || st.SMSAccepted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGallaboxOutage(t *testing.T) {
	const metaBody = `{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	s := startSim(t, Config{})
	k, sec := DefaultGallaboxAPIKey, DefaultGallaboxAPISecret
	body := gallaboxText("4915112345678", "hi")
	down := func(a gallaboxAnswer) bool { return a.status == 503 && a.ans.StatusCode == 503 && a.ans.Message != "" }

	s.SetOutage(time.Now().Add(time.Minute))
	if a := gallaboxPost(t, s, "POST", k, sec, body); a.status != 202 {
		t.Fatalf("gallabox during meta's outage: %d %s", a.status, a.body)
	}
	s.SetOutage(time.Time{})
	s.SetGallaboxOutage(time.Now().Add(300 * time.Millisecond))
	if a := gallaboxPost(t, s, "POST", k, sec, body); !down(a) {
		t.Fatalf("gallabox during its outage: %d %s", a.status, a.body)
	}
	if a := send(t, s, metaBody); a.status != 200 {
		t.Fatalf("meta during gallabox's outage: %d %s", a.status, a.body)
	}
	if a := smsPost(t, "POST", smsURL(s, DefaultSMSAccountSID), smsBasic(DefaultSMSAccountSID, DefaultSMSAuthToken), smsForm("+4915112345678", "Hotel", "hi")); a.status != 201 {
		t.Fatalf("sms during gallabox's outage: %d %s", a.status, a.body)
	}
	time.Sleep(350 * time.Millisecond)
	if a := gallaboxPost(t, s, "POST", k, sec, body); a.status != 202 {
		t.Fatalf("gallabox after its outage: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", s.URL()+"/_sim/gallabox/outage?seconds=30", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/gallabox/outage: %d %s", a.status, a.body)
	}
	if a := gallaboxPost(t, s, "POST", k, sec, body); !down(a) {
		t.Fatalf("gallabox during /_sim/gallabox/outage: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", s.URL()+"/_sim/gallabox/outage?seconds=0", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/gallabox/outage end: %d", a.status)
	}
	if a := gallaboxPost(t, s, "POST", k, sec, body); a.status != 202 {
		t.Fatalf("gallabox after /_sim/gallabox/outage: %d %s", a.status, a.body)
	}
	if st := s.Stats(); st.GallaboxOutage != 2 || st.GallaboxAccepted != 3 || st.GallaboxRejected[503] != 2 || st.SMSAccepted != 1 || st.Outage != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAltConfigValidate(t *testing.T) {
	f := func(name string, cfg Config) {
		t.Helper()
		if _, err := New(cfg, nil); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	f("sms sid with slash", Config{SMSAccountSID: "AC/1"})
	f("sms token with space", Config{SMSAuthToken: "a b"})
	f("gallabox key with newline", Config{GallaboxAPIKey: "a\nb"})
	f("gallabox secret not ASCII", Config{GallaboxAPISecret: "sécret"})
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.cfg; c.SMSAccountSID != "ACsim0000000000000000000000000000" || c.SMSAuthToken != "sim-sms-token" ||
		c.GallaboxAPIKey != "sim-gallabox-key" || c.GallaboxAPISecret != "sim-gallabox-secret" {
		t.Fatalf("defaults: %+v", c)
	}
}
