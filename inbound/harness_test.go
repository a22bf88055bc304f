package inbound

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/dispatchtest"
	"github.com/wagate/wagate/internal/sendargs"
	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// harness is a store on a private key prefix, written to as the API and
// the dispatcher write it, for processors to apply.
type harness struct {
	t     *testing.T
	store *redis.Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 4, InboundParts: 2})
	must(t, err)
	t.Cleanup(store.Close)
	return &harness{t: t, store: store}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seedGuest is the guest of seed 001's examples.
const seedGuest = "+1234567890"

// harnessNumbers are the Meta phone number ids of the harness's numbers:
// the hotel's two and seaside's one.
var harnessNumbers = map[string]NumberRef{
	"100000000000001": {Tenant: "grand-plaza", Sender: "+15550001000"},
	"100000000000002": {Tenant: "grand-plaza", Sender: "+15550001001"},
	"200000000000001": {Tenant: "seaside", Sender: "+15550002000"},
}

// start runs a processor of cfg, its zero fields quick for tests and its
// numbers the harness's.
func (h *harness) start(cfg Config) *Processor {
	h.t.Helper()
	if cfg.Consumer == "" {
		cfg.Consumer = "p1"
	}
	if cfg.Block == 0 {
		cfg.Block = 50 * time.Millisecond
	}
	if cfg.OrphanSweep == 0 {
		cfg.OrphanSweep = 20 * time.Millisecond
	}
	if cfg.Numbers == nil {
		cfg.Numbers = harnessNumbers
	}
	p := New(cfg, h.store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	p.Start()
	h.t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

// post stores a verified webhook body as the API does, tagged with the
// provider ("meta", "gallabox", "gallabox/<name>", "chatapp").
func (h *harness) post(tag string, body []byte) {
	h.t.Helper()
	must(h.t, h.store.AppendInbound(context.Background(), tag, body))
}

// queued queues a text to the seed's guest from the hotel's first
// number, as the API does, and returns its id.
func (h *harness) queued() string {
	h.t.Helper()
	a := &redis.EnqueueArgs{TenantID: "grand-plaza", Sender: "+15550001000", Recipient: seedGuest, Type: message.TypeText,
		Content: sendargs.AppendText(nil, "hi", false), Lane: message.LaneTx, Preview: "hi"}
	a.Fingerprint = sendargs.Fingerprint(a)
	res, err := h.store.Enqueue(context.Background(), a)
	must(h.t, err)
	return res.ID
}

// sentVia queues a message and records it as sent by provider name with
// pid, as the dispatcher would.
func (h *harness) sentVia(name, pid string) string {
	h.t.Helper()
	id := h.queued()
	h.markSent(id, name, pid)
	return id
}

func (h *harness) markSent(id, name, pid string) {
	h.t.Helper()
	dispatchtest.MarkSent(h.t, h.store, id, name, pid)
}

// waitStatus polls message id's state until its status is want.
func (h *harness) waitStatus(id string, want message.Status) *redis.State {
	h.t.Helper()
	var st *redis.State
	testwait.For(h.t, 5*time.Second, "message "+id+" to be "+string(want), func() bool {
		var err error
		st, err = h.store.State(context.Background(), id)
		must(h.t, err)
		return st.Status == want
	})
	return st
}

func (h *harness) inboundLen() int64 {
	var n int64
	for p := 0; p < 2; p++ {
		n += h.store.Client().XLen(context.Background(), h.store.Keys().Inbound(p)).Val()
	}
	return n
}

// notices are the tenant webhook events of the hotel's first number so
// far, of the given kind, by message id.
func (h *harness) notices(kind string) map[string]map[string]any {
	h.t.Helper()
	shard := message.ShardFor("+15550001000", 4)
	ms, err := h.store.Client().XRange(context.Background(), h.store.Keys().Notify(shard), "-", "+").Result()
	must(h.t, err)
	out := map[string]map[string]any{}
	for _, m := range ms {
		if m.Values["k"] != kind {
			continue
		}
		var d map[string]any
		must(h.t, json.Unmarshal([]byte(m.Values["d"].(string)), &d))
		out[d["message_id"].(string)] = d
	}
	return out
}

// conversation is guest's conversation with sender, and its history.
func (h *harness) conversation(tenant, sender, guest string) (*redis.Conversation, []redis.HistoryEntry) {
	h.t.Helper()
	ctx := context.Background()
	cs, _, err := h.store.ListConversations(ctx, tenant, []string{sender}, redis.ConversationFilter{Guest: guest}, 10, nil)
	must(h.t, err)
	if len(cs) == 0 {
		return nil, nil
	}
	hist, _, err := h.store.ConversationHistory(ctx, cs[0], 100, -1)
	must(h.t, err)
	return cs[0], hist
}
