package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis/redistest"
)

func clickhouseAddr() string {
	for _, k := range []string{"WAGATE_TEST_CLICKHOUSE_ADDR", "WAGATE_CLICKHOUSE_ADDR"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "127.0.0.1:9000"
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testGateway is the whole of `wagate dev`, on free ports, with its own
// Redis prefix and ClickHouse database.
type testGateway struct {
	t    *testing.T
	gw   *gateway
	sim  *sim.Server
	api  string
	g    gatewayFlags
	conn interface{ Close() error }
}

// startTestGateway starts the gateway; opts change its flags first.
func startTestGateway(t *testing.T, delays sim.Delays, opts ...func(*gatewayFlags)) *testGateway {
	t.Helper()
	return startTestGatewayWith(t, delays, nil, opts...)
}

// startTestGatewayWith is startTestGateway with cfg changing its
// configuration (`wagate dev`'s) first, when not nil.
func startTestGatewayWith(t *testing.T, delays sim.Delays, cfg func(*fileConfig), opts ...func(*gatewayFlags)) *testGateway {
	t.Helper()
	g := testFlags(t, "api,dispatcher,inbound,loader")
	for _, o := range opts {
		o(&g)
	}
	catalogue, err := demoCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	s := startTestSim(t, sim.Config{
		Addr: "127.0.0.1:0", AccessToken: devSimToken, AppSecret: devAppSecret,
		WebhookURL:   "http://" + g.httpAddr + "/webhooks/meta",
		Numbers:      []sim.Number{{PhoneNumberID: devPhoneID, DisplayPhoneNumber: devSender[1:], WABAID: devWABA}},
		StatusDelays: delays,
		Templates:    map[string][]message.Template{devWABA: catalogue},
	})
	fc := devConfig(s.URL(), devNumbers(1), 80)
	if cfg != nil {
		cfg(fc)
	}
	return runTestGateway(t, g, s, fc)
}

// testFlags are a test gateway's flags: free ports, the test's own Redis
// prefix and ClickHouse database, roles.
func testFlags(t *testing.T, roles string) gatewayFlags {
	t.Helper()
	rdb := redistest.Client(t)
	return gatewayFlags{
		instance: "it-" + t.Name(), redisURL: redistest.URL(), prefix: redistest.Prefix(t, rdb), shards: 4,
		clickhouse: clickhouseAddr(), chDatabase: fmt.Sprintf("wagate_it_%x", rand.Uint32()), chUser: "default",
		httpAddr: freeAddr(t), roles: roles,
		media: mediaFlags{dir: t.TempDir(), signingKey: devMediaSigningKey},
	}
}

// startTestSim starts a simulator (shut down by the gateway's cleanup).
func startTestSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	s, err := sim.New(cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// runTestGateway starts the gateway of g and fc beside simulator s, with
// the demo catalogue as the tenant's templates, and stops both (and drops
// its ClickHouse database) when t ends.
func runTestGateway(t *testing.T, g gatewayFlags, s *sim.Server, fc *fileConfig) *testGateway {
	t.Helper()
	gw, err := startGateway(&g, fc, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{t: t, gw: gw, sim: s, api: "http://" + gw.api.Addr(), g: g}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := gw.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		s.Shutdown(ctx)
		if conn, err := clickhouse.Open(ctx, g.chConfig()); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+g.chDatabase)
			conn.Close()
		}
	})
	// The demo tenant's templates, as `wagate dev` gives them.
	catalogue, err := demoCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.store.PutTemplates(context.Background(), devTenant, catalogue); err != nil {
		t.Fatal(err)
	}
	return tg
}

