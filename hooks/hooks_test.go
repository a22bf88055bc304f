package hooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// hookSink is a tenant's webhook endpoint: it checks every delivery's
// signature and keeps what it got; fail makes it answer 500.
type hookSink struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []map[string]any
	fail   bool
	calls  int
}

func (s *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if sig := r.Header.Get("X-Wagate-Signature-256"); message.VerifyWebhook(s.secret, sig, body, time.Now(), message.WebhookTolerance) != nil {
		s.t.Errorf("delivery with signature %q", sig)
	}
	if r.Header.Get("X-Wagate-Verify-Token") != "hotel-token" {
		s.t.Errorf("delivery without the verify token")
	}
	if s.fail {
		w.WriteHeader(500)
		return
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		s.t.Errorf("delivery is not JSON: %s", body)
	}
	if r.Header.Get("X-Wagate-Event") != v["event"] || r.Header.Get("X-Wagate-Delivery") != v["event_id"] {
		s.t.Errorf("headers %v do not match %v", r.Header, v)
	}
	s.got = append(s.got, v)
}

func (s *hookSink) events() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.got...)
}

// sender is the business number the tests' messages are from.
const sender = "+15550001000"

func hookStore(t *testing.T) *redis.Store {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return store
}

func configureHook(t *testing.T, store *redis.Store, url string, events []string, retries int) {
	cfg := message.WebhookConfig{URL: url, Events: events, VerifyToken: "hotel-token", Secret: "s3cret-s3cret-s3cret",
		MaxRetries: retries, RetryDelayMS: 100}
	doc, _ := json.Marshal(cfg)
	if err := store.PutTenantDoc(context.Background(), "hotel", redis.DocWebhook, doc); err != nil {
		t.Fatal(err)
	}
}

