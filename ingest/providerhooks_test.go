package ingest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/provider/gallabox"
)

// The accounts of the provider webhook tests: two Gallabox accounts (the
// second named otherwise) and one ChatApp account.
const (
	gallaboxSecret  = "gb-webhook-secret"
	gallabox2Secret = "gb2-webhook-secret"
	chatappToken    = "ca-webhook-token-0123456789"
)

func withProviderHooks(c *Config) {
	c.ProviderWebhooks = []ProviderWebhook{
		{Kind: KindGallabox, Name: "gallabox", Secret: gallaboxSecret},
		{Kind: KindGallabox, Name: "gallabox-eu", Secret: gallabox2Secret},
		{Kind: KindChatApp, Name: "chatapp", Secret: chatappToken},
	}
}

// postGallabox posts body with the x-event-name event, signed with secret
// (no signature when secret is "").
func (h *harness) postGallabox(body []byte, secret, event string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+"/webhooks/gallabox", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if event != "" {
		req.Header.Set(gallabox.EventHeader, event)
	}
	if secret != "" {
		req.Header.Set(gallabox.SignatureHeader, string(gallabox.AppendSignature(nil, body, []byte(secret))))
	}
	return h.send(req)
}

// postChatApp posts body to the callback URL with token (none when "").
func (h *harness) postChatApp(body, token string) (int, string) {
	h.t.Helper()
	url := h.base + "/webhooks/chatapp"
	if token != "" {
		url += "?token=" + token
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return h.send(req)
}

func (h *harness) send(req *http.Request) (int, string) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkOpenAPI(h.t, req.Method, req.URL.RequestURI(), resp.StatusCode, resp.Header.Get("Content-Type"), b)
	return resp.StatusCode, string(b)
}

// TestProviderWebhooksAreVerified: only a callback verified with one of
// the accounts' secrets is kept; everything else is refused (401, 400,
// 405) or ignored and changes nothing, and no answer repeats a secret.
func TestProviderWebhooksAreVerified(t *testing.T) {
	h := newHarness(t, withProviderHooks)
	read := webhooktest.GallaboxStatus("66a7699b87b97af3ec4f2c7c", "read", 1722247579)
	tampered := append([]byte(nil), read...)
	tampered[10] = 'X'
	push := "[" + webhooktest.ChatAppReport("61851ccb2f1365b16aee0001", "Delivered", 1700000000000) + "]"
	for _, tc := range []struct {
		name string
		post func() (int, string)
		code int
		kept bool
	}{
		{"gallabox unsigned", func() (int, string) { return h.postGallabox(read, "", gallabox.EventStatusReceived) }, 401, false},
		{"gallabox signed with another secret", func() (int, string) { return h.postGallabox(read, "guessed", gallabox.EventStatusReceived) }, 401, false},
		{"gallabox signed with a chatapp token", func() (int, string) { return h.postGallabox(read, chatappToken, gallabox.EventStatusReceived) }, 401, false},
		{"gallabox tampered body", func() (int, string) {
			req, _ := http.NewRequest("POST", h.base+"/webhooks/gallabox", bytes.NewReader(tampered))
			req.Header.Set(gallabox.SignatureHeader, string(gallabox.AppendSignature(nil, read, []byte(gallaboxSecret))))
			return h.send(req)
		}, 401, false},
		{"gallabox GET", func() (int, string) {
			req, _ := http.NewRequest("GET", h.base+"/webhooks/gallabox", nil)
			return h.send(req)
		}, 405, false},
		{"gallabox signed, not JSON", func() (int, string) { return h.postGallabox([]byte(`{"id":`), gallaboxSecret, "") }, 400, false},
		{"gallabox signed, an array", func() (int, string) { return h.postGallabox([]byte(`[]`), gallaboxSecret, "") }, 400, false},
		{"gallabox signed, another event", func() (int, string) { return h.postGallabox(read, gallaboxSecret, "Contact.Created") }, 200, false},
		{"chatapp without token", func() (int, string) { return h.postChatApp(push, "") }, 401, false},
		{"chatapp with another token", func() (int, string) { return h.postChatApp(push, "ca-webhook-token-0123456788") }, 401, false},
		{"chatapp with a gallabox secret", func() (int, string) { return h.postChatApp(push, gallaboxSecret) }, 401, false},
		{"chatapp GET", func() (int, string) {
			req, _ := http.NewRequest("GET", h.base+"/webhooks/chatapp?token="+chatappToken, nil)
			return h.send(req)
		}, 405, false},
		{"chatapp, a string", func() (int, string) { return h.postChatApp(`"Read"`, chatappToken) }, 400, false},
		{"chatapp, not JSON", func() (int, string) { return h.postChatApp(`[{"MessageId":`, chatappToken) }, 400, false},
		// Accepted: stored for the processor (none runs in this test).
		{"gallabox signed", func() (int, string) { return h.postGallabox(read, gallaboxSecret, gallabox.EventStatusReceived) }, 200, true},
		{"gallabox signed, the second account, no event header", func() (int, string) { return h.postGallabox(read, gallabox2Secret, "") }, 200, true},
		{"gallabox failed event, lower case", func() (int, string) {
			return h.postGallabox(webhooktest.GallaboxStatus("a1", "failed", 1), gallaboxSecret, "message.wa.status.failed")
		}, 200, true},
		{"chatapp with its token", func() (int, string) { return h.postChatApp(push, chatappToken) }, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.inboundLen()
			code, body := tc.post()
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, body, tc.code)
			}
			if kept := h.inboundLen() > before; kept != tc.kept {
				t.Fatalf("kept %v, want %v", kept, tc.kept)
			}
			for _, secret := range []string{gallaboxSecret, gallabox2Secret, chatappToken} {
				if strings.Contains(body, secret) {
					t.Fatalf("the answer repeats a secret: %s", body)
				}
			}
			if code == 401 {
				var v struct{ Error struct{ Code string } }
				if json.Unmarshal([]byte(body), &v) != nil || v.Error.Code != "UNAUTHORIZED" {
					t.Fatalf("not the API's error format: %s", body)
				}
			}
			if tc.name == "chatapp with its token" && body != `{"code":0,"msg":"success"}` {
				t.Fatalf("chatapp's answer %s", body)
			}
		})
	}
}

