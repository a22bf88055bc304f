package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// idleBound is the most commands a second an idle dispatcher owning all 16
// shards may send: it renews its leases (a GETEX per shard a second), reads
// and writes its membership, and otherwise waits in Redis (a wake-up read
// per shard every 10 s) or sleeps until something is due (fallback checks
// look every 5 s). About 17 a second here; 550 before it waited.
const idleBound = 40

// An idle dispatcher waits in Redis rather than polling it. The Redis is
// the test's own: INFO commandstats counts every client's commands.
func TestIdleDispatcherSendsFewCommands(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: "idle"}) // 16 shards
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0",
		Numbers: []sim.Number{{PhoneNumberID: phoneID, DisplayPhoneNumber: sender[1:], WABAID: "1"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	mc, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: sim.DefaultAccessToken, PhoneNumberIDs: map[string]string{sender: phoneID}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Instance: "idle-1"}, store, routes{sender: &Route{Primary: mc}}, prometheus.NewRegistry(),
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Shutdown(context.Background()) })

	// One message sent: the sender's pump runs, as a gateway's would.
	res, err := store.Enqueue(ctx, &redis.EnqueueArgs{TenantID: "hotel", Sender: sender, Recipient: "+14155550000",
		Type: message.TypeText, Content: []byte(`{"body":"hi"}`), Lane: message.LaneTx})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := store.State(ctx, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == message.StatusSent && len(d.Owned()) == 16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: message %s, shards %v", st.Status, d.Owned())
		}
		time.Sleep(20 * time.Millisecond)
	}

	perSecond, lines := idleCommands(t, rdb)
	t.Logf("an idle dispatcher sent %.1f commands a second: %s", perSecond, lines)
	if perSecond > idleBound {
		t.Fatalf("an idle dispatcher sent %.1f commands a second, want at most %d: %s", perSecond, idleBound, lines)
	}
}

// An idle webhook deliverer waits in Redis too: its events and notices
// reads block over every shard at once, retries are looked for every Poll.
// About 5 a second here (4 of them the retries' look); 140 before.
func TestIdleHookDelivererSendsFewCommands(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: "idlehooks"}) // 16 shards
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	d, err := NewHookDeliverer(HookConfig{Consumer: "idle-hooks"}, store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Shutdown(context.Background()) })
	time.Sleep(time.Second) // its first reclaim looks are not idling
	perSecond, lines := idleCommands(t, rdb)
	t.Logf("an idle webhook deliverer sent %.1f commands a second: %s", perSecond, lines)
	if perSecond > 10 {
		t.Fatalf("an idle webhook deliverer sent %.1f commands a second, want at most 10: %s", perSecond, lines)
	}
}

// idleCommands counts the commands a test's own Redis serves in 6 s of
// idling: how many a second, and each command's calls.
func idleCommands(t *testing.T, rdb *goredis.Client) (float64, string) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const window = 6 * time.Second
	time.Sleep(window) // the measurement itself: nothing to wait for
	stats, err := redistest.CommandStats(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var lines []string
	for name, st := range stats {
		if name == "info" || name == "config|resetstat" {
			continue
		}
		total += st.Calls
		lines = append(lines, fmt.Sprintf("%s %d", name, st.Calls))
	}
	slices.Sort(lines)
	return float64(total) / window.Seconds(), strings.Join(lines, ", ")
}
