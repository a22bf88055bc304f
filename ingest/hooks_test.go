package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// seedWebhookConfig is seed 001's configure call.
const seedWebhookConfig = `{"webhook_url":"https://your-hotel.com/webhooks/whatsapp","events":["message_delivered","message_read","message_failed","inbound_message","media_received"],"verify_token":"your_verification_token","retry_config":{"max_retries":3,"retry_delay":5000}}`

func TestWebhookConfiguration(t *testing.T) {
	h := newHarness(t)
	const path = "/api/v1/whatsapp/webhooks/configure"
	f := func(method, path, token, body string, wantCode int, wantErr string) map[string]any {
		t.Helper()
		code, v, _ := h.do(method, path, token, body)
		if code != wantCode || (wantErr != "" && errCode(t, v) != wantErr) {
			t.Fatalf("%s %s %s: %d %v", method, path, body, code, v)
		}
		return v
	}
	// Admins only.
	f("POST", path, staffToken, seedWebhookConfig, 403, "FORBIDDEN")
	f("GET", "/api/v1/whatsapp/webhooks", staffToken, "", 403, "FORBIDDEN")
	f("POST", "/api/v1/whatsapp/webhooks/test", staffToken, "", 403, "FORBIDDEN")
	f("DELETE", "/api/v1/whatsapp/webhooks", staffToken, "", 403, "FORBIDDEN")
	f("GET", "/api/v1/whatsapp/webhooks", adminToken, "", 404, "NOT_FOUND")
	// The seed's call as written.
	v := f("POST", path, adminToken, seedWebhookConfig, 200, "")
	secret, _ := v["signing_secret"].(string)
	if v["webhook_url"] != "https://your-hotel.com/webhooks/whatsapp" || len(secret) != 64 ||
		v["retry_config"].(map[string]any)["max_retries"] != 3.0 || len(v["events"].([]any)) != 5 {
		t.Fatalf("configured %v", v)
	}
	v = f("GET", "/api/v1/whatsapp/webhooks", adminToken, "", 200, "")
	if v["signing_secret"] == secret || v["deliveries"].(map[string]any)["delivered"] != 0.0 {
		t.Fatalf("GET shows %v", v)
	}
	// Reconfiguring keeps the secret unless a new one is given.
	v = f("POST", path, adminToken, `{"webhook_url":"https://pms.example/hook","events":["message_read"]}`, 200, "")
	if v["signing_secret"] != secret {
		t.Fatal("the secret changed without being asked")
	}
	// Bad input, each naming its field.
	for body, field := range map[string]string{
		`{"events":["message_read"]}`:                                                                            "webhook_url",
		`{"webhook_url":"ftp://x/y","events":["message_read"]}`:                                                  "webhook_url",
		`{"webhook_url":"http://pms.example/hook","events":["message_read"]}`:                                    "webhook_url",
		`{"webhook_url":"https://pms.example/hook","events":[]}`:                                                 "events",
		`{"webhook_url":"https://pms.example/hook","events":["message_eaten"]}`:                                  "events[0]",
		`{"webhook_url":"https://pms.example/hook","events":["message_read"],"retry_config":{"max_retries":11}}`: "retry_config.max_retries",
		`{"webhook_url":"https://pms.example/hook","events":["message_read"],"retry_config":{"retry_delay":5}}`:  "retry_config.retry_delay",
		`{"webhook_url":"https://pms.example/hook","events":["message_read"],"secret":"short"}`:                  "secret",
	} {
		v := f("POST", path, adminToken, body, 400, "INVALID_REQUEST")
		if errDetails(v)["field"] != field {
			t.Fatalf("%s: field %v, want %s", body, errDetails(v)["field"], field)
		}
	}
	// Another tenant has no webhook.
	f("DELETE", "/api/v1/whatsapp/webhooks", adminToken, "", 204, "")
	f("GET", "/api/v1/whatsapp/webhooks", adminToken, "", 404, "NOT_FOUND")
}