// TestProviderWebhooksNeedConfiguredAccounts: a gateway without Gallabox
// or ChatApp accounts refuses their callbacks, however they are signed.
func TestProviderWebhooksNeedConfiguredAccounts(t *testing.T) {
	h := newHarness(t)
	if c, body := h.postGallabox(webhooktest.GallaboxStatus("a1", "read", 1), gallaboxSecret, ""); c != 401 || !strings.Contains(body, "no Gallabox webhook secret") {
		t.Fatalf("gallabox: %d %s", c, body)
	}
	if c, body := h.postChatApp("["+webhooktest.ChatAppReport("m1", "Read", 1)+"]", chatappToken); c != 401 || !strings.Contains(body, "no ChatApp webhook token") {
		t.Fatalf("chatapp: %d %s", c, body)
	}
	if n := h.inboundLen(); n != 0 {
		t.Fatalf("%d bodies kept", n)
	}
}

func TestNewProviderHooksRefusesBadAccounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   []ProviderWebhook
	}{
		{"no secret", []ProviderWebhook{{Kind: KindGallabox, Name: "gallabox"}}},
		{"no name", []ProviderWebhook{{Kind: KindGallabox, Secret: "s"}}},
		{"a slash in the name", []ProviderWebhook{{Kind: KindChatApp, Name: "chat/app", Secret: "s"}}},
		{"a name twice", []ProviderWebhook{{Kind: KindChatApp, Name: "x", Secret: "s"}, {Kind: KindGallabox, Name: "x", Secret: "t"}}},
		{"an unknown kind", []ProviderWebhook{{Kind: "meta", Name: "meta", Secret: "s"}}},
	} {
		if _, err := newProviderHooks(tc.ws); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestProviderWebhooksAreSizeCapped: a callback over MaxWebhookBytes is
// refused before it is read (413) and nothing is kept, as Meta's are.
func TestProviderWebhooksAreSizeCapped(t *testing.T) {
	h := newHarness(t, withProviderHooks, func(c *Config) { c.MaxWebhookBytes = 4 << 10 })
	big := `{"id":"a1","status":"read","pad":"` + strings.Repeat("x", 8<<10) + `"}`
	if c, body := h.postGallabox([]byte(big), gallaboxSecret, ""); c != 413 {
		t.Fatalf("gallabox: %d %s", c, body)
	}
	if c, body := h.postChatApp("["+big+"]", chatappToken); c != 413 {
		t.Fatalf("chatapp: %d %s", c, body)
	}
	if n := h.inboundLen(); n != 0 {
		t.Fatalf("%d bodies kept", n)
	}
	// Just under the cap is taken.
	if c, body := h.postChatApp("["+webhooktest.ChatAppReport("m1", "Read", 1)+"]", chatappToken); c != 200 {
		t.Fatalf("small push: %d %s", c, body)
	}
}
