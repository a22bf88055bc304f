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

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// series reads the values of metric name from reg, by their labels
// ("shard=1,lane=tx").
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(ls, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

// merged adds up the series of several instances; seen counts how many
// reported each.
func merged(t *testing.T, name string, regs ...*prometheus.Registry) (sum map[string]float64, seen map[string]int) {
	sum, seen = map[string]float64{}, map[string]int{}
	for _, reg := range regs {
		for k, v := range series(t, reg, name) {
			sum[k] += v
			seen[k]++
		}
	}
	return sum, seen
}

// byLabel adds up series by the value of one label.
func byLabel(s map[string]float64, label string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		for _, l := range strings.Split(k, ",") {
			if name, val, _ := strings.Cut(l, "="); name == label {
				out[val] += v
			}
		}
	}
	return out
}

// Two dispatchers on one Redis: each shard's queues and each sender's rate
// are reported by the shard's owner alone, so sums over the instances are
// the truth, and a shard that moves takes its series along.
func TestTwoDispatchersReportEachShardOnce(t *testing.T) {
	const shards = 4
	rdb := redistest.Client(t)
	ctx := context.Background()
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	// A sender on each shard.
	var senders []string
	have := map[int]bool{}
	for n := 0; len(senders) < shards; n++ {
		s := fmt.Sprintf("+1555000%04d", n)
		if sh := message.ShardFor(s, shards); !have[sh] {
			have[sh] = true
			senders = append(senders, s)
		}
	}
	sc := sim.Config{Addr: "127.0.0.1:0", RecipientErrors: map[string]int{"14155550000": 131000}}
	ids := map[string]string{}
	rates := ratelimit.Config{PerNumber: map[string]float64{}}
	for i, s := range senders {
		ids[s] = fmt.Sprintf("10000000000010%d", i)
		sc.Numbers = append(sc.Numbers, sim.Number{PhoneNumberID: ids[s], DisplayPhoneNumber: s[1:], WABAID: "1"})
		rates.PerNumber[s] = 0.01 // one message now, the next in 100 s
	}
	sm, err := sim.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Shutdown(context.Background()) })
	mc, err := meta.New(meta.Config{BaseURL: sm.URL(), AccessToken: sim.DefaultAccessToken, PhoneNumberIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	rt := routes{}
	for _, s := range senders {
		rt[s] = &Route{Primary: mc}
	}
	start := func(name string) (*Dispatcher, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		d, err := New(Config{Instance: name, LeaseTTL: 500 * time.Millisecond, MaxAttempts: 1, Rates: rates}, store, rt, reg,
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		d.Start()
		t.Cleanup(func() { d.Shutdown(context.Background()) })
		return d, reg
	}
	sent := func() int {
		n := 0
		for _, s := range senders {
			n += len(sm.Requests(ids[s]))
		}
		st := sm.Stats()
		return n + int(st.Rejected[131000])
	}

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 20 s: %s (sent %d, stats %+v)", what, sent(), sm.Stats())
			}
		}
	}
	// Per sender: a message that fails (a dead letter), three waiting on
	// the transactional lane, two on a campaign's, one scheduled.
	firstQueued := time.Now()
	for _, s := range senders {
		for i, a := range []redis.EnqueueArgs{
			{Recipient: "+14155550000"}, {Recipient: "+14155550001"}, {Recipient: "+14155550002"}, {Recipient: "+14155550003"},
			{Recipient: "+14155550004", Lane: message.LaneBulk, Campaign: "spring"},
			{Recipient: "+14155550005", Lane: message.LaneBulk, Campaign: "spring"},
			{Recipient: "+14155550006", DueMS: time.Now().Add(time.Hour).UnixMilli()},
		} {
			a.TenantID, a.Sender, a.Type, a.Content = "hotel", s, message.TypeText, []byte(fmt.Sprintf(`{"body":"%d"}`, i))
			if a.Lane == "" {
				a.Lane = message.LaneTx
			}
			if _, err := store.Enqueue(ctx, &a); err != nil {
				t.Fatal(err)
			}
		}
	}
	lastQueued := time.Now()
	check := func(moved int, regs ...*prometheus.Registry) {
		t.Helper()
		before := time.Now()
		oldest, _ := merged(t, "wagate_queue_oldest_seconds", regs...)
		lo, hi := before.Sub(lastQueued).Seconds(), time.Since(firstQueued).Seconds()
		for k, age := range oldest {
			// Stream ids are whole milliseconds.
			if age < lo-0.005 || age > hi+0.005 {
				t.Fatalf("%s: oldest %.3f s, want %.3f–%.3f", k, age, lo, hi)
			}
		}
		if len(oldest) != shards {
			t.Fatalf("oldest ages %v, want %d shards", oldest, shards)
		}
		depth, seen := merged(t, "wagate_queue_depth", regs...)
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%s reported by %d instances", k, n)
			}
		}
		want := map[string]float64{"tx": float64(3*shards - moved), "bulk": 2 * shards, "delayed": shards}
		if got := byLabel(depth, "lane"); !maps(got, want) {
			t.Fatalf("queue depth summed over the instances %v, want %v", got, want)
		}
		if got := byLabel(depth, "shard"); len(got) != shards {
			t.Fatalf("queue depth of shards %v, want all %d once", got, shards)
		}
		dead, _ := merged(t, "wagate_dead_letters", regs...)
		if got := byLabel(dead, "shard"); len(got) != shards || sum(got) != shards {
			t.Fatalf("dead letters %v, want one on each of %d shards", got, shards)
		}
		rate, seen := merged(t, "wagate_dispatch_sender_rate", regs...)
		if len(rate) != len(senders) {
			t.Fatalf("sender rates %v, want each of %d senders", rate, len(senders))
		}
		for k, r := range rate {
			if seen[k] != 1 || r <= 0 || r > 0.01 {
				t.Fatalf("%s: rate %v reported by %d instances", k, r, seen[k])
			}
		}
	}

	d1, reg1 := start("d1")
	// d1 sends each sender's first message (a dead letter), then waits.
	waitFor("d1 owns every shard and sent one message per sender", func() bool { return len(d1.Owned()) == shards && sent() == shards })
	check(0, reg1)

	d2, reg2 := start("d2")
	waitFor("the shards are spread", func() bool { return len(d1.Owned()) == shards/2 && len(d2.Owned()) == shards/2 })
	// d2's buckets are new: it sends one more message of each sender it
	// took over, then waits too.
	moved := shards / 2
	waitFor("d2 sent one message per sender it took", func() bool { return sent() == shards+moved })
	check(moved, reg1, reg2)
	for _, k := range slices.Collect(mapsKeys(series(t, reg1, "wagate_dispatch_sender_rate"))) {
		if _, dup := series(t, reg2, "wagate_dispatch_sender_rate")[k]; dup {
			t.Fatalf("%s reported by both instances", k)
		}
	}

	// d2 leaves: d1 takes its shards back, and d2 reports none of them.
	if err := d2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("d1 owns every shard again", func() bool { return len(d1.Owned()) == shards })
	check(moved, reg1)
	for _, name := range []string{"wagate_queue_depth", "wagate_dead_letters", "wagate_queue_oldest_seconds", "wagate_dispatch_sender_rate"} {
		if s := series(t, reg2, name); len(s) != 0 {
			t.Fatalf("a stopped dispatcher still reports %s %v", name, s)
		}
	}
}

func maps(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

func mapsKeys(m map[string]float64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