func (tg *testGateway) call(method, path, body string) (int, map[string]any) {
	tg.t.Helper()
	req, _ := http.NewRequest(method, tg.api+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+devStaffToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tg.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

// guestWrites makes the simulator post a guest's message, as Meta does,
// and waits until the gateway filed it: the guest's 24-hour window is open.
func (tg *testGateway) guestWrites(guest, text string) {
	tg.t.Helper()
	if _, err := tg.sim.Inbound(devPhoneID, guest, "Guest", text); err != nil {
		tg.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, v := tg.call("GET", "/api/v1/whatsapp/guests/"+guest, "")
		if nums, _ := v["numbers"].([]any); len(nums) > 0 {
			if w, _ := nums[0].(map[string]any)["window"].(map[string]any); w["within_window"] == true {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tg.t.Fatalf("the guest's message did not open the window")
}

// TestTextFromAPIToReadInClickHouse is the walking skeleton's whole path:
// a guest's message (simulator → signed webhook → processor) opens the
// window; then API → Redis → dispatcher → Meta adapter → simulator →
// signed status webhooks → processor → state → events → loader →
// ClickHouse.
func TestTextFromAPIToReadInClickHouse(t *testing.T) { walkingSkeleton(t) }

// TestWalkingSkeletonOnARedisCluster is the same path with the gateway on
// a Redis Cluster of three masters and three replicas
// (redis+cluster://…): every function call, stream read and pipeline
// reaches the node of its slot, and the functions are on every master.
func TestWalkingSkeletonOnARedisCluster(t *testing.T) {
	cc := redistest.ClusterClient(t)
	prefix := redistest.ClusterPrefix(t, cc)
	walkingSkeleton(t, func(g *gatewayFlags) { g.redisURL, g.prefix = redistest.ClusterURL(), prefix })
	// Its keys are spread over the masters, by shard.
	var spread atomic.Int32 // ForEachMaster calls at once
	_ = cc.ForEachMaster(context.Background(), func(ctx context.Context, c *goredis.Client) error {
		if keys, _ := c.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			spread.Add(1)
		}
		return nil
	})
	if spread.Load() < 2 {
		t.Fatalf("the gateway's keys are on %d master(s), want them spread by shard", spread.Load())
	}
}

func walkingSkeleton(t *testing.T, opts ...func(*gatewayFlags)) {
	tg := startTestGateway(t, sim.Delays{Sent: 150 * time.Millisecond, Delivered: 400 * time.Millisecond, Read: 700 * time.Millisecond}, opts...)
	tg.guestWrites("+1234567890", "Hi, I just landed. Can I check in early?")
	code, v := tg.call("POST", "/api/v1/whatsapp/messages/send",
		`{"guest_phone":"+1234567890","message_type":"text","content":{"text":"Welcome to Grand Plaza Hotel! How can we assist you today?"},"conversation_id":"conv_abc123","staff_member_id":"staff_456"}`)
	if code != 202 || v["status"] != "queued" {
		t.Fatalf("send: %d %v", code, v)
	}
	id := v["message_id"].(string)

	// The status walks queued (the send's answer) → sent → delivered → read.
	seen := []string{v["status"].(string)}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, st := tg.call("GET", "/api/v1/whatsapp/messages/"+id+"/status", "")
		s, _ := st["status"].(string)
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		if s == "read" {
			if st["sent_at"] == nil || st["delivered_at"] == nil || st["read_at"] == nil || st["failure_reason"] != nil {
				t.Fatalf("read status without its times: %v", st)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// "sending" may show between queued and sent; nothing else may.
	var walk []string
	for _, s := range seen {
		if s != "sending" {
			walk = append(walk, s)
		}
	}
	if fmt.Sprint(walk) != "[queued sent delivered read]" {
		t.Fatalf("statuses seen %v, want queued, sent, delivered, read in order", seen)
	}

	// The simulator got exactly Meta's request.
	reqs := tg.sim.Requests(devPhoneID)
	if len(reqs) != 1 {
		t.Fatalf("simulator got %d sends, want 1", len(reqs))
	}
	var got map[string]any
	if err := json.Unmarshal(reqs[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{
		"messaging_product": "whatsapp", "recipient_type": "individual", "to": "1234567890", "type": "text",
		"text": map[string]any{"body": "Welcome to Grand Plaza Hotel! How can we assist you today?"},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantBody) {
		t.Fatalf("simulator got %s\nwant %v", reqs[0].Body, wantBody)
	}
	if reqs[0].Authorization != "Bearer "+devSimToken {
		t.Fatalf("authorization %q", reqs[0].Authorization)
	}

	// ClickHouse holds every transition of the message.
	ctx := context.Background()
	cfg := tg.g.chConfig()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var statuses []message.Status
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := clickhouse.Events(ctx, conn, cfg.Database, id)
		if err == nil && len(evs) >= 5 {
			statuses = statuses[:0]
			for i, e := range evs {
				statuses = append(statuses, e.Status)
				if e.TenantID != devTenant || e.Recipient != "+1234567890" || e.Sender != devSender ||
					e.ConversationID != "conv_abc123" || e.StaffMemberID != "staff_456" {
					t.Fatalf("event %+v", e)
				}
				if i > 0 && e.AtMS <= evs[i-1].AtMS {
					t.Fatalf("%s at %d is not after %s at %d", e.Status, e.AtMS, evs[i-1].Status, evs[i-1].AtMS)
				}
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fmt.Sprint(statuses) != "[queued sending sent delivered read]" {
		t.Fatalf("message_events for %s: %v", id, statuses)
	}
}
