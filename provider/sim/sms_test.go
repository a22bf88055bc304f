package sim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twilioAnswer is an SMS endpoint answer as the test client saw it.
type twilioAnswer struct {
	status int
	body   []byte
	err    struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Status   int    `json:"status"`
	}
	msg struct {
		SID          string  `json:"sid"`
		AccountSID   string  `json:"account_sid"`
		Status       string  `json:"status"`
		To           string  `json:"to"`
		From         string  `json:"from"`
		Body         string  `json:"body"`
		DateCreated  string  `json:"date_created"`
		NumSegments  string  `json:"num_segments"`
		URI          string  `json:"uri"`
		Direction    string  `json:"direction"`
		ErrorCode    *int    `json:"error_code"`
		Price        *string `json:"price"`
		APIVersion   string  `json:"api_version"`
		Subresources struct {
			Media string `json:"media"`
		} `json:"subresource_uris"`
	}
}

func smsBasic(sid, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(sid+":"+token))
}

func smsURL(s *Server, sid string) string {
	return s.URL() + "/2010-04-01/Accounts/" + sid + "/Messages.json"
}

// smsPost posts form to the SMS endpoint at url with auth.
func smsPost(t testing.TB, method, url, auth string, form url.Values) twilioAnswer {
	t.Helper()
	a := do(t, method, url, auth, "application/x-www-form-urlencoded", []byte(form.Encode()))
	ta := twilioAnswer{status: a.status, body: a.body}
	target := any(&ta.err)
	if a.status == 201 {
		target = &ta.msg
	}
	if err := json.Unmarshal(a.body, target); err != nil {
		t.Fatalf("%s %s: answer %d %s is not JSON: %v", method, url, a.status, a.body, err)
	}
	return ta
}

func smsForm(to, from, body string) url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"To": to, "From": from, "Body": body} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

func TestSMSValidation(t *testing.T) {
	s := startSim(t, Config{})
	auth := smsBasic(DefaultSMSAccountSID, DefaultSMSAuthToken)
	ok := smsForm("+4915112345678", "+15557770000", "hi")
	f := func(name, method, url, auth string, form url.Values, status, code int, message string) {
		t.Helper()
		a := smsPost(t, method, url, auth, form)
		if a.status != status || a.err.Code != code || a.err.Status != status || !strings.Contains(a.err.Message, message) ||
			a.err.MoreInfo != "https://www.twilio.com/docs/errors/"+strconv.Itoa(code) {
			t.Fatalf("%s: got %d %s, want %d code %d %q", name, a.status, a.body, status, code, message)
		}
	}
	u := smsURL(s, DefaultSMSAccountSID)
	f("no credentials", "POST", u, "", ok, 401, 20003, "No credentials provided")
	f("wrong token", "POST", u, smsBasic(DefaultSMSAccountSID, "nope"), ok, 401, 20003, "Authentication Error")
	f("wrong sid", "POST", u, smsBasic("ACother", DefaultSMSAuthToken), ok, 401, 20003, "Authentication Error")
	f("not basic", "POST", u, "Bearer "+DefaultSMSAuthToken, ok, 401, 20003, "No credentials provided")
	f("other account in path", "POST", smsURL(s, "ACother"), auth, ok, 404, 20404, "was not found")
	f("other resource", "POST", s.URL()+"/2010-04-01/Accounts/"+DefaultSMSAccountSID+"/Calls.json", auth, ok, 404, 20404, "Calls.json was not found")
	f("GET", "GET", u, auth, nil, 405, 20004, "Method not allowed")
	f("no To", "POST", u, auth, smsForm("", "+15557770000", "hi"), 400, 21604, "A 'To' phone number is required.")
	f("To without +", "POST", u, auth, smsForm("4915112345678", "+15557770000", "hi"), 400, 21211, "The 'To' number 4915112345678 is not a valid phone number.")
	f("To with letters", "POST", u, auth, smsForm("+49151abc", "+15557770000", "hi"), 400, 21211, "not a valid phone number")
	f("no From", "POST", u, auth, smsForm("+4915112345678", "", "hi"), 400, 21603, "A 'From' phone number is required.")
	f("From with dash", "POST", u, auth, smsForm("+4915112345678", "Hotel-Adlon", "hi"), 400, 21212, "alphanumeric sender ID")
	f("From too long", "POST", u, auth, smsForm("+4915112345678", "HotelAdlonBerlin", "hi"), 400, 21212, "is not a valid phone number")
	f("From all digits", "POST", u, auth, smsForm("+4915112345678", "12345", "hi"), 400, 21212, "is not a valid phone number")
	f("no Body", "POST", u, auth, smsForm("+4915112345678", "+15557770000", ""), 400, 21602, "Message body is required.")
	f("Body too long", "POST", u, auth, smsForm("+4915112345678", "+15557770000", strings.Repeat("ü", 1601)), 400, 21617, "exceeds the 1600 character limit")

	// Refused sends change nothing, and are not Meta's refusals.
	st := s.Stats()
	if st.SMSAccepted != 0 || len(s.SMSRequests()) != 0 || st.Accepted != 0 || len(st.Rejected) != 0 {
		t.Fatalf("refused SMS were recorded: %+v", st)
	}
	if st.SMSRejected[20003] != 4 || st.SMSRejected[21211] != 2 || st.SMSRejected[21212] != 3 || st.SMSRejected[20404] != 2 {
		t.Fatalf("SMS rejections by code: %v", st.SMSRejected)
	}
	// The limits themselves are accepted.
	if a := smsPost(t, "POST", u, auth, smsForm("+4915112345678", "Hotel Adlon", strings.Repeat("ü", 1600))); a.status != 201 {
		t.Fatalf("1600 characters from an alphanumeric sender: %d %s", a.status, a.body)
	}
}

