package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/sim"
)

// The numbers of the provider end-to-end test: one Gallabox sends for,
// one ChatApp sends for; neither has Meta.
const (
	e2eGallaboxSender = "+15550003000"
	e2eChatAppSender  = "+15550003001"
	e2eChatAppCode    = "744c4b5c79c9432497a075bdfca3a1b2"
)

// startProviderGateway starts the gateway (API, dispatcher, processor)
// with a tenant whose numbers go through Gallabox and ChatApp, both
// played by a simulator that posts their status callbacks back.
func startProviderGateway(t *testing.T) *testGateway {
	t.Helper()
	g := testFlags(t, "api,dispatcher,inbound")
	s := startTestSim(t, sim.Config{
		Addr: "127.0.0.1:0", AccessToken: devSimToken, AppSecret: devAppSecret,
		StatusDelays:          sim.Delays{Sent: 50 * time.Millisecond, Delivered: 150 * time.Millisecond, Read: 300 * time.Millisecond},
		GallaboxWebhookURL:    "http://" + g.httpAddr + "/webhooks/gallabox",
		GallaboxWebhookSecret: devGallaboxWebhookSecret,
		ChatAppWebhookURL:     "http://" + g.httpAddr + "/webhooks/chatapp?token=" + devChatAppWebhookToken,
	})
	fc := &fileConfig{
		Tenants: []tenantConfig{{ID: devTenant, Senders: []string{e2eGallaboxSender, e2eChatAppSender},
			Tokens: []tokenConfig{{Token: devStaffToken, Role: ingest.RoleStaff}}}},
		Rates: rateConfig{DefaultMPS: 80},
	}
	fc.Gallabox.Accounts = []gallaboxAccount{{Name: "gallabox", BaseURL: s.URL(), APIKey: sim.DefaultGallaboxAPIKey, APISecret: sim.DefaultGallaboxAPISecret,
		Channels: map[string]string{e2eGallaboxSender: "dev-channel"}, WebhookSecret: devGallaboxWebhookSecret}}
	fc.ChatApp.Accounts = []chatappAccount{{Name: "chatapp", Endpoint: s.URL(), AccessKeyID: sim.DefaultChatAppAccessKeyID,
		AccessKeySecret: sim.DefaultChatAppAccessKeySecret, Numbers: []string{e2eChatAppSender}, WebhookToken: devChatAppWebhookToken,
		TemplateCodes: map[string]map[string]string{"welcome_checkin": {"en": e2eChatAppCode}}}}
	if err := fc.validate(); err != nil {
		t.Fatal(err)
	}
	return runTestGateway(t, g, s, fc)
}

