package filer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

const (
	tenant = "hotel"
	shards = 4
)

var senders = []string{"+15550001000", "+15550001001", "+15550001002", "+15550001003"}

// TestMain runs a filer and nothing else when the test binary is started
// as the child of TestFilerFilesEachMessageOnceThroughKills.
func TestMain(m *testing.M) {
	if prefix := os.Getenv("WAGATE_FILER_CHILD_PREFIX"); prefix != "" {
		runChild(prefix)
		return
	}
	os.Exit(m.Run())
}

// runChild files conversations of prefix until it is killed.
func runChild(prefix string) {
	ctx := context.Background()
	rdb, err := redis.Open(ctx, redistest.URL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := redis.New(ctx, rdb, redis.Config{Prefix: prefix, Shards: shards})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := New(Config{Instance: "child-" + strconv.Itoa(os.Getpid()), LeaseTTL: 300 * time.Millisecond, Gather: 20 * time.Millisecond},
		s, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f.Start()
	select {}
}

func newStore(t *testing.T) (*redis.Store, string) {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	s, err := redis.New(context.Background(), rdb, redis.Config{Prefix: prefix, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, prefix
}

// send queues a text to guest from sender and returns its id and
// conversation.
func send(t *testing.T, s *redis.Store, sender, guest, text string) (string, string) {
	t.Helper()
	res, err := s.Enqueue(context.Background(), &redis.EnqueueArgs{TenantID: tenant, Sender: sender, Recipient: guest,
		Type: message.TypeText, Content: []byte(`{"body":"` + text + `"}`), Lane: message.LaneTx, Preview: text})
	if err != nil || res.Outcome != redis.Queued {
		t.Fatalf("enqueue: %+v %v", res, err)
	}
	return res.ID, res.Conversation
}

// rawHistory reads a conversation's history as Redis holds it, without
// filing what waits (the conversation read would).
func rawHistory(t *testing.T, s *redis.Store, sender, conv string) []string {
	t.Helper()
	sh := message.ShardFor(sender, shards)
	raw, err := s.Client().LRange(context.Background(), s.Keys().ConversationHistory(sh, tenant, conv), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(raw))
	for _, r := range raw {
		var e redis.HistoryEntry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			t.Fatalf("history entry %q: %v", r, err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// A filer killed (SIGKILL) again and again while messages pour in leaves
// every conversation's history holding each of its messages exactly once,
// in the order they were accepted: a batch is filed and deleted in one
// atomic call, so a kill falls before or after it, never inside.
func TestFilerFilesEachMessageOnceThroughKills(t *testing.T) {
	s, prefix := newStore(t)
	start := func() *exec.Cmd {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "WAGATE_FILER_CHILD_PREFIX="+prefix)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	child := start()
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })

	const guests, each = 40, 100
	type line struct {
		sender, conv string
		ids          []string
	}
	lines := make([]line, guests)
	var wg sync.WaitGroup
	for g := range guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := senders[g%len(senders)]
			guest := "+4470000" + strconv.Itoa(10000+g)
			for i := range each {
				id, conv := send(t, s, sender, guest, "message "+strconv.Itoa(i))
				lines[g].sender, lines[g].conv = sender, conv
				lines[g].ids = append(lines[g].ids, id)
				time.Sleep(25 * time.Millisecond)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	kills := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		// Past the dead child's lease (300 ms), so that each child owns
		// shards and files for a while before it is killed.
		case <-time.After(time.Duration(350+kills*70%250) * time.Millisecond):
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
			kills++
			child = start()
		}
	}
	filed := 0
	for _, l := range lines {
		filed += len(rawHistory(t, s, l.sender, l.conv))
	}
	if filed == 0 {
		t.Fatal("the killed filers filed nothing")
	}
	// The last filer files the rest.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := s.FileBacklog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still wait to be filed", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d kills of the filer", kills)
	if kills < 4 {
		t.Fatalf("only %d kills: the test did not test", kills)
	}
	for g, l := range lines {
		got := rawHistory(t, s, l.sender, l.conv)
		if fmt.Sprint(got) != fmt.Sprint(l.ids) {
			t.Fatalf("guest %d: history %v\nwant %v", g, got, l.ids)
		}
	}
}

// Under a steady load the inbox lags the API by at most a second: each
// message is in its conversation's history within 1 s of its 202.
func TestInboxLagsAtMostASecondUnderLoad(t *testing.T) {
	s, _ := newStore(t)
	reg := prometheus.NewRegistry()
	f, err := New(Config{Instance: "lag-test"}, s, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(func() { f.Shutdown(context.Background()) })
	waitOwned(t, f, shards)

	// 2 000 messages a second for 3 s from 32 senders' worth of callers,
	// each to a guest of its own; every 50th is watched.
	const rate, secs, workers = 2000, 3, 32
	type watched struct {
		sender, conv, id string
		accepted         time.Time
	}
	var mu sync.Mutex
	var sample []watched
	var wg sync.WaitGroup
	tick := time.Second * workers / rate
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now()
			for i := 0; i < rate*secs/workers; i++ {
				time.Sleep(time.Until(next))
				next = next.Add(tick)
				sender := senders[(w+i)%len(senders)]
				id, conv := send(t, s, sender, "+44710"+strconv.Itoa(1000000+w*10000+i), "load")
				if i%50 == 0 {
					mu.Lock()
					sample = append(sample, watched{sender, conv, id, time.Now()})
					mu.Unlock()
				}
			}
		}()
	}
	// Watch the sample until each is filed.
	var worst time.Duration
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		filed := map[string]bool{}
		for {
			mu.Lock()
			pending := append([]watched(nil), sample...)
			mu.Unlock()
			// Every unfiled one's newest history entry in one round trip,
			// so that the watching adds little to the lag it measures.
			all := true
			p := s.Client().Pipeline()
			var asked []watched
			var cmds []*goredis.StringSliceCmd
			for _, w := range pending {
				if !filed[w.id] {
					asked = append(asked, w)
					cmds = append(cmds, p.LRange(context.Background(),
						s.Keys().ConversationHistory(message.ShardFor(w.sender, shards), tenant, w.conv), -1, -1))
				}
			}
			if len(cmds) > 0 {
				if _, err := p.Exec(context.Background()); err != nil && !errors.Is(err, goredis.Nil) {
					t.Error(err)
					return
				}
			}
			now := time.Now()
			for i, w := range asked {
				var e redis.HistoryEntry
				if v := cmds[i].Val(); len(v) == 1 && json.Unmarshal([]byte(v[0]), &e) == nil && e.ID == w.id {
					filed[w.id] = true
					worst = max(worst, now.Sub(w.accepted))
					continue
				}
				all = false
			}
			select {
			case <-stop:
				if all {
					return
				}
			default:
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-watchDone
	t.Logf("%d messages watched, the slowest filed %v after its 202", len(sample), worst)
	if worst > time.Second {
		t.Fatalf("a message reached its conversation %v after its 202, over the 1 s bound", worst)
	}
	// The filer's own measure agrees: no batch's oldest message waited
	// more than a second.
	h := histogram(t, reg, "wagate_filer_lag_seconds")
	var within uint64
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 1 {
			within = b.GetCumulativeCount()
		}
	}
	if h.GetSampleCount() == 0 || within != h.GetSampleCount() {
		t.Fatalf("filer lag: %d of %d batches within 1 s", within, h.GetSampleCount())
	}
}

func waitOwned(t *testing.T, f *Filer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.Owned()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the filer owns %v", f.Owned())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