var smsSIDRE = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

func TestSMSSuccess(t *testing.T) {
	s := startSim(t, Config{RecordRequests: 3, SMSAccountSID: "AC0123456789abcdef0123456789abcdef", SMSAuthToken: "tok"})
	u := smsURL(s, "AC0123456789abcdef0123456789abcdef")
	auth := smsBasic("AC0123456789abcdef0123456789abcdef", "tok")
	bodies := []string{"Your room 412 is ready.", strings.Repeat("x", 161), "Grüße aus Berlin", strings.Repeat("é", 71), "a & b = 100% \"+\"\n"}
	segments := []string{"1", "2", "1", "2", "1"}
	seen := map[string]bool{}
	var sids []string
	for i, body := range bodies {
		before := time.Now().Add(-time.Second)
		a := smsPost(t, "POST", u, auth, smsForm("+4915112345678", "+15557770000", body))
		m := a.msg
		if a.status != 201 || !smsSIDRE.MatchString(m.SID) || seen[m.SID] || m.Status != "queued" || m.Body != body ||
			m.To != "+4915112345678" || m.From != "+15557770000" || m.AccountSID != "AC0123456789abcdef0123456789abcdef" ||
			m.Direction != "outbound-api" || m.ErrorCode != nil || m.Price != nil || m.APIVersion != "2010-04-01" ||
			m.NumSegments != segments[i] {
			t.Fatalf("send %d: %d %s", i, a.status, a.body)
		}
		if m.URI != "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/"+m.SID+".json" ||
			m.Subresources.Media != "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/"+m.SID+"/Media.json" {
			t.Fatalf("uris: %s", a.body)
		}
		at, err := time.Parse(time.RFC1123Z, m.DateCreated)
		if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) || !strings.HasSuffix(m.DateCreated, "+0000") {
			t.Fatalf("date_created %q: %v", m.DateCreated, err)
		}
		seen[m.SID] = true
		sids = append(sids, m.SID)
	}
	reqs := s.SMSRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d SMS recorded, want the last 3", len(reqs))
	}
	for i, r := range reqs {
		if r.SID != sids[i+2] || r.Body != bodies[i+2] || r.To != "+4915112345678" || r.From != "+15557770000" ||
			r.AccountSID != "AC0123456789abcdef0123456789abcdef" || time.Since(r.At) > time.Minute {
			t.Fatalf("recorded %d: %+v", i, r)
		}
	}
	if st := s.Stats(); st.SMSAccepted != 5 || st.Accepted != 0 || len(st.SMSRejected) != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Recording can be switched off; sends are still counted.
	s = startSim(t, Config{RecordRequests: -1})
	if a := smsPost(t, "POST", smsURL(s, DefaultSMSAccountSID), smsBasic(DefaultSMSAccountSID, DefaultSMSAuthToken), smsForm("+4915112345678", "Hotel", "hi")); a.status != 201 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if len(s.SMSRequests()) != 0 || s.Stats().SMSAccepted != 1 {
		t.Fatalf("RecordRequests -1 recorded %v", s.SMSRequests())
	}
}

