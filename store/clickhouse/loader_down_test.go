package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
)

// TestLoaderClickHouseDownLosesNothing: stopping ClickHouse for a while and
// starting it again loses no event. The loader keeps its failing batch, reads
// nothing more and acks nothing while ClickHouse is down, and once it is back
// every event is in message_events exactly once and acknowledged once.
func TestLoaderClickHouseDownLosesNothing(t *testing.T) {
	openTest(t) // the shared server proves the ClickHouse binaries are installed
	dir := t.TempDir()
	port := fmt.Sprint(freePort(t))
	services(t, "clickhouse-start", dir, port)
	t.Cleanup(func() { services(t, "clickhouse-stop", dir, "KILL") })

	ctx := context.Background()
	cfg := Config{
		Addr:            "127.0.0.1:" + port,
		Database:        "wagate_down",
		DialTimeout:     time.Second,
		ReadTimeout:     10 * time.Second,
		BatchSize:       20,
		FlushInterval:   30 * time.Millisecond,
		InsertTimeout:   5 * time.Second,
		RetryBackoffMin: 20 * time.Millisecond,
		RetryBackoffMax: 200 * time.Millisecond,
	}
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open private ClickHouse: %v", err)
	}
	t.Cleanup(func() { conn.Close() }) // after the loader's Shutdown (cleanups run last-in first-out)
	if err := Migrate(ctx, conn, cfg.Database); err != nil {
		t.Fatal(err)
	}

	src := newMemSource(t)
	logs := newLogCounter(t)
	l, reg := startLoader(t, cfg, conn, src, slogNew(logs))

	// Up: 50 events flow through.
	now := time.Now().UnixMilli()
	var all []message.Event
	all = append(all, src.push(newEvents(50, "tenant-down", message.StatusSent, now)...)...)
	testwait.For(t, 20*time.Second, "first 50 events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == 50
	})

	// Down: 100 more arrive while ClickHouse is dead.
	services(t, "clickhouse-stop", dir, "KILL")
	all = append(all, src.push(newEvents(100, "tenant-down", message.StatusDelivered, now+1)...)...)
	testwait.For(t, 20*time.Second, "insert failures", func() bool {
		return metric(t, reg, "wagate_loader_batches_total", "result", "error") >= 3 &&
			metric(t, reg, "wagate_loader_clickhouse_up") == 0
	})
	read, acked, _ := src.state()
	if acked != 50 {
		t.Errorf("%d events acknowledged while ClickHouse was down, want still 50", acked)
	}
	held := metric(t, reg, "wagate_loader_pending_events")
	if held < 1 || held > float64(cfg.BatchSize) || float64(read-50) != held {
		t.Errorf("while down: read %d new events, holding %v; want it to hold what it read, at most one batch (%d)", read-50, held, cfg.BatchSize)
	}
	time.Sleep(time.Second) // down a while: retries reach the backoff cap
	if read2, acked2, _ := src.state(); read2 != read || acked2 != 50 {
		t.Errorf("while down the loader went on reading (%d → %d) or acking (%d)", read, read2, acked2)
	}
	if metric(t, reg, "wagate_loader_oldest_pending_seconds") < 1 {
		t.Errorf("oldest_pending_seconds does not show the held batch ageing")
	}

	// Up again, same data directory and port.
	services(t, "clickhouse-start", dir, port)
	testwait.For(t, 60*time.Second, "all 150 events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == len(all)
	})
	src.checkAckedOnce(t)

	rows := stored(t, conn, cfg.Database)
	if len(rows) != len(all) {
		t.Errorf("%d distinct events in message_events, want %d", len(rows), len(all))
	}
	for _, ev := range all {
		key := ev.MessageID + "/" + string(ev.Status)
		if n := rows[key]; n != 1 {
			t.Errorf("event %s stored %d times, want exactly once", key, n)
		}
	}
	if got := metric(t, reg, "wagate_loader_clickhouse_up"); got != 1 {
		t.Errorf("clickhouse_up = %v after recovery", got)
	}
	if got := metric(t, reg, "wagate_loader_rows_acked_total"); got != float64(len(all)) {
		t.Errorf("rows_acked_total = %v, want %d", got, len(all))
	}
	if got := metric(t, reg, "wagate_loader_rows_inserted_total"); got != float64(len(all)) {
		t.Errorf("rows_inserted_total = %v, want %d", got, len(all))
	}
	if n := logs.count("insert into clickhouse failed; holding the batch and retrying"); n != 1 {
		t.Errorf("insert failure logged %d times over many retries, want once", n)
	}
	if n := logs.count("inserts into clickhouse work again"); n != 1 {
		t.Errorf("insert recovery logged %d times, want once", n)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
