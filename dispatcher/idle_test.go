package dispatcher

import (
	"context"
	"log/slog"
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

	perSecond, lines := redistest.IdleCommands(t, rdb)
	t.Logf("an idle dispatcher sent %.1f commands a second: %s", perSecond, lines)
	if perSecond > idleBound {
		t.Fatalf("an idle dispatcher sent %.1f commands a second, want at most %d: %s", perSecond, idleBound, lines)
	}
}
