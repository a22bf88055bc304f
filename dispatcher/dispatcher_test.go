package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

const (
	sender  = "+15550001000"
	phoneID = "100000000000001"
)

type routes map[string]*Route

func (r routes) Route(s string) (*Route, bool) { rt, ok := r[s]; return rt, ok }

// rig is a dispatcher over a real Redis sending to the simulator through
// the Meta adapter.
type rig struct {
	t      *testing.T
	store  *redis.Store
	sim    *sim.Server
	d      *Dispatcher
	reg    *prometheus.Registry
	cfg    Config
	routes routes
}

func newRig(t *testing.T, sc sim.Config, cfg Config) *rig {
	t.Helper()
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	sc.Addr = "127.0.0.1:0"
	sc.Numbers = []sim.Number{{PhoneNumberID: phoneID, DisplayPhoneNumber: sender[1:], WABAID: "1"}}
	s, err := sim.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	if cfg.Instance == "" {
		cfg.Instance = "d1"
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	if cfg.Rates.DefaultRate == 0 {
		cfg.Rates.DefaultRate = 1000
	}
	cfg.LeaseTTL = 500 * time.Millisecond
	cfg.Tick = 20 * time.Millisecond
	mc, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: sim.DefaultAccessToken, PhoneNumberIDs: map[string]string{sender: phoneID}})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, store: store, sim: s, reg: prometheus.NewRegistry(), cfg: cfg,
		routes: routes{sender: &Route{Primary: mc}}}
}

func (r *rig) start() {
	r.t.Helper()
	var err error
	r.d, err = New(r.cfg, r.store, r.routes, r.reg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		r.t.Fatal(err)
	}
	r.d.Start()
	r.t.Cleanup(func() { r.d.Shutdown(context.Background()) })
}

type msgOpt func(*redis.EnqueueArgs)

func (r *rig) enqueue(n int, from string, opts ...msgOpt) []string {
	r.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		a := &redis.EnqueueArgs{
			TenantID: "hotel", Sender: from, Recipient: fmt.Sprintf("+1415555%04d", i), Type: message.TypeText,
			Content: []byte(fmt.Sprintf(`{"body":"message %d"}`, i)), Lane: message.LaneTx,
		}
		for _, o := range opts {
			o(a)
		}
		res, err := r.store.Enqueue(context.Background(), a)
		if err != nil {
			r.t.Fatal(err)
		}
		ids[i] = res.ID
	}
	return ids
}