// allowLoopback lets webhooks reach this machine, as `wagate dev` does:
// the tests' receivers listen on loopback.
func allowLoopback(c *Config) { c.WebhookAllow = netguard.Loopback() }

func TestWebhookTestDelivery(t *testing.T) {
	h := newHarness(t, allowLoopback)
	var status atomic.Int32
	status.Store(200)
	var secret atomic.Value
	secret.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if message.VerifyWebhook(secret.Load().(string), r.Header.Get("X-Wagate-Signature-256"), body, time.Now(), message.WebhookTolerance) != nil ||
			r.Header.Get("X-Wagate-Event") != "webhook_test" || r.Header.Get("X-Wagate-Verify-Token") != "tok" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "not today")
	}))
	defer srv.Close()
	code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/configure", adminToken,
		`{"webhook_url":"`+srv.URL+`/hook","events":["inbound_message"],"verify_token":"tok"}`)
	if code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	secret.Store(v["signing_secret"].(string))
	code, v, _ = h.do("POST", "/api/v1/whatsapp/webhooks/test", adminToken, "")
	if code != 200 || v["delivered"] != true || v["status_code"] != 200.0 {
		t.Fatalf("test delivery: %d %v", code, v)
	}
	status.Store(503)
	code, v, _ = h.do("POST", "/api/v1/whatsapp/webhooks/test", adminToken, "")
	if code != 500 || errCode(t, v) != "WEBHOOK_DELIVERY_FAILED" || errDetails(v)["status_code"] != 503.0 ||
		errDetails(v)["response_body"] != "not today" {
		t.Fatalf("failing endpoint: %d %v", code, v)
	}
	srv.Close()
	code, v, _ = h.do("POST", "/api/v1/whatsapp/webhooks/test", adminToken, "")
	if code != 500 || errCode(t, v) != "WEBHOOK_DELIVERY_FAILED" || errDetails(v)["reason"] == nil {
		t.Fatalf("unreachable endpoint: %d %v", code, v)
	}
}

// TestWebhookURLsReachingInternalAddressesAreRefused: a tenant admin
// cannot point its webhook at the gateway's own network (Redis,
// ClickHouse, cloud metadata), neither when configuring it nor through a
// configuration stored before the rule, and the test delivery never shows
// what such an address answers.
func TestWebhookURLsReachingInternalAddressesAreRefused(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(500)
		io.WriteString(w, "ClickHouse server version 18.16.1 secret-banner")
	}))
	defer internal.Close()
	h := newHarness(t)
	path := "/api/v1/whatsapp/webhooks/configure"
	for _, u := range []string{
		"http://127.0.0.1:6379/",
		"http://localhost:9000/",
		internal.URL + "/hook",
		"https://10.0.0.5/hook",
		"https://192.168.1.10/hook",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]:8123/",
		"https://[fd00:ec2::254]/latest/meta-data/",
		"https://0.0.0.0:9000/",
	} {
		code, v, _ := h.do("POST", path, adminToken, `{"webhook_url":"`+u+`","events":["message_read"]}`)
		if code != 400 || errCode(t, v) != "INVALID_REQUEST" || errDetails(v)["field"] != "webhook_url" {
			t.Errorf("%s: %d %v, want 400 INVALID_REQUEST on webhook_url", u, code, v)
		}
	}
	if code, v, _ := h.do("GET", "/api/v1/whatsapp/webhooks", adminToken, ""); code != 404 {
		t.Fatalf("a refused webhook was stored: %d %v", code, v)
	}
	// A configuration written before the rule (straight into Redis): the
	// test delivery is refused when dialing, and shows nothing of the
	// internal server.
	doc, _ := json.Marshal(message.WebhookConfig{URL: internal.URL + "/hook", Events: []string{"message_read"},
		Secret: strings.Repeat("ab", 32), MaxRetries: 3, RetryDelayMS: 5000})
	must(t, h.store.PutTenantDoc(context.Background(), "grand-plaza", redis.DocWebhook, doc))
	code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/test", adminToken, "")
	if code != 500 || errCode(t, v) != "WEBHOOK_DELIVERY_FAILED" {
		t.Fatalf("test delivery to an internal address: %d %v", code, v)
	}
	if strings.Contains(fmt.Sprint(v), "secret-banner") || hits.Load() != 0 {
		t.Fatalf("the internal server was reached (%d requests) or shown: %v", hits.Load(), v)
	}
	// The operator's allow-list opens it.
	h2 := newHarness(t, allowLoopback)
	code, v, _ = h2.do("POST", path, adminToken, `{"webhook_url":"`+internal.URL+`/hook","events":["message_read"]}`)
	if code != 200 {
		t.Fatalf("allowed network refused: %d %v", code, v)
	}
}

