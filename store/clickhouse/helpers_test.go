package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/message"
)

// testAddr is the shared test ClickHouse that scripts/services starts.
func testAddr() string {
	if a := os.Getenv("WAGATE_TEST_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// testConfig is a config for the shared test server with a fast loader.
func testConfig(db string) Config {
	return Config{
		Addr:            testAddr(),
		Database:        db,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     20 * time.Second,
		BatchSize:       100,
		FlushInterval:   50 * time.Millisecond,
		InsertTimeout:   10 * time.Second,
		RetryBackoffMin: 10 * time.Millisecond,
		RetryBackoffMax: 100 * time.Millisecond,
	}
}

// openTest connects to the shared test ClickHouse, failing the test (never
// skipping it) when it does not answer.
func openTest(t testing.TB) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Open(ctx, testConfig("wagate"))
	if err != nil {
		t.Fatalf("ClickHouse at %s does not answer (run scripts/test, which starts it, or scripts/services up): %v", testAddr(), err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// newDB creates and migrates a database of the test's own, dropped at the end.
func newDB(t testing.TB, conn driver.Conn) string {
	t.Helper()
	db := fmt.Sprintf("wagate_test_%016x", rand.Uint64())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatalf("migrate %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteDB(db)); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
	})
	return db
}

// repoRoot walks up from the test's directory to the one holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// freePort returns a loopback port that, with the next one (ClickHouse's
// HTTP port in scripts/services), is free right now.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

// services runs scripts/services with args.
func services(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(t), "scripts", "services"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/services %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// metric returns the value of the metric name with the given label pairs
// (counter, gauge, or a histogram's sample count) as reg exposes it.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s%v not exposed", name, labels)
	return 0
}

// logCounter is a slog handler that counts records by message, to check that
// the loader logs state changes rather than every retry.
type logCounter struct {
	mu   *sync.Mutex
	msgs map[string]int
	out  slog.Handler
}

func newLogCounter(t testing.TB) *logCounter {
	return &logCounter{mu: new(sync.Mutex), msgs: map[string]int{}, out: slog.NewTextHandler(t.Output(), nil)}
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Message]++
	h.mu.Unlock()
	return h.out.Handle(ctx, r)
}
func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.out = h.out.WithAttrs(as)
	return &c
}
func (h *logCounter) WithGroup(g string) slog.Handler {
	c := *h
	c.out = h.out.WithGroup(g)
	return &c
}
func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }

func (h *logCounter) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// memSource is an in-memory EventSource, a test double of store/redis's
// events streams with the same contract: events read but not acknowledged
// come back after restart. It records what the loader did with it.
type memSource struct {
	t      testing.TB
	mu     sync.Mutex
	queue  []message.Event          // not yet read
	unack  map[string]message.Event // read, not acknowledged, by StreamID
	acks   map[string]int           // times each StreamID was acknowledged
	ackLog [][]string               // StreamIDs of each successful Ack call
	ackAt  []time.Time              // when each successful Ack call came
	read   int                      // events returned by Read, all calls
	seq    int
	wake   chan struct{}
	// onAck, when set, runs before an Ack is recorded; its error fails the Ack.
	onAck func(evs []message.Event) error
}

func newMemSource(t testing.TB) *memSource {
	return &memSource{t: t, unack: map[string]message.Event{}, acks: map[string]int{}, wake: make(chan struct{}, 1)}
}

// push queues events, giving each a stream id, and returns them as queued.
func (s *memSource) push(evs ...message.Event) []message.Event {
	out := make([]message.Event, len(evs))
	s.mu.Lock()
	for i, ev := range evs {
		s.seq++
		ev.StreamID = fmt.Sprintf("%d-0", s.seq)
		s.queue = append(s.queue, ev)
		out[i] = ev
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return out
}

// restart puts events read but never acknowledged back in the queue, as a
// consumer group does for a restarted consumer.
func (s *memSource) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var back []message.Event
	for _, ev := range s.unack {
		back = append(back, ev)
	}
	clear(s.unack)
	s.queue = append(back, s.queue...)
}

func (s *memSource) Read(ctx context.Context, dst []message.Event, max int, block time.Duration) ([]message.Event, error) {
	if max <= 0 || block <= 0 {
		s.t.Errorf("Read(max=%d, block=%v): both must be positive", max, block)
	}
	timer := time.NewTimer(block)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			n := min(max, len(s.queue))
			for _, ev := range s.queue[:n] {
				s.unack[ev.StreamID] = ev
			}
			dst = append(dst, s.queue[:n]...)
			s.queue = s.queue[n:]
			s.read += n
			s.mu.Unlock()
			return dst, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-timer.C:
			return dst, nil
		case <-s.wake:
		}
	}
}

func (s *memSource) Ack(ctx context.Context, evs []message.Event) error {
	if s.onAck != nil {
		if err := s.onAck(evs); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.StreamID
		s.acks[ev.StreamID]++
		delete(s.unack, ev.StreamID)
	}
	s.ackLog = append(s.ackLog, ids)
	s.ackAt = append(s.ackAt, time.Now())
	return nil
}

// state returns how many events were read, how many distinct ones were
// acknowledged, and how many Ack calls succeeded.
func (s *memSource) state() (read, acked, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read, len(s.acks), len(s.ackLog)
}

// checkAckedOnce fails t unless exactly the events pushed were acknowledged,
// each once.
func (s *memSource) checkAckedOnce(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acks) != s.seq {
		t.Errorf("%d distinct events acknowledged, want %d", len(s.acks), s.seq)
	}
	for id, n := range s.acks {
		if n != 1 {
			t.Errorf("event %s acknowledged %d times", id, n)
		}
	}
}

// newEvents returns n events of distinct new messages of tenant, all with
// status and at atMS, spread over two senders.
func newEvents(n int, tenant string, status message.Status, atMS int64) []message.Event {
	evs := make([]message.Event, n)
	for i := range evs {
		sender := "+15550001000"
		if i%2 == 1 {
			sender = "+15550002000"
		}
		shard := message.ShardFor(sender, 16)
		evs[i] = message.Event{
			Shard:     shard,
			MessageID: message.NewID(shard, atMS),
			TenantID:  tenant,
			Sender:    sender,
			Recipient: fmt.Sprintf("+4477009%05d", i),
			Status:    status,
			AtMS:      atMS,
			Channel:   "whatsapp",
			Provider:  "sim",
			Type:      message.TypeText,
			Lane:      message.LaneTx,
			Attempt:   1,
		}
	}
	return evs
}

// stored maps "message_id/status" to the number of rows of message_events
// (without FINAL, so duplicates show).
func stored(t testing.TB, conn driver.Conn, db string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, "SELECT message_id, status, toUInt64(count()) FROM "+quoteDB(db)+
		".message_events GROUP BY message_id, status")
	if err != nil {
		t.Fatalf("query stored events: %v", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var id, status string
		var n uint64
		if err := rows.Scan(&id, &status, &n); err != nil {
			t.Fatal(err)
		}
		out[id+"/"+status] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// startLoader starts a loader with its own registry and shuts it down at the
// end of the test if the test has not.
func startLoader(t testing.TB, cfg Config, conn driver.Conn, src EventSource, logger *slog.Logger) (*Loader, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l := NewLoader(cfg, conn, src, reg, logger)
	l.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Shutdown(ctx)
	})
	return l, reg
}