// wait polls until every message is in a status for which done is true.
func (r *rig) wait(ids []string, done func(message.Status) bool) map[string]*redis.State {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := map[string]*redis.State{}
		for _, id := range ids {
			st, err := r.store.State(context.Background(), id)
			if err != nil {
				r.t.Fatal(err)
			}
			if done(st.Status) {
				out[id] = st
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d messages done after 30s", len(out), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) queuesEmpty() {
	r.t.Helper()
	if tx, bulk, delayed, err := r.store.QueueDepth(context.Background()); err != nil || tx+bulk+delayed != 0 {
		r.t.Fatalf("queues hold %d tx, %d bulk, %d delayed (%v)", tx, bulk, delayed, err)
	}
}

func is(st message.Status) func(message.Status) bool {
	return func(s message.Status) bool { return s == st }
}

// bodies returns the texts the simulator accepted, in order.
func (r *rig) bodies() []string {
	var out []string
	for _, q := range r.sim.Requests(phoneID) {
		var b struct {
			To   string `json:"to"`
			Text struct {
				Body string `json:"body"`
			} `json:"text"`
		}
		json.Unmarshal(q.Body, &b)
		out = append(out, b.To+" "+b.Text.Body)
	}
	return out
}

func TestEverySendReachesTheProviderOnce(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	ids := r.enqueue(60, sender)
	r.start()
	states := r.wait(ids, is(message.StatusSent))
	reqs := r.sim.Requests(phoneID)
	if len(reqs) != len(ids) {
		t.Fatalf("simulator got %d sends for %d messages", len(reqs), len(ids))
	}
	byWamid := map[string]bool{}
	for _, q := range reqs {
		byWamid[q.WAMID] = true
	}
	for id, st := range states {
		if st.Attempts != 1 || !byWamid[st.ProviderMessageID] || st.SentMS < st.QueuedMS {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	r.queuesEmpty()
	if n := testutil.ToFloat64(r.d.m.sends.WithLabelValues("meta", "sent")); n != 60 {
		t.Fatalf("sends{outcome=sent} = %v", n)
	}
	if got := r.d.Owned(); len(got) != 2 {
		t.Fatalf("a lone dispatcher owns shards %v, want both", got)
	}
}

func TestTransientErrorsAreRetriedInRecipientOrder(t *testing.T) {
	// The breaker stays out of it: 40% errors would open it.
	r := newRig(t, sim.Config{ErrorRate: 0.4}, Config{MaxAttempts: 50, Breaker: BreakerConfig{MinRequests: 1 << 30}})
	// Five guests get ten messages each, interleaved.
	var ids []string
	for i := 0; i < 10; i++ {
		for g := 0; g < 5; g++ {
			ids = append(ids, r.enqueue(1, sender, func(a *redis.EnqueueArgs) {
				a.Recipient = fmt.Sprintf("+1415555000%d", g)
				a.Content = []byte(fmt.Sprintf(`{"body":"message %d"}`, i))
			})...)
		}
	}
	r.start()
	states := r.wait(ids, is(message.StatusSent))
	retried := 0
	for _, st := range states {
		if st.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("40% of calls failed, yet no message needed a second attempt: the test proves nothing")
	}
	next := map[string]int{}
	for _, b := range r.bodies() {
		to, text, _ := strings.Cut(b, " ")
		if want := fmt.Sprintf("message %d", next[to]); text != want {
			t.Fatalf("guest %s got %q before %q: order broken by a retry", to, text, want)
		}
		next[to]++
	}
	if len(next) != 5 {
		t.Fatalf("guests %v", next)
	}
	r.queuesEmpty()
}

func TestExhaustedRetriesAreDeadLetteredAndCanBeRequeued(t *testing.T) {
	// Three guests' messages fail every time while the provider takes the
	// others': their failures are theirs, and they count. (The breaker
	// stays out of it: their fast retries could outnumber the others.)
	poisoned := map[string]int{"14155550000": 131000, "14155550001": 131000, "14155550002": 131000}
	r := newRig(t, sim.Config{RecipientErrors: poisoned}, Config{MaxAttempts: 3, Breaker: BreakerConfig{MinRequests: 1 << 30}})
	ids := r.enqueue(3, sender)
	r.start()
	// Other guests' messages go on meanwhile, one every 10 ms, until the
	// three are dead letters.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; r.count(ids, message.StatusFailed) < len(ids); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages failed after 30s", r.count(ids, message.StatusFailed), len(ids))
		}
		r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Recipient = fmt.Sprintf("+1999555%04d", i) })
		time.Sleep(10 * time.Millisecond)
	}
	attempts := map[string]int{}
	for id, st := range r.wait(ids, is(message.StatusFailed)) {
		if st.Attempts < 3 || st.ErrorCode != 131000 || st.ErrorTitle == "" || st.FailedMS == 0 {
			t.Fatalf("%s: %+v", id, st)
		}
		attempts[id] = st.Attempts
	}
	dl, _, err := r.store.DeadLetters(context.Background(), "hotel", 10, "")
	if err != nil || len(dl) != 3 || dl[0].ErrorCode != 131000 {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	// The provider takes them again; an operator requeues them.
	rt := r.sim.Runtime()
	rt.RecipientErrors = nil
	r.sim.SetRuntime(rt)
	for _, id := range ids {
		if err := r.store.Requeue(context.Background(), "hotel", id); err != nil {
			t.Fatal(err)
		}
	}
	for id, st := range r.wait(ids, is(message.StatusSent)) {
		if st.Attempts != attempts[id]+1 {
			t.Fatalf("%s: attempts %d after requeue, want %d", id, st.Attempts, attempts[id]+1)
		}
	}
	r.queuesEmpty()
}

func TestSenderWithoutProviderFails(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	ids := r.enqueue(1, "+15559999999")
	r.start()
	st := r.wait(ids, is(message.StatusFailed))[ids[0]]
	if !strings.Contains(st.ErrorTitle, "+15559999999") {
		t.Fatalf("failure reason %q does not name the sender", st.ErrorTitle)
	}
}

func TestMessagesPastTheirValidityAreNeverSent(t *testing.T) {
	// One message per second: most of these expire before their turn.
	r := newRig(t, sim.Config{}, Config{Rates: ratelimit.Config{DefaultRate: 2, Burst: 1}})
	until := time.Now().Add(1500 * time.Millisecond).UnixMilli()
	ids := r.enqueue(10, sender, func(a *redis.EnqueueArgs) { a.ExpiresMS = until })
	r.start()
	states := r.wait(ids, func(s message.Status) bool { return s == message.StatusSent || s == message.StatusExpired })
	sent, expired := 0, 0
	for _, st := range states {
		if st.Status == message.StatusSent {
			sent++
			if st.SentMS > until {
				t.Fatalf("sent after its validity: %+v", st)
			}
		} else {
			expired++
		}
	}
	if expired == 0 || sent == 0 || len(r.sim.Requests(phoneID)) != sent {
		t.Fatalf("%d sent, %d expired, simulator got %d", sent, expired, len(r.sim.Requests(phoneID)))
	}
}

func TestThrottlingSlowsTheSenderAndFailsNothing(t *testing.T) {
	// The simulator takes 30 mps; the dispatcher believes in 100.
	r := newRig(t, sim.Config{Throughput: 30, ThroughputBurst: 5}, Config{MaxAttempts: 1, Rates: ratelimit.Config{DefaultRate: 100}})
	ids := r.enqueue(120, sender)
	r.start()
	r.wait(ids, is(message.StatusSent))
	if n := testutil.ToFloat64(r.d.m.sends.WithLabelValues("meta", "throttled")); n == 0 {
		t.Fatal("the simulator never throttled: the test proves nothing")
	}
	if got := r.d.rates.Get(sender).Rate(); got >= 100 {
		t.Fatalf("sender rate still %v after throttling", got)
	}
}

func TestShutdownFinishesSendsInFlightAndLeavesTheRest(t *testing.T) {
	r := newRig(t, sim.Config{Latency: 300 * time.Millisecond}, Config{InFlight: 8})
	ids := r.enqueue(40, sender)
	r.start()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(r.d.m.inFlight) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing went in flight")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent, queued := 0, 0
	for _, id := range ids {
		st, _ := r.store.State(context.Background(), id)
		switch st.Status {
		case message.StatusSent:
			sent++
		case message.StatusQueued:
			queued++
		default:
			t.Fatalf("%s is %s after shutdown: neither recorded nor left to the next owner", id, st.Status)
		}
	}
	if sent == 0 || queued == 0 || sent != len(r.sim.Requests(phoneID)) {
		t.Fatalf("sent %d, queued %d, simulator got %d", sent, queued, len(r.sim.Requests(phoneID)))
	}
	// The next owner takes the shards at once (no lease to wait out) and
	// sends the rest, each once.
	r.cfg.Instance = "d2"
	r.reg = prometheus.NewRegistry()
	r.start()
	r.wait(ids, is(message.StatusSent))
	if got := len(r.sim.Requests(phoneID)); got != len(ids) {
		t.Fatalf("simulator got %d sends for %d messages", got, len(ids))
	}
	if n := testutil.ToFloat64(r.d.m.duplicates); n != 0 {
		t.Fatalf("%v possible duplicates after a graceful handover", n)
	}
}

func TestMessagesOfADeadOwnerAreTakenOver(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	ids := r.enqueue(5, sender)
	shard, _ := message.ShardOf(ids[0])
	// "dead" took the shard, began every message and died.
	l, _, _ := r.store.TakeLease(context.Background(), Role, shard, "dead", 300*time.Millisecond)
	es, _ := r.store.ReadEntries(context.Background(), "dead", []string{r.store.Keys().SenderQueue(shard, sender, message.LaneTx, "")}, 10, nil)
	for i := range es {
		r.store.Begin(context.Background(), redis.NewJob(l, shard, sender, &es[i]))
	}
	r.start()
	for id, st := range r.wait(ids, is(message.StatusSent)) {
		if st.Attempts != 2 {
			t.Fatalf("%s: attempts %d, want 2 (the dead owner's and ours)", id, st.Attempts)
		}
	}
	if n := testutil.ToFloat64(r.d.m.duplicates); n != 5 {
		t.Fatalf("possible duplicates = %v, want the 5 that were sending", n)
	}
	if got := len(r.sim.Requests(phoneID)); got != 5 {
		t.Fatalf("simulator got %d sends", got)
	}
}

func TestTransactionalLaneGoesFirst(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{Rates: ratelimit.Config{DefaultRate: 50}})
	bulk := r.enqueue(150, sender, func(a *redis.EnqueueArgs) { a.Lane, a.Campaign = message.LaneBulk, "spring" })
	r.start()
	time.Sleep(300 * time.Millisecond) // the bulk backlog is flowing
	tx := r.enqueue(5, sender, func(a *redis.EnqueueArgs) { a.Recipient = "+14155559999"; a.Content = []byte(`{"body":"room ready"}`) })
	for id, st := range r.wait(tx, is(message.StatusSent)) {
		if wait := st.SentMS - st.QueuedMS; wait > 500 {
			t.Fatalf("%s waited %d ms behind the bulk lane", id, wait)
		}
	}
	r.wait(bulk, is(message.StatusSent))
}

func TestCampaignsShareTheNumber(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{Rates: ratelimit.Config{DefaultRate: 400}})
	big := r.enqueue(400, sender, func(a *redis.EnqueueArgs) { a.Lane, a.Campaign = message.LaneBulk, "big" })
	small := r.enqueue(40, sender, func(a *redis.EnqueueArgs) {
		a.Lane, a.Campaign = message.LaneBulk, "small"
		a.Recipient = "+1999" + a.Recipient[5:]
	})
	r.start()
	bs := r.wait(big, is(message.StatusSent))
	ss := r.wait(small, is(message.StatusSent))
	var lastSmall int64
	for _, st := range ss {
		lastSmall = max(lastSmall, st.SentMS)
	}
	before := 0
	for _, st := range bs {
		if st.SentMS <= lastSmall {
			before++
		}
	}
	// Turn by turn, the small campaign is done after about as many of the
	// big one's; first come, first served would send all 400 first.
	if before > 120 {
		t.Fatalf("%d of the big campaign went before the small one finished", before)
	}
}
