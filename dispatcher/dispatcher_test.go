package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

const (
	sender  = "+15550001000"
	phoneID = "100000000000001"
)

type routes map[string]provider.Provider

func (r routes) Route(s string) (provider.Provider, bool) { p, ok := r[s]; return p, ok }

// rig is a dispatcher over a real Redis sending to the simulator through
// the Meta adapter.
type rig struct {
	t     *testing.T
	store *redis.Store
	sim   *sim.Server
	d     *Dispatcher
	reg   *prometheus.Registry
	cfg   Config
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
	if cfg.Consumer == "" {
		cfg.Consumer = "d1"
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	return &rig{t: t, store: store, sim: s, reg: prometheus.NewRegistry(), cfg: cfg}
}

func (r *rig) start() {
	r.t.Helper()
	mc, err := meta.New(meta.Config{BaseURL: r.sim.URL(), AccessToken: sim.DefaultAccessToken, PhoneNumberIDs: map[string]string{sender: phoneID}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.d, err = New(r.cfg, r.store, routes{sender: mc}, nil, r.reg, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	r.d.Start()
	stopped := false
	r.t.Cleanup(func() {
		if !stopped {
			r.d.Shutdown(context.Background())
		}
	})
}

func (r *rig) enqueue(n int, from string) []string {
	r.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		res, err := r.store.Enqueue(context.Background(), &redis.EnqueueArgs{
			TenantID: "hotel", Sender: from, Recipient: fmt.Sprintf("+1415555%04d", i), Type: message.TypeText,
			Content: []byte(fmt.Sprintf(`{"body":"message %d"}`, i)), Lane: message.LaneTx,
		})
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
	deadline := time.Now().Add(20 * time.Second)
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
			r.t.Fatalf("%d of %d messages done after 20s", len(out), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) queuesEmpty() {
	r.t.Helper()
	ctx := context.Background()
	rdb := r.store.Client()
	for sh := 0; sh < 2; sh++ {
		for _, lane := range []string{"tx", "bulk"} {
			q := r.store.Keys().Queue(sh, lane)
			if n := rdb.XLen(ctx, q).Val(); n != 0 {
				r.t.Fatalf("%s still holds %d entries", q, n)
			}
			if p := rdb.XPending(ctx, q, redis.GroupDispatch).Val(); p.Count != 0 {
				r.t.Fatalf("%s has %d unacknowledged entries", q, p.Count)
			}
		}
	}
}

func isSent(s message.Status) bool { return s == message.StatusSent }

func TestEverySendReachesTheProviderOnce(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	ids := r.enqueue(60, sender)
	r.start()
	states := r.wait(ids, isSent)
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
}

func TestTransientErrorsAreRetried(t *testing.T) {
	r := newRig(t, sim.Config{ErrorRate: 0.5}, Config{MaxAttempts: 20})
	ids := r.enqueue(30, sender)
	r.start()
	states := r.wait(ids, isSent)
	retried := 0
	for _, st := range states {
		if st.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("half the calls failed, yet no message needed a second attempt")
	}
	if got := len(r.sim.Requests(phoneID)); got != len(ids) {
		t.Fatalf("simulator accepted %d sends for %d messages", got, len(ids))
	}
	r.queuesEmpty()
}

func TestExhaustedRetriesFail(t *testing.T) {
	r := newRig(t, sim.Config{ErrorRate: 1}, Config{MaxAttempts: 3})
	ids := r.enqueue(3, sender)
	r.start()
	for id, st := range r.wait(ids, func(s message.Status) bool { return s == message.StatusFailed }) {
		if st.Attempts != 3 || st.ErrorCode != 131000 || st.ErrorTitle == "" || st.FailedMS == 0 {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	if s := r.sim.Stats(); len(r.sim.Requests(phoneID)) != 0 || s.Accepted != 0 {
		t.Fatalf("simulator accepted sends: %+v", s)
	}
	r.queuesEmpty()
}

func TestSenderWithoutProviderFails(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{})
	ids := r.enqueue(1, "+15559999999")
	r.start()
	st := r.wait(ids, func(s message.Status) bool { return s == message.StatusFailed })[ids[0]]
	if !strings.Contains(st.ErrorTitle, "+15559999999") {
		t.Fatalf("failure reason %q does not name the sender", st.ErrorTitle)
	}
}

func TestMessageOfADeadWorkerIsSentAndCounted(t *testing.T) {
	r := newRig(t, sim.Config{}, Config{ReclaimIdle: 300 * time.Millisecond, SendTimeout: 200 * time.Millisecond, RecordTimeout: 50 * time.Millisecond})
	ids := r.enqueue(1, sender)
	shard, _ := message.ShardOf(ids[0])
	// A worker named "dead" takes the message, marks it sending, and dies.
	if jobs, err := r.store.Claim(context.Background(), shard, "dead", 10, -1, nil); err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	r.start()
	st := r.wait(ids, isSent)[ids[0]]
	if st.Attempts != 2 {
		t.Fatalf("attempts %d, want 2 (the dead worker's and ours)", st.Attempts)
	}
	if n := testutil.ToFloat64(r.d.m.duplicates); n != 1 {
		t.Fatalf("possible duplicates = %v, want 1", n)
	}
	r.queuesEmpty()
}

func TestShutdownFinishesSendsInFlight(t *testing.T) {
	r := newRig(t, sim.Config{Latency: 300 * time.Millisecond}, Config{Concurrency: 8})
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
			t.Fatalf("%s is %s after shutdown: neither recorded nor left to the next worker", id, st.Status)
		}
	}
	if sent == 0 || sent+queued != len(ids) || sent != len(r.sim.Requests(phoneID)) {
		t.Fatalf("sent %d, queued %d, simulator got %d", sent, queued, len(r.sim.Requests(phoneID)))
	}
}

func TestRestartedWorkerSendsItsPendingEntriesOnce(t *testing.T) {
	r := newRig(t, sim.Config{Latency: 200 * time.Millisecond}, Config{})
	ids := r.enqueue(10, sender)
	shard, _ := message.ShardOf(ids[0])
	// This very consumer took them and died before sending: after its
	// restart it must send each once, not once per read of its backlog.
	if jobs, err := r.store.Claim(context.Background(), shard, r.cfg.Consumer, 100, -1, nil); err != nil || len(jobs) != 10 {
		t.Fatalf("claim: %d %v", len(jobs), err)
	}
	r.start()
	r.wait(ids, isSent)
	time.Sleep(300 * time.Millisecond)
	if got := len(r.sim.Requests(phoneID)); got != 10 {
		t.Fatalf("simulator got %d sends for 10 messages", got)
	}
	if n := testutil.ToFloat64(r.d.m.duplicates); n != 10 {
		t.Fatalf("possible duplicates = %v, want the 10 that were marked sending", n)
	}
}

func TestThrottlingDoesNotUseUpRetries(t *testing.T) {
	// The simulator takes 20 mps; nothing paces the dispatcher.
	r := newRig(t, sim.Config{Throughput: 20, ThroughputBurst: 5}, Config{MaxAttempts: 1})
	ids := r.enqueue(40, sender)
	r.start()
	r.wait(ids, isSent)
	if n := testutil.ToFloat64(r.d.m.sends.WithLabelValues("meta", "throttled")); n == 0 {
		t.Fatal("the simulator never throttled: the test proves nothing")
	}
}