// startHooks starts a deliverer that may reach loopback (the tests' sinks
// listen there), unless opts say otherwise.
func startHooks(t *testing.T, store *redis.Store, opts ...func(*Config)) *Deliverer {
	cfg := Config{Consumer: "h1", Poll: 20 * time.Millisecond, Timeout: 2 * time.Second, RetryLease: 5 * time.Second,
		ConfigTTL: 50 * time.Millisecond, Allow: netguard.Loopback()}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := New(cfg, store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	return d
}

func TestHooksDeliverSubscribedEventsSigned(t *testing.T) {
	store := hookStore(t)
	ctx := context.Background()
	sink := &hookSink{t: t, secret: "s3cret-s3cret-s3cret"}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	configureHook(t, store, srv.URL, []string{message.EventMessageDelivered, message.EventInboundMessage, message.EventGuestOptedOut}, 3)
	startHooks(t, store)

	// A guest writes, then opts out; a message of ours is delivered.
	for _, in := range []struct{ wamid, text, opt string }{{"wamid.1", "Is breakfast included?", ""}, {"wamid.2", "STOP", "out"}} {
		if _, err := store.RecordInbound(ctx, &redis.InboundArgs{TenantID: "hotel", Sender: sender, Guest: "+14155550100",
			ProviderMessageID: in.wamid, AtMS: time.Now().UnixMilli(), Opt: in.opt, Keyword: in.text,
			Entry:      redis.HistoryEntry{ID: in.wamid, Type: "text", Preview: in.text},
			NotifyKind: message.EventInboundMessage, NotifyData: []byte(`{"message_content":"` + in.text + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	a := &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550199", Type: message.TypeTemplate,
		Content: []byte(`{"name":"room_ready","language":{"code":"en"}}`), Lane: message.LaneTx}
	res, err := store.Enqueue(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.ApplyStatuses(ctx, []redis.StatusApply{{MessageID: res.ID, Result: redis.Result{Status: message.StatusDelivered,
		AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.out"}}})
	if err != nil || st[0] != redis.AppliedNew {
		t.Fatal(st, err)
	}
	testwait.For(t, 10*time.Second, "four deliveries", func() bool { return len(sink.events()) >= 4 })
	time.Sleep(200 * time.Millisecond) // nothing else may come
	got := map[string]map[string]any{}
	ids := map[string]bool{}
	for _, e := range sink.events() {
		if ids[e["event_id"].(string)] {
			t.Fatalf("%v delivered twice", e)
		}
		ids[e["event_id"].(string)] = true
		if e["event"] == "inbound_message" && e["data"].(map[string]any)["message_content"] == "STOP" {
			continue // deliveries are not ordered: keep the first message's
		}
		got[e["event"].(string)] = e
	}
	if len(got) != 3 || len(ids) != 4 {
		t.Fatalf("events %v: want only the subscribed inbound_message (two), guest_opted_out, message_delivered", sink.events())
	}
	in := got["inbound_message"]["data"].(map[string]any)
	if in["guest_phone"] != "+14155550100" || in["message_content"] != "Is breakfast included?" || in["conversation_id"] == nil ||
		got["inbound_message"]["tenant_id"] != "hotel" {
		t.Fatalf("inbound_message %v", got["inbound_message"])
	}
	d := got["message_delivered"]["data"].(map[string]any)
	if d["message_id"] != res.ID || d["status"] != "delivered" || d["guest_phone"] != "+14155550199" ||
		d["conversation_id"] != res.Conversation || d["provider_message_id"] != "wamid.out" {
		t.Fatalf("message_delivered %v", got["message_delivered"])
	}
	if got["guest_opted_out"]["data"].(map[string]any)["source"] != "keyword" {
		t.Fatalf("guest_opted_out %v", got["guest_opted_out"])
	}
	stats, _ := store.HookStats(ctx, "hotel", 10)
	if stats.Delivered != 4 || stats.Failed != 0 {
		t.Fatalf("stats %+v", stats)
	}
	// Everything read was acknowledged: the events can be trimmed once the
	// loader has them too.
	lr := store.EventReader("loader")
	evs, _ := lr.Read(ctx, nil, 100, 0)
	lr.Ack(ctx, evs)
	if n, err := store.TrimEvents(ctx); err != nil || n != int64(len(evs)) {
		t.Fatalf("trimmed %d of %d: %v", n, len(evs), err)
	}
}

func TestHooksRetryThenDeadLetter(t *testing.T) {
	store := hookStore(t)
	ctx := context.Background()
	sink := &hookSink{t: t, secret: "s3cret-s3cret-s3cret", fail: true}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	configureHook(t, store, srv.URL, []string{message.EventMessageQueued}, 2)
	startHooks(t, store)
	a := &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550199", Type: message.TypeTemplate,
		Content: []byte(`{"name":"room_ready","language":{"code":"en"}}`), Lane: message.LaneTx}
	if _, err := store.Enqueue(ctx, a); err != nil {
		t.Fatal(err)
	}
	// One attempt and two retries, then it is given up.
	testwait.For(t, 10*time.Second, "a dead letter", func() bool {
		st, _ := store.HookStats(ctx, "hotel", 10)
		return st.DeadLettered == 1
	})
	st, _ := store.HookStats(ctx, "hotel", 10)
	if st.Failed != 3 || st.Retried != 2 || len(st.DeadLetters) != 1 || st.LastError != "HTTP 500" {
		t.Fatalf("stats %+v", st)
	}
	var dead map[string]any
	json.Unmarshal([]byte(st.DeadLetters[0]), &dead)
	if dead["event"] != "message_queued" || dead["attempts"] != 3.0 {
		t.Fatalf("dead letter %v", dead)
	}
	// A retry that succeeds is delivered once.
	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	configureHook(t, store, srv.URL, []string{message.EventMessageQueued}, 5)
	if _, err := store.Enqueue(ctx, &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550198",
		Type: message.TypeTemplate, Content: a.Content, Lane: message.LaneTx}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "a delivery", func() bool { return len(sink.events()) == 1 })
}

// TestHooksNeverReachInternalAddresses: a webhook stored with an internal
// address (before the API refused them, or a name that resolves inside)
// gets no delivery by default: every attempt is refused when dialing, and
// the tenant sees why.
func TestHooksNeverReachInternalAddresses(t *testing.T) {
	ctx := context.Background()
	sink := &hookSink{t: t, secret: "s3cret-s3cret-s3cret"}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	for _, url := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		store := hookStore(t)
		configureHook(t, store, url, []string{message.EventMessageQueued}, 0)
		startHooks(t, store, func(c *Config) { c.Allow = nil; c.Consumer = "h-" + url })
		if _, err := store.Enqueue(ctx, &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550199",
			Type: message.TypeTemplate, Content: []byte(`{"name":"room_ready","language":{"code":"en"}}`), Lane: message.LaneTx}); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 10*time.Second, "a refused delivery", func() bool {
			st, _ := store.HookStats(ctx, "hotel", 10)
			return strings.Contains(st.LastError, "internal address")
		})
		sink.mu.Lock()
		calls := sink.calls
		sink.mu.Unlock()
		if calls != 0 {
			t.Fatalf("%s: the internal endpoint got %d requests", url, calls)
		}
	}
}

// TestDeadDeliveriesRedeliveredReachTheEndpoint: a delivery given up on
// reaches the endpoint once it is redelivered, signed anew (a signature
// made now, within the receiver's tolerance).
func TestDeadDeliveriesRedeliveredReachTheEndpoint(t *testing.T) {
	store := hookStore(t)
	ctx := context.Background()
	sink := &hookSink{t: t, secret: "s3cret-s3cret-s3cret", fail: true}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	configureHook(t, store, srv.URL, []string{message.EventMessageQueued}, 0)
	startHooks(t, store)
	res, err := store.Enqueue(ctx, &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550199",
		Type: message.TypeTemplate, Content: []byte(`{"name":"room_ready","language":{"code":"en"}}`), Lane: message.LaneTx})
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "a dead letter", func() bool {
		st, _ := store.HookStats(ctx, "hotel", 10)
		return len(st.DeadLetters) == 1
	})
	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	ids, err := store.RedeliverHooks(ctx, "hotel", nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("redeliver: %v %v", ids, err)
	}
	testwait.For(t, 10*time.Second, "the redelivery", func() bool { return len(sink.events()) == 1 })
	e := sink.events()[0]
	if e["event"] != "message_queued" || e["event_id"] != ids[0] || e["data"].(map[string]any)["message_id"] != res.ID {
		t.Fatalf("redelivered %v", e)
	}
	if st, _ := store.HookStats(ctx, "hotel", 10); len(st.DeadLetters) != 0 {
		t.Fatalf("still dead: %v", st.DeadLetters)
	}
}

// While no tenant has a webhook the deliverer reads no events at all (its
// group is moved past them); a tenant that then sets one gets the events
// that follow, each once.
func TestEventsOfNoWebhookAreSkippedUntilATenantSetsOne(t *testing.T) {
	store := hookStore(t)
	ctx := context.Background()
	sink := &hookSink{t: t, secret: "s3cret-s3cret-s3cret"}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	startHooks(t, store, func(c *Config) { c.SkipEvery = 20 * time.Millisecond })
	send := func(to string) string {
		t.Helper()
		a := &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: to, Type: message.TypeTemplate,
			Content: []byte(`{"name":"room_ready","language":{"code":"en"}}`), Lane: message.LaneTx}
		res, err := store.Enqueue(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	for i := 0; i < 20; i++ {
		send("+1415555010" + string(rune('0'+i%10)))
	}
	// Moved past them: nothing of the hooks group is pending or unread.
	rdb := redistest.Client(t)
	testwait.For(t, 5*time.Second, "the hooks group past the 20 events", func() bool {
		for sh := 0; sh < store.Config().Shards; sh++ {
			key := store.Keys().Events(sh)
			gs, err := rdb.XInfoGroups(ctx, key).Result()
			if err != nil && !strings.Contains(err.Error(), "no such key") {
				t.Fatal(err)
			}
			last, _ := rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
			for _, g := range gs {
				if g.Name == redis.GroupHooks && len(last) == 1 && (g.LastDeliveredID != last[0].ID || g.Pending != 0) {
					return false
				}
			}
		}
		return true
	})
	if n := len(sink.events()); n != 0 {
		t.Fatalf("%d deliveries without any webhook", n)
	}
	// Skipped, not read: a read would have made the deliverer a consumer.
	for sh := 0; sh < store.Config().Shards; sh++ {
		if cs, _ := rdb.XInfoConsumers(ctx, store.Keys().Events(sh), redis.GroupHooks).Result(); len(cs) != 0 {
			t.Fatalf("shard %d's events were read by %+v", sh, cs)
		}
	}

	configureHook(t, store, srv.URL, []string{message.EventMessageQueued}, 3)
	id := send("+14155550120")
	testwait.For(t, 5*time.Second, "the queued event delivered", func() bool { return len(sink.events()) >= 1 })
	time.Sleep(100 * time.Millisecond) // nothing else may come
	got := sink.events()
	if len(got) != 1 || got[0]["data"].(map[string]any)["message_id"] != id {
		t.Fatalf("deliveries %v, want only %s's message_queued", got, id)
	}
}
