package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/sms"
)

// providerError sends m and returns the *provider.Error it must fail with.
func providerError(t *testing.T, p provider.Provider, m *message.Message) *provider.Error {
	t.Helper()
	_, err := p.Send(context.Background(), m)
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%s: got %v, want a provider error", p.Name(), err)
	}
	return pe
}

// TestSMSClient sends through provider/sms's client, as the gateway's
// fallback does, and checks what the simulator received and the classes
// of its refusals.
func TestSMSClient(t *testing.T) {
	s := startSim(t, Config{})
	client := func(token string) *sms.Client {
		c, err := sms.New(sms.Config{BaseURL: s.URL(), AccountSID: DefaultSMSAccountSID, AuthToken: token, Timeout: 5 * time.Second,
			From: map[string]string{"+15550001000": "Hotel Adlon"}, DefaultFrom: "+15557770000"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(DefaultSMSAuthToken)
	m := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeText,
		Content: []byte(`{"body":"Zimmer 412 ist bereit – 100% \"fertig\" & sauber.","preview_url":false}`)}
	res, err := c.Send(context.Background(), m)
	if err != nil || !smsSIDRE.MatchString(res.ProviderMessageID) {
		t.Fatalf("send: %+v %v", res, err)
	}
	other := *m
	other.Sender = "+15550009999"
	if _, err := c.Send(context.Background(), &other); err != nil {
		t.Fatal(err)
	}
	reqs := s.SMSRequests()
	if len(reqs) != 2 || reqs[0].SID != res.ProviderMessageID || reqs[0].To != "+4915112345678" || reqs[0].From != "Hotel Adlon" ||
		reqs[0].Body != `Zimmer 412 ist bereit – 100% "fertig" & sauber.` || reqs[1].From != "+15557770000" {
		t.Fatalf("recorded %+v", reqs)
	}

	if pe := providerError(t, client("wrong"), m); pe.Class != provider.ClassStopSender || pe.Code != 20003 || pe.HTTPStatus != 401 {
		t.Fatalf("bad token: %+v", pe)
	}
	image := *m
	image.Type, image.Content = message.TypeImage, []byte(`{"link":"https://example.com/a.jpg"}`)
	if pe := providerError(t, c, &image); pe.Class != provider.ClassPermanent || !strings.Contains(pe.Title, "sms carries text only") {
		t.Fatalf("image: %+v", pe)
	}
	// Meta down does not touch SMS; SMS down is a retry.
	s.SetOutage(time.Now().Add(time.Minute))
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatalf("during meta's outage: %v", err)
	}
	s.SetSMSOutage(time.Now().Add(time.Minute))
	if pe := providerError(t, c, m); pe.Class != provider.ClassRetry || pe.Code != 20503 || pe.HTTPStatus != 503 {
		t.Fatalf("sms outage: %+v", pe)
	}
	if st := s.Stats(); st.SMSAccepted != 3 || st.SMSRejected[20003] != 1 || st.SMSOutage != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGallaboxClient sends through provider/gallabox's client and checks
// that the simulator takes its bodies as they are and that its refusals
// get the right classes.
func TestGallaboxClient(t *testing.T) {
	s := startSim(t, Config{})
	client := func(secret string) *gallabox.Client {
		c, err := gallabox.New(gallabox.Config{BaseURL: s.URL(), APIKey: DefaultGallaboxAPIKey, APISecret: secret, Timeout: 5 * time.Second,
			ChannelID: map[string]string{"+15550001000": "629e0b6c3d6ad600044197a0"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(DefaultGallaboxAPISecret)
	text := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeText,
		Content: []byte(`{"body":"Your room 412 is ready.","preview_url":false}`)}
	tmpl := &message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeTemplate,
		Content: []byte(`{"name":"booking_confirmation","language":{"code":"en_US"},"components":[` +
			`{"type":"header","parameters":[{"type":"document","document":{"link":"https://example.com/inv/412.pdf"}}]},` +
			`{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"412"}]},` +
			`{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"CONFIRM"}]}]}`)}
	var ids []string
	for _, m := range []*message.Message{text, tmpl} {
		res, err := c.Send(context.Background(), m)
		if err != nil || !gallaboxIDRE.MatchString(res.ProviderMessageID) {
			t.Fatalf("%s: %+v %v", m.Type, res, err)
		}
		ids = append(ids, res.ProviderMessageID)
	}
	reqs := s.GallaboxRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	for i, m := range []*message.Message{text, tmpl} {
		want, err := gallabox.AppendSendBody(nil, "629e0b6c3d6ad600044197a0", m)
		if err != nil {
			t.Fatal(err)
		}
		if r := reqs[i]; r.ID != ids[i] || string(r.Body) != string(want) || r.Phone != "4915112345678" || r.Type != string(m.Type) {
			t.Fatalf("recorded %d: %+v\nwant body %s", i, r, want)
		}
	}

	if pe := providerError(t, client("wrong"), text); pe.Class != provider.ClassStopSender || pe.HTTPStatus != 401 || pe.Title != "Invalid apiKey or apiSecret" {
		t.Fatalf("bad secret: %+v", pe)
	}
	long := *text
	long.Content = []byte(`{"body":"` + strings.Repeat("x", 4097) + `"}`)
	if pe := providerError(t, c, &long); pe.Class != provider.ClassPermanent || pe.HTTPStatus != 400 || !strings.Contains(pe.Title, "at most 4096") {
		t.Fatalf("too long: %+v", pe)
	}
	s.SetOutage(time.Now().Add(time.Minute))
	if _, err := c.Send(context.Background(), text); err != nil {
		t.Fatalf("during meta's outage: %v", err)
	}
	s.SetGallaboxOutage(time.Now().Add(time.Minute))
	if pe := providerError(t, c, text); pe.Class != provider.ClassRetry || pe.HTTPStatus != 503 {
		t.Fatalf("gallabox outage: %+v", pe)
	}
	if st := s.Stats(); st.GallaboxAccepted != 3 || st.GallaboxRejected[401] != 1 || st.GallaboxRejected[400] != 1 || st.GallaboxOutage != 1 {
		t.Fatalf("stats %+v", st)
	}
}