func TestSMSOutage(t *testing.T) {
	const metaBody = `{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}`
	s := startSim(t, Config{})
	u, auth := smsURL(s, DefaultSMSAccountSID), smsBasic(DefaultSMSAccountSID, DefaultSMSAuthToken)
	form := smsForm("+4915112345678", "+15557770000", "hi")
	smsDown := func(a twilioAnswer) bool { return a.status == 503 && a.err.Code == 20503 && a.err.Status == 503 }

	// Meta down, SMS up: the fallback works.
	s.SetOutage(time.Now().Add(time.Minute))
	if a := send(t, s, metaBody); a.status != 503 {
		t.Fatalf("meta during its outage: %d", a.status)
	}
	if a := smsPost(t, "POST", u, auth, form); a.status != 201 {
		t.Fatalf("sms during meta's outage: %d %s", a.status, a.body)
	}
	s.SetOutage(time.Time{})

	// SMS down, Meta up.
	s.SetSMSOutage(time.Now().Add(300 * time.Millisecond))
	if a := smsPost(t, "POST", u, auth, form); !smsDown(a) {
		t.Fatalf("sms during its outage: %d %s", a.status, a.body)
	}
	if a := send(t, s, metaBody); a.status != 200 {
		t.Fatalf("meta during the sms outage: %d %s", a.status, a.body)
	}
	time.Sleep(350 * time.Millisecond)
	if a := smsPost(t, "POST", u, auth, form); a.status != 201 {
		t.Fatalf("sms after its outage: %d %s", a.status, a.body)
	}
	// Over HTTP.
	if a := do(t, "POST", s.URL()+"/_sim/sms/outage?seconds=30", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/sms/outage: %d %s", a.status, a.body)
	}
	if a := smsPost(t, "POST", u, auth, form); !smsDown(a) {
		t.Fatalf("sms during /_sim/sms/outage: %d %s", a.status, a.body)
	}
	if a := do(t, "POST", s.URL()+"/_sim/sms/outage?seconds=-1", "", "", nil); a.status != 400 {
		t.Fatalf("negative seconds: %d", a.status)
	}
	if a := do(t, "POST", s.URL()+"/_sim/sms/outage?seconds=0", "", "", nil); a.status != 200 {
		t.Fatalf("/_sim/sms/outage end: %d", a.status)
	}
	if a := smsPost(t, "POST", u, auth, form); a.status != 201 {
		t.Fatalf("sms after /_sim/sms/outage: %d %s", a.status, a.body)
	}
	if st := s.Stats(); st.SMSOutage != 2 || st.SMSAccepted != 3 || st.SMSRejected[20503] != 2 || st.Outage != 1 || st.Accepted != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Meta's configured windows leave SMS alone; refuse mode applies to both.
	s = startSim(t, Config{Outages: []Window{{Start: 0, End: time.Minute}}, OutageMode: OutageRefuse})
	if a := smsPost(t, "POST", smsURL(s, DefaultSMSAccountSID), auth, form); a.status != 201 {
		t.Fatalf("sms during meta's window: %d %s", a.status, a.body)
	}
	s.SetSMSOutage(time.Now().Add(time.Minute))
	req, _ := http.NewRequest("POST", smsURL(s, DefaultSMSAccountSID), strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("refuse mode answered %d", resp.StatusCode)
	}
}
