package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

const (
	staffToken = "test-staff-token"
	adminToken = "test-admin-token"
	otherToken = "other-tenant-token"
	appSecret  = "test-app-secret"
)

type harness struct {
	t     *testing.T
	store *redis.Store
	srv   *Server
	base  string
	reg   *prometheus.Registry
}

// newHarness starts an API server on a private key prefix; opts adjust its
// configuration.
func newHarness(t *testing.T, opts ...func(*Config)) *harness {
	t.Helper()
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 4, InboundParts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	ts := NewTokens()
	hotel := &Tenant{ID: "grand-plaza", Senders: []string{"+15550001000", "+15550001001"}}
	other := &Tenant{ID: "seaside", Senders: []string{"+15550002000"}}
	must(t, ts.Add(staffToken, Principal{Tenant: hotel, Role: RoleStaff}))
	must(t, ts.Add(adminToken, Principal{Tenant: hotel, Role: RoleAdmin}))
	must(t, ts.Add(otherToken, Principal{Tenant: other, Role: RoleStaff}))
	reg := prometheus.NewRegistry()
	cfg := Config{Addr: "127.0.0.1:0", MaxBodyBytes: 64 << 10, MetaAppSecret: appSecret, MetaVerifyToken: "verify-me"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg, store, ts, reg, reg, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, srv.Start())
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	h := &harness{t: t, store: store, srv: srv, base: "http://" + srv.Addr(), reg: reg}
	// Seed 001's guest has written to the hotel, so staff may answer in
	// free form; tests of the window rule use other guests.
	h.openWindow(seedGuest)
	return h
}

// seedGuest is the guest of seed 001's examples.
const seedGuest = "+1234567890"

// queued counts the messages waiting in every queue.
func (h *harness) queued() int64 {
	h.t.Helper()
	tx, bulk, delayed, err := h.store.QueueDepth(context.Background())
	must(h.t, err)
	return tx + bulk + delayed
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// do sends a request and returns the status, the decoded JSON body (nil if
// not JSON) and the headers.
func (h *harness) do(method, path, token, body string, hdr ...string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	must(h.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkOpenAPI(h.t, method, path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		v = map[string]any{"_raw": string(raw)}
	}
	return resp.StatusCode, v, resp.Header
}

// errCode checks an answer is in the seed's error format and returns its code.
func errCode(t *testing.T, v map[string]any) string {
	t.Helper()
	e, ok := v["error"].(map[string]any)
	if !ok {
		t.Fatalf("answer %v is not in the error format", v)
	}
	for _, k := range []string{"code", "message", "details", "recovery_options"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error %v lacks %q", e, k)
		}
	}
	if _, ok := e["details"].(map[string]any); !ok {
		t.Fatalf("details of %v is not an object", e)
	}
	if _, ok := e["recovery_options"].([]any); !ok {
		t.Fatalf("recovery_options of %v is not a list", e)
	}
	return e["code"].(string)
}

const sendPath = "/api/v1/whatsapp/messages/send"

func seedSend(text string) string {
	b, _ := json.Marshal(map[string]any{
		"guest_phone": "+1234567890", "message_type": "text", "content": map[string]any{"text": text},
		"conversation_id": "conv_abc123", "staff_member_id": "staff_456",
	})
	return string(b)
}

func TestSendQueuesTheSeedsMessage(t *testing.T) {
	h := newHarness(t)
	code, v, _ := h.do("POST", sendPath, staffToken, seedSend("Welcome to Grand Plaza Hotel! How can we assist you today?"))
	if code != 202 || v["status"] != "queued" {
		t.Fatalf("%d %v", code, v)
	}
	id, _ := v["message_id"].(string)
	st, err := h.store.State(context.Background(), id)
	if err != nil {
		t.Fatalf("accepted message %q is not in Redis: %v", id, err)
	}
	if st.Status != message.StatusQueued || st.Recipient != "+1234567890" || st.Sender != "+15550001000" ||
		st.TenantID != "grand-plaza" || st.ConversationID != "conv_abc123" || st.StaffMemberID != "staff_456" {
		t.Fatalf("state %+v", st)
	}
	// What the dispatcher will send is Meta's text object.
	if got := string(h.begin(id).Msg.Content); got != `{"body":"Welcome to Grand Plaza Hotel! How can we assist you today?"}` {
		t.Fatalf("content %s", got)
	}
}

func TestSendPicksTheRequestedSender(t *testing.T) {
	h := newHarness(t)
	body := `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"},"from":"+15550001001"}`
	code, v, _ := h.do("POST", sendPath, staffToken, body)
	if code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	st, _ := h.store.State(context.Background(), v["message_id"].(string))
	if st.Sender != "+15550001001" {
		t.Fatalf("sender %s", st.Sender)
	}
	code, v, _ = h.do("POST", sendPath, staffToken, `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"},"from":"+15550002000"}`)
	if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
		t.Fatalf("another tenant's number as from: %d %v", code, v)
	}
}

func TestSendRefusesBadInputAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	f := func(name, body string, wantStatus int, wantCode string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", sendPath, staffToken, body)
			if code != wantStatus || errCode(t, v) != wantCode {
				t.Fatalf("got %d %v, want %d %s", code, v, wantStatus, wantCode)
			}
		})
	}
	long := strings.Repeat("é", message.MaxTextRunes+1)
	f("no phone", `{"message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("no plus", `{"guest_phone":"1234567890","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("letters", `{"guest_phone":"+1234abc890","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("spaces", `{"guest_phone":"+1 234 567 890","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("too short", `{"guest_phone":"+123456","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("too long", `{"guest_phone":"+1234567890123456","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("leading zero", `{"guest_phone":"+0234567890","message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_PHONE_NUMBER")
	f("phone a number", `{"guest_phone":1234567890,"message_type":"text","content":{"text":"hi"}}`, 400, "INVALID_REQUEST")
	f("not json", `{"guest_phone":`, 400, "INVALID_REQUEST")
	f("no type", `{"guest_phone":"+1234567890","content":{"text":"hi"}}`, 400, "INVALID_REQUEST")
	f("other type", `{"guest_phone":"+1234567890","message_type":"image","content":{"text":"hi"}}`, 400, "INVALID_REQUEST")
	f("no text", `{"guest_phone":"+1234567890","message_type":"text","content":{}}`, 400, "INVALID_REQUEST")
	f("blank text", `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"  \n"}}`, 400, "INVALID_REQUEST")
	f("text too long", seedSend(long), 400, "INVALID_REQUEST")
	f("body too large", seedSend(strings.Repeat("x", 70<<10)), 413, "PAYLOAD_TOO_LARGE")

	code, v, _ := h.do("POST", sendPath, staffToken, seedSend(strings.Repeat("é", message.MaxTextRunes)))
	if code != 202 {
		t.Fatalf("4096 characters are allowed: %d %v", code, v)
	}
	if total := h.queued(); total != 1 {
		t.Fatalf("%d messages queued, want only the valid one", total)
	}
}

func TestSendNeedsAValidToken(t *testing.T) {
	h := newHarness(t)
	for _, tok := range []string{"", "nope", staffToken + "x"} {
		code, v, hdr := h.do("POST", sendPath, tok, seedSend("hi"))
		if code != 401 || errCode(t, v) != "UNAUTHORIZED" || hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d %v", tok, code, v)
		}
	}
	code, v, _ := h.do("GET", sendPath, staffToken, "")
	if code != 405 || errCode(t, v) != "METHOD_NOT_ALLOWED" {
		t.Fatalf("GET send: %d %v", code, v)
	}
	code, v, _ = h.do("GET", "/api/v1/whatsapp/nothing", staffToken, "")
	if code != 404 || errCode(t, v) != "NOT_FOUND" {
		t.Fatalf("unknown path: %d %v", code, v)
	}
}

func TestIdempotencyKeyReturnsTheFirstMessage(t *testing.T) {
	h := newHarness(t)
	c1, v1, _ := h.do("POST", sendPath, staffToken, seedSend("room ready"), "Idempotency-Key", "pms-42")
	c2, v2, hdr := h.do("POST", sendPath, staffToken, seedSend("room ready"), "Idempotency-Key", "pms-42")
	if c1 != 202 || c2 != 202 || v1["message_id"] != v2["message_id"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %v, repeat %d %v %v", c1, v1, c2, v2, hdr)
	}
	if total := h.queued(); total != 1 {
		t.Fatalf("%d queued, want 1", total)
	}
	c3, v3, _ := h.do("POST", sendPath, staffToken, seedSend("something else"), "Idempotency-Key", "pms-42")
	if c3 != 409 || errCode(t, v3) != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("reused key: %d %v", c3, v3)
	}
	c4, v4, _ := h.do("POST", sendPath, staffToken, seedSend("room ready"), "Idempotency-Key", "bad key with spaces")
	if c4 != 400 || errCode(t, v4) != "INVALID_REQUEST" {
		t.Fatalf("bad key: %d %v", c4, v4)
	}
}

func TestStatusIsTheTenantsOwn(t *testing.T) {
	h := newHarness(t)
	_, v, _ := h.do("POST", sendPath, staffToken, seedSend("hi"))
	id := v["message_id"].(string)
	path := "/api/v1/whatsapp/messages/" + id + "/status"
	code, st, _ := h.do("GET", path, staffToken, "")
	if code != 200 || st["status"] != "queued" || st["message_id"] != id || st["guest_phone"] != "+1234567890" {
		t.Fatalf("%d %v", code, st)
	}
	for _, k := range []string{"sent_at", "delivered_at", "read_at", "failure_reason"} {
		if v, ok := st[k]; !ok || v != nil {
			t.Fatalf("%s = %v, want null while queued", k, v)
		}
	}
	if code, v, _ := h.do("GET", path, otherToken, ""); code != 404 || errCode(t, v) != "MESSAGE_NOT_FOUND" {
		t.Fatalf("other tenant sees it: %d %v", code, v)
	}
	for _, bad := range []string{"msg_123456", message.NewID(1, time.Now().UnixMilli()), message.NewID(900, 1), "msg_%7B%7D"} {
		if code, v, _ := h.do("GET", "/api/v1/whatsapp/messages/"+bad+"/status", staffToken, ""); code != 404 || errCode(t, v) != "MESSAGE_NOT_FOUND" {
			t.Fatalf("%s: %d %v", bad, code, v)
		}
	}
	if code, _, _ := h.do("GET", path, "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}

func TestMetaWebhookVerification(t *testing.T) {
	h := newHarness(t)
	code, v, _ := h.do("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444", "", "")
	if code != 200 || v["_raw"] != "1158201444" {
		t.Fatalf("handshake: %d %v, want the challenge echoed", code, v)
	}
	code, _, _ = h.do("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "", "")
	if code != 403 {
		t.Fatalf("wrong verify token: %d", code)
	}
}

// postWebhook posts body signed with secret (no header when secret is "").
func (h *harness) postWebhook(body []byte, secret string) int {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+"/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", string(meta.AppendSignature(nil, body, []byte(secret))))
	}
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (h *harness) inboundLen() int64 {
	var n int64
	for p := 0; p < 2; p++ {
		n += h.store.Client().XLen(context.Background(), h.store.Keys().Inbound(p)).Val()
	}
	return n
}

func TestMetaWebhookRefusesUnsignedAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	body := webhooktest.Status("wamid.A", "delivered", 1700000000)
	if c := h.postWebhook(body, ""); c != 401 {
		t.Fatalf("unsigned: %d", c)
	}
	if c := h.postWebhook(body, "not-the-secret"); c != 401 {
		t.Fatalf("wrong secret: %d", c)
	}
	tampered := append([]byte{}, body...)
	signed := meta.AppendSignature(nil, body, []byte(appSecret))
	tampered[len(tampered)-5] = ' '
	req, _ := http.NewRequest("POST", h.base+"/webhooks/meta", bytes.NewReader(tampered))
	req.Header.Set("X-Hub-Signature-256", string(signed))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("tampered body: %d", resp.StatusCode)
	}
	if n := h.inboundLen(); n != 0 {
		t.Fatalf("refused webhooks left %d bodies in Redis", n)
	}
	if c := h.postWebhook([]byte("not json"), appSecret); c != 400 {
		t.Fatalf("signed garbage: %d", c)
	}
	if c := h.postWebhook(body, appSecret); c != 200 {
		t.Fatalf("signed: %d", c)
	}
	if n := h.inboundLen(); n != 1 {
		t.Fatalf("%d bodies stored, want 1", n)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	h := newHarness(t)
	h.do("POST", sendPath, staffToken, seedSend("hi"))
	code, v, _ := h.do("GET", "/metrics", "", "")
	raw, _ := v["_raw"].(string)
	if code != 200 || !strings.Contains(raw, `wagate_http_requests_total{code="202",route="send"} 1`) ||
		!strings.Contains(raw, "wagate_http_request_duration_seconds_bucket") {
		t.Fatalf("%d %s", code, raw)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		if code, v, hdr := h.do("POST", path, "", ""); code != 405 || errCode(t, v) != "METHOD_NOT_ALLOWED" || hdr.Get("Allow") != "GET, HEAD" {
			t.Fatalf("POST %s: %d %v %v", path, code, v, hdr)
		}
	}
	if code, v, _ := h.do("GET", "/healthz", "", ""); code != 200 || v["_raw"] != "ok" {
		t.Fatalf("healthz: %d %v", code, v)
	}
}

func TestBadRequestsNeverTakeTheServerDown(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/api/v1/whatsapp/messages/status", "/api/v1/whatsapp/messages//status",
		"/api/v1/whatsapp/messages/x%2F../status", "/api/v1/whatsapp/messages/%00/status"} {
		code, v, _ := h.do("GET", path, staffToken, "")
		if code != 404 {
			t.Fatalf("%s: %d %v", path, code, v)
		}
		errCode(t, v)
	}
	if code, _, _ := h.do("GET", "/healthz", "", ""); code != 200 {
		t.Fatal("server gone")
	}
}

func TestSendRefusesWhatItWasNotMeantFor(t *testing.T) {
	h := newHarness(t)
	f := func(name, body, contentType string, wantStatus int, wantCode, wantInMessage string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", sendPath, staffToken, body, "Content-Type", contentType)
			if code != wantStatus || errCode(t, v) != wantCode {
				t.Fatalf("%d %v, want %d %s", code, v, wantStatus, wantCode)
			}
			if msg := v["error"].(map[string]any)["message"].(string); !strings.Contains(msg, wantInMessage) {
				t.Fatalf("message %q does not say %q", msg, wantInMessage)
			}
		})
	}
	ok := seedSend("hi")
	f("unknown field", `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"},"template_name":"welcome"}`, "application/json", 400, "INVALID_REQUEST", "template_name")
	f("unknown nested field", `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi","caption":"x"}}`, "application/json", 400, "INVALID_REQUEST", "caption")
	f("null body", `null`, "application/json", 400, "INVALID_REQUEST", "JSON object")
	f("array body", `[]`, "application/json", 400, "INVALID_REQUEST", "JSON object")
	f("two values", ok+ok, "application/json", 400, "INVALID_REQUEST", "more than one")
	f("content a string", `{"guest_phone":"+1234567890","message_type":"text","content":"hi"}`, "application/json", 400, "INVALID_REQUEST", "content must be an object")
	f("text/plain", ok, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON")
	f("form", ok, "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE", "JSON")
	code, v, _ := h.do("POST", sendPath, staffToken, ok, "Content-Type", "application/json; charset=utf-8")
	if code != 202 {
		t.Fatalf("JSON with a charset: %d %v", code, v)
	}
	_, _, hdr := h.do("PUT", sendPath, staffToken, ok)
	if hdr.Get("Allow") != "POST" {
		t.Fatalf("405 without Allow: %v", hdr)
	}
}

func TestBodiesOverTheLimitGet413(t *testing.T) {
	h := newHarness(t)
	// The server answers as soon as it reads the Content-Length, before the
	// body, so a client that waits for the answer (curl does) sees it.
	conn, err := net.Dial("tcp", h.srv.Addr())
	must(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 9<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(raw, &v)
	if resp.StatusCode != 413 || errCode(t, v) != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("9 MiB: %d %s", resp.StatusCode, raw)
	}
}

func TestWebhooksAreRefusedWithoutAnAppSecret(t *testing.T) {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 1, InboundParts: 1})
	must(t, err)
	defer store.Close()
	reg := prometheus.NewRegistry()
	srv, err := NewServer(Config{Addr: "127.0.0.1:0"}, store, NewTokens(), reg, reg, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, srv.Start())
	defer srv.Shutdown(context.Background())
	h := &harness{t: t, store: store, srv: srv, base: "http://" + srv.Addr()}
	// Signed with the empty key, which is what "no secret" would verify.
	if c := h.postWebhook(webhooktest.Status("wamid.X", "read", 1700000000), ""); c != 401 {
		t.Fatalf("unsigned: %d", c)
	}
	body := webhooktest.Status("wamid.X", "read", 1700000000)
	req, _ := http.NewRequest("POST", h.base+"/webhooks/meta", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", string(meta.AppendSignature(nil, body, nil)))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("signed with an empty secret: %d", resp.StatusCode)
	}
}