// TestDeadWebhookDeliveriesAreRedelivered: an admin gives dead deliveries
// a new round of attempts, one by its event id or all at once; they leave
// the dead letters and wait, due now, for the deliverer.
func TestDeadWebhookDeliveriesAreRedelivered(t *testing.T) {
	h := newHarness(t, allowLoopback)
	ctx := context.Background()
	if code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/dead-letters/redeliver", adminToken, ""); code != 404 {
		t.Fatalf("without a webhook: %d %v", code, v)
	}
	if code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/configure", adminToken,
		`{"webhook_url":"https://pms.example/hook","events":["message_read"]}`); code != 200 {
		t.Fatalf("configure: %d %v", code, v)
	}
	for _, id := range []string{"evt_0_1-0", "evt_0_2-0", "evt_0_3-0"} {
		dead, _ := json.Marshal(map[string]any{"event_id": id, "event": "message_read", "attempts": 4, "last_error": "HTTP 500",
			"body": json.RawMessage(`{"event":"message_read","event_id":"` + id + `"}`)})
		must(t, h.store.RecordHook(ctx, "grand-plaza", false, "HTTP 500", false, dead))
	}
	if code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/dead-letters/evt_0_9-0/redeliver", adminToken, ""); code != 404 ||
		errCode(t, v) != "NOT_FOUND" {
		t.Fatalf("an unknown event id: %d %v", code, v)
	}
	if code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/dead-letters/evt_0_2-0/redeliver", staffToken, ""); code != 403 {
		t.Fatalf("a staff token: %d %v", code, v)
	}
	code, v, _ := h.do("POST", "/api/v1/whatsapp/webhooks/dead-letters/evt_0_2-0/redeliver", adminToken, "")
	if code != 202 || v["scheduled"] != 1.0 {
		t.Fatalf("one: %d %v", code, v)
	}
	code, v, _ = h.do("POST", "/api/v1/whatsapp/webhooks/dead-letters/redeliver", adminToken, "")
	if code != 202 || v["scheduled"] != 2.0 {
		t.Fatalf("the rest: %d %v", code, v)
	}
	_, v, _ = h.do("GET", "/api/v1/whatsapp/webhooks", adminToken, "")
	if dl := v["deliveries"].(map[string]any)["dead_letters"].([]any); len(dl) != 0 {
		t.Fatalf("still dead: %v", dl)
	}
	due, err := h.store.ClaimHookRetries(ctx, 10, time.Minute)
	must(t, err)
	got := map[string]bool{}
	for _, m := range due {
		var d redis.HookDelivery
		must(t, json.Unmarshal([]byte(m), &d))
		if d.Tenant != "grand-plaza" || d.Event != "message_read" || d.Attempt != 0 ||
			!strings.Contains(string(d.Body), d.ID) {
			t.Fatalf("parked %+v", d)
		}
		got[d.ID] = true
	}
	if len(got) != 3 {
		t.Fatalf("due now: %v", due)
	}
}