// walkToRead polls a message's status until it is read and returns the
// statuses seen in order ("sending" aside) and the last answer.
func (tg *testGateway) walkToRead(id string) ([]string, map[string]any) {
	tg.t.Helper()
	var seen []string
	var st map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_, st = tg.call("GET", "/api/v1/whatsapp/messages/"+id+"/status", "")
		s, _ := st["status"].(string)
		if s != "sending" && (len(seen) == 0 || seen[len(seen)-1] != s) {
			seen = append(seen, s)
		}
		if s == "read" || s == "failed" {
			return seen, st
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg.t.Fatalf("message %s: statuses %v, never read: %v", id, seen, st)
	return nil, nil
}

func (tg *testGateway) post(path string, body []byte, hdr ...string) int {
	tg.t.Helper()
	req, _ := http.NewRequest("POST", tg.api+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tg.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestGallaboxAndChatAppReachRead is the secondary providers' whole path:
// API → dispatcher → Gallabox or ChatApp adapter → simulator → the
// provider's own status callbacks, verified as it signs them → processor
// → state, until GET …/status says read.
func TestGallaboxAndChatAppReachRead(t *testing.T) {
	tg := startProviderGateway(t)
	const guest = "+1234567890"
	send := func(from string) string {
		t.Helper()
		code, v := tg.call("POST", "/api/v1/whatsapp/templates/send", `{"guest_phone":"`+guest+`","from":"`+from+`","template_name":"welcome_checkin","language":"en",`+
			`"parameters":{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel","room_number":"205","checkin_time":"3:00 PM","checkout_date":"January 18, 2024"}}`)
		if code != 202 || v["status"] != "queued" {
			t.Fatalf("send from %s: %d %v", from, code, v)
		}
		return v["message_id"].(string)
	}
	gb, ca := send(e2eGallaboxSender), send(e2eChatAppSender)

	rank := map[string]int{"queued": 0, "sent": 1, "delivered": 2, "read": 3}
	for _, m := range []struct {
		name, id, provider string
	}{
		// Gallabox reports no "sent": its accepting the send is it.
		{"gallabox", gb, "gallabox"},
		{"chatapp", ca, "chatapp"},
	} {
		seen, st := tg.walkToRead(m.id)
		if st["status"] != "read" || st["sent_at"] == nil || st["delivered_at"] == nil || st["read_at"] == nil || st["failure_reason"] != nil {
			t.Fatalf("%s: %v", m.name, st)
		}
		// Forward only, whatever order the callbacks came in (and
		// however fast: a poll may miss a status).
		for i := 1; i < len(seen); i++ {
			if r, ok := rank[seen[i]]; !ok || r <= rank[seen[i-1]] {
				t.Fatalf("%s: statuses seen %v", m.name, seen)
			}
		}
		state, err := tg.gw.store.State(context.Background(), m.id)
		if err != nil || state.Provider != m.provider || state.ProviderMessageID != st["provider_message_id"] {
			t.Fatalf("%s: state provider %q id %q (%v), status answer %v", m.name, state.Provider, state.ProviderMessageID, err, st["provider_message_id"])
		}
	}

	// What each provider got is its own request shape.
	gr := tg.sim.GallaboxRequests()
	if len(gr) != 1 {
		t.Fatalf("%d gallabox sends", len(gr))
	}
	var gbody struct {
		WhatsApp struct {
			Template struct {
				TemplateName string            `json:"templateName"`
				Language     string            `json:"language"`
				BodyValues   map[string]string `json:"bodyValues"`
			} `json:"template"`
		} `json:"whatsapp"`
	}
	if err := json.Unmarshal(gr[0].Body, &gbody); err != nil || gbody.WhatsApp.Template.TemplateName != "welcome_checkin" ||
		gbody.WhatsApp.Template.Language != "en" || gbody.WhatsApp.Template.BodyValues["guest_name"] != "John Smith" {
		t.Fatalf("gallabox body %s", gr[0].Body)
	}
	cr := tg.sim.ChatAppRequests()
	if len(cr) != 1 {
		t.Fatalf("%d chatapp sends", len(cr))
	}
	if p := cr[0].Params; p["TemplateCode"] != e2eChatAppCode || p["TemplateName"] != "welcome_checkin" || p["Language"] != "en" ||
		p["From"] != e2eChatAppSender[1:] || p["To"] != guest[1:] || !strings.Contains(p["TemplateParams"], `"room_number":"205"`) {
		t.Fatalf("chatapp params %v", p)
	}

	// Callbacks the gateway cannot verify are refused and change nothing;
	// one for an id no message has is taken and harms nothing.
	_, before := tg.call("GET", "/api/v1/whatsapp/messages/"+gb+"/status", "")
	gbID := before["provider_message_id"].(string)
	failed := []byte(`{"id":"` + gbID + `","status":"failed","timestamp":"1722247764","errors":[{"code":131026,"title":"Message undeliverable"}]}`)
	if c := tg.post("/webhooks/gallabox", failed, gallabox.EventHeader, gallabox.EventStatusFailed); c != 401 {
		t.Fatalf("unsigned gallabox callback: %d", c)
	}
	if c := tg.post("/webhooks/gallabox", failed, gallabox.SignatureHeader, string(gallabox.AppendSignature(nil, failed, []byte("guessed")))); c != 401 {
		t.Fatalf("forged gallabox callback: %d", c)
	}
	if c := tg.post("/webhooks/chatapp?token=not-the-token-0000", []byte(`[{"MessageId":"x","Status":"Failed"}]`)); c != 401 {
		t.Fatalf("chatapp callback with another token: %d", c)
	}
	unknown := []byte(`{"id":"000000000000000000000000","status":"read","timestamp":"1722247764"}`)
	if c := tg.post("/webhooks/gallabox", unknown, gallabox.SignatureHeader, string(gallabox.AppendSignature(nil, unknown, []byte(devGallaboxWebhookSecret)))); c != 200 {
		t.Fatalf("gallabox callback for an unknown id: %d", c)
	}
	if c := tg.post("/webhooks/chatapp?token="+devChatAppWebhookToken, []byte(`[{"MessageId":"no-such-id","Status":"Read","Timestamp":1722247764000}]`)); c != 200 {
		t.Fatalf("chatapp callback for an unknown id: %d", c)
	}
	// The unknown ids are parked, as a status that beat its send is.
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := tg.gw.store.OrphanCount(context.Background()); n < 2; n, _ = tg.gw.store.OrphanCount(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatalf("%d statuses parked, want the 2 unknown ones", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{gb, ca} {
		_, after := tg.call("GET", "/api/v1/whatsapp/messages/"+id+"/status", "")
		if after["status"] != "read" || after["failure_reason"] != nil {
			t.Fatalf("%s after the refused callbacks: %v", id, after)
		}
	}
	if st := tg.sim.Stats(); st.CallbacksPosted != 5 || st.CallbacksDropped != 0 || st.ChatAppAccepted != 1 || st.GallaboxAccepted != 1 {
		t.Fatalf("simulator stats: %+v", st)
	}
}
