package clickhouse

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
)

// ackOnlyStored returns an onAck hook that fails the test if any event being
// acknowledged is not in message_events yet.
func ackOnlyStored(t testing.TB, conn driver.Conn, db string) func([]message.Event) error {
	return func(evs []message.Event) error {
		ids := make([]string, len(evs))
		for i, ev := range evs {
			ids[i] = ev.MessageID + "/" + string(ev.Status)
		}
		var n uint64
		var err error
		// A pooled connection the server dropped fails once; that is the
		// driver's business, not what this check is about.
		for try := 0; try < 3; try++ {
			err = conn.QueryRow(context.Background(), "SELECT toUInt64(uniqExact(message_id, status)) FROM "+quoteDB(db)+
				".message_events WHERE has(?, concat(message_id, '/', status))", ids).Scan(&n)
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("checking acked events are stored: %v", err)
		} else if n != uint64(len(evs)) {
			t.Errorf("Ack of %d events of which only %d are in ClickHouse", len(evs), n)
		}
		return nil
	}
}

func TestLoaderFlushesOnSize(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	cfg := testConfig(db)
	cfg.BatchSize = 5
	cfg.FlushInterval = time.Hour // only size can trigger a flush
	src := newMemSource(t)
	src.onAck = ackOnlyStored(t, conn, db)
	l, reg := startLoader(t, cfg, conn, src, nil)

	src.push(newEvents(12, "tenant-size", message.StatusSent, time.Now().UnixMilli())...)
	testwait.For(t, 10*time.Second, "two full batches acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == 10
	})
	testwait.For(t, 5*time.Second, "the last 2 events held", func() bool {
		return metric(t, reg, "wagate_loader_pending_events") == 2
	})
	time.Sleep(100 * time.Millisecond)
	if _, acked, calls := src.state(); acked != 10 || calls != 2 {
		t.Fatalf("before Shutdown: %d events acked in %d calls, want 10 in 2 (the rest wait for size or time)", acked, calls)
	}
	if age := metric(t, reg, "wagate_loader_oldest_pending_seconds"); age <= 0 {
		t.Errorf("oldest_pending_seconds = %v while 2 events are held", age)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	src.checkAckedOnce(t)
	for i, ids := range src.ackLog {
		if want := []int{5, 5, 2}[i]; len(ids) != want {
			t.Errorf("ack call %d had %d events, want %d", i, len(ids), want)
		}
	}
	if got := len(stored(t, conn, db)); got != 12 {
		t.Errorf("%d events stored, want 12", got)
	}
	for name, want := range map[string]float64{
		"wagate_loader_rows_inserted_total":     12,
		"wagate_loader_rows_acked_total":        12,
		"wagate_loader_insert_duration_seconds": 3,
		"wagate_loader_pending_events":          0,
		"wagate_loader_oldest_pending_seconds":  0,
		"wagate_loader_clickhouse_up":           1,
		"wagate_loader_source_errors_total":     0,
	} {
		if got := metric(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metric(t, reg, "wagate_loader_batches_total", "result", "ok"); got != 3 {
		t.Errorf("batches ok = %v, want 3", got)
	}
	if got := metric(t, reg, "wagate_loader_batches_total", "result", "error"); got != 0 {
		t.Errorf("batches error = %v, want 0", got)
	}
}

func TestLoaderFlushesOnTime(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	cfg := testConfig(db)
	cfg.BatchSize = 1000
	cfg.FlushInterval = 300 * time.Millisecond
	src := newMemSource(t)
	src.onAck = ackOnlyStored(t, conn, db)
	startLoader(t, cfg, conn, src, nil)

	for round, n := range []int{3, 2} {
		pushed := time.Now()
		src.push(newEvents(n, "tenant-time", message.StatusSent, pushed.UnixMilli())...)
		testwait.For(t, 10*time.Second, "events acknowledged", func() bool {
			_, _, calls := src.state()
			return calls == round+1
		})
		src.mu.Lock()
		ids, at := src.ackLog[round], src.ackAt[round]
		src.mu.Unlock()
		if len(ids) != n {
			t.Errorf("round %d: ack of %d events, want all %d in one batch", round, len(ids), n)
		}
		if waited := at.Sub(pushed); waited < cfg.FlushInterval {
			t.Errorf("round %d: flushed %v after the first event, before FlushInterval %v with the batch not full", round, waited, cfg.FlushInterval)
		}
	}
	src.checkAckedOnce(t)
}

func TestLoaderRowValues(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	src := newMemSource(t)
	startLoader(t, testConfig(db), conn, src, nil)

	const at = int64(1_700_000_123_456) // 2023-11-14 22:15:23.456 UTC
	type row struct {
		date                      string
		unixTime                  uint32
		attempt, shard            uint16
		errorCode                 int32
		billable                  uint8
		status, typ, lane, stream string
	}
	cases := []struct {
		name string
		ev   message.Event
		want row
	}{
		{"every field", message.Event{
			Shard: 7, MessageID: message.NewID(7, at-5000), TenantID: "hotel-1", Sender: "+15550001000",
			Recipient: "+447700900123", Status: message.StatusFailed, AtMS: at, Channel: "whatsapp",
			Provider: "meta", ProviderMessageID: "wamid.HBgLMTIzNDU2Nzg5MA==", Type: message.TypeTemplate,
			Lane: message.LaneBulk, Attempt: 3, ErrorCode: 131026, ErrorTitle: "Message undeliverable",
			PricingCategory: "marketing", Billable: true, ConversationID: "conv-9 ünïcode",
		}, row{"2023-11-14", 1_700_000_123, 3, 7, 131026, 1, "failed", "template", "bulk", ""}},
		{"only the required fields", message.Event{
			MessageID: message.NewID(0, at), TenantID: "hotel-1", Status: message.StatusQueued, AtMS: at,
		}, row{"2023-11-14", 1_700_000_123, 0, 0, 0, 0, "queued", "", "", ""}},
		{"out of range numbers are clamped", message.Event{
			Shard: 70_000, MessageID: message.NewID(12, at), TenantID: "hotel-1", Status: message.StatusSent,
			AtMS: at, Attempt: 1 << 20, ErrorCode: -(1 << 40),
		}, row{"2023-11-14", 1_700_000_123, 65535, 65535, -1 << 31, 0, "sent", "", "", ""}},
	}
	evs := make([]message.Event, len(cases))
	for i, c := range cases {
		evs[i] = c.ev
	}
	before := time.Now().UnixMilli()
	queued := src.push(evs...)
	testwait.For(t, 10*time.Second, "events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == len(cases)
	})
	after := time.Now().UnixMilli()

	ctx := context.Background()
	for i, c := range cases {
		var (
			got       row
			ms, insMS uint64
			eventTime time.Time
			messageID string
		)
		err := conn.QueryRow(ctx, "SELECT toString(event_date), toUInt32(toUnixTimestamp(event_time)), event_time, event_ms, "+
			"message_id, attempt, shard, error_code, billable, status, message_type, lane, stream_id, inserted_ms FROM "+
			quoteDB(db)+".message_events WHERE message_id = ?", c.ev.MessageID).Scan(
			&got.date, &got.unixTime, &eventTime, &ms, &messageID, &got.attempt, &got.shard, &got.errorCode, &got.billable,
			&got.status, &got.typ, &got.lane, &got.stream, &insMS)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		c.want.stream = queued[i].StreamID
		if got != c.want {
			t.Errorf("%s: row %+v, want %+v", c.name, got, c.want)
		}
		if ms != uint64(c.ev.AtMS) || messageID != c.ev.MessageID || !eventTime.Equal(time.Unix(at/1000, 0)) {
			t.Errorf("%s: event_ms %d, message_id %q, event_time %v", c.name, ms, messageID, eventTime)
		}
		if int64(insMS) < before || int64(insMS) > after {
			t.Errorf("%s: inserted_ms %d not within the test's [%d, %d]", c.name, insMS, before, after)
		}
	}

	// Events reads back exactly what was queued, every field.
	for i, c := range cases[:2] {
		got, err := Events(ctx, conn, db, c.ev.MessageID)
		if err != nil {
			t.Fatalf("%s: Events: %v", c.name, err)
		}
		if want := []message.Event{queued[i]}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Events =\n%+v\nwant\n%+v", c.name, got, want)
		}
	}
}

func TestLoaderShutdownFlushes(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	cfg := testConfig(db)
	cfg.BatchSize = 1000
	cfg.FlushInterval = time.Hour
	src := newMemSource(t)
	src.onAck = ackOnlyStored(t, conn, db)
	l, reg := startLoader(t, cfg, conn, src, nil)

	src.push(newEvents(7, "tenant-shutdown", message.StatusSent, time.Now().UnixMilli())...)
	testwait.For(t, 5*time.Second, "7 events held", func() bool { return metric(t, reg, "wagate_loader_pending_events") == 7 })
	if _, acked, _ := src.state(); acked != 0 {
		t.Fatalf("%d events acked before size or time was reached", acked)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	src.checkAckedOnce(t)
	if got := len(stored(t, conn, db)); got != 7 {
		t.Errorf("%d events stored after Shutdown, want 7", got)
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	l.Start(context.Background()) // does nothing after Shutdown
	src.push(newEvents(1, "tenant-shutdown", message.StatusSent, time.Now().UnixMilli())...)
	time.Sleep(100 * time.Millisecond)
	if read, _, _ := src.state(); read != 7 {
		t.Errorf("a loader restarted after Shutdown read %d events", read-7)
	}

	idle := NewLoader(cfg, conn, src, nil, nil)
	if err := idle.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of a loader never started: %v", err)
	}
}

func TestLoaderRetriesFailedAck(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	src := newMemSource(t)
	check := ackOnlyStored(t, conn, db)
	var calls atomic.Int32
	src.onAck = func(evs []message.Event) error {
		check(evs)
		if calls.Add(1) <= 2 {
			return errors.New("redis: connection refused")
		}
		return nil
	}
	logs := newLogCounter(t)
	_, reg := startLoader(t, testConfig(db), conn, src, slogNew(logs))

	src.push(newEvents(4, "tenant-ack", message.StatusDelivered, time.Now().UnixMilli())...)
	testwait.For(t, 10*time.Second, "events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == 4
	})
	src.checkAckedOnce(t)
	if got := metric(t, reg, "wagate_loader_source_errors_total", "op", "ack"); got != 2 {
		t.Errorf("ack errors = %v, want 2", got)
	}
	// The insert is not repeated for an ack that failed.
	if got := metric(t, reg, "wagate_loader_batches_total", "result", "ok"); got != 1 {
		t.Errorf("batches ok = %v, want 1", got)
	}
	for id, n := range stored(t, conn, db) {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	if n := logs.count("acknowledging stored events failed; retrying"); n != 1 {
		t.Errorf("ack failure logged %d times, want once", n)
	}
	if n := logs.count("acknowledging events works again"); n != 1 {
		t.Errorf("ack recovery logged %d times, want once", n)
	}
}

// TestLoaderRedeliveryCollapses is a loader that dies between insert and ack:
// its events are read again after the restart and inserted a second time, and
// the duplicates disappear from every query and, after a merge, from disk.
func TestLoaderRedeliveryCollapses(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	ctx := context.Background()
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+quoteDB(db)+".message_events"); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UnixMilli()
	sent := newEvents(6, "tenant-dup", message.StatusSent, now-3000)
	evs := append([]message.Event{}, sent...)
	for i, ev := range sent[:4] { // 4 of 6 delivered, 2 of those read
		ev.Status, ev.AtMS = message.StatusDelivered, now-2000+int64(i)
		evs = append(evs, ev)
		if i < 2 {
			ev.Status, ev.AtMS = message.StatusRead, now-1000
			evs = append(evs, ev)
		}
	}

	src := newMemSource(t)
	src.onAck = func([]message.Event) error { return errors.New("redis: connection reset") }
	cfg := testConfig(db)
	first := NewLoader(cfg, conn, src, nil, nil)
	first.Start(ctx)
	src.push(evs...)
	testwait.For(t, 10*time.Second, "first insert", func() bool { return len(stored(t, conn, db)) == len(evs) })
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := first.Shutdown(sctx)
	cancel()
	if err == nil {
		t.Fatal("Shutdown reported success while no ack could succeed")
	}
	<-first.done // the dead loader's goroutine is gone before the source "restarts"

	src.restart()
	src.onAck = ackOnlyStored(t, conn, db)
	second, _ := startLoader(t, cfg, conn, src, nil)
	testwait.For(t, 10*time.Second, "second loader acked all", func() bool {
		_, acked, _ := src.state()
		return acked == len(evs)
	})
	src.checkAckedOnce(t)
	_ = second

	for id, n := range stored(t, conn, db) {
		if n != 2 {
			t.Fatalf("%s stored %d times before the merge, want 2 (merges are stopped)", id, n)
		}
	}
	checkQueries := func(when string) {
		t.Helper()
		got, err := Events(ctx, conn, db, sent[0].MessageID)
		if err != nil {
			t.Fatal(err)
		}
		var statuses []message.Status
		for _, ev := range got {
			statuses = append(statuses, ev.Status)
		}
		if want := []message.Status{message.StatusSent, message.StatusDelivered, message.StatusRead}; !reflect.DeepEqual(statuses, want) {
			t.Errorf("%s: Events statuses %v, want %v", when, statuses, want)
		}
		counts, err := CountByStatus(ctx, conn, db, "tenant-dup", time.UnixMilli(now-time.Hour.Milliseconds()))
		if err != nil {
			t.Fatal(err)
		}
		want := map[message.Status]uint64{message.StatusSent: 6, message.StatusDelivered: 4, message.StatusRead: 2}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("%s: CountByStatus %v, want %v", when, counts, want)
		}
		stats, err := DeliveryStats(ctx, conn, db, "tenant-dup", time.UnixMilli(now-10_000), time.UnixMilli(now))
		if err != nil {
			t.Fatal(err)
		}
		var sentN, delivered, read uint64
		for _, s := range stats {
			sentN, delivered, read = sentN+s.Sent, delivered+s.Delivered, read+s.Read
		}
		if sentN != 6 || delivered != 4 || read != 2 {
			t.Errorf("%s: DeliveryStats sent %d delivered %d read %d, want 6 4 2", when, sentN, delivered, read)
		}
	}
	checkQueries("before the merge")

	if err := conn.Exec(ctx, "SYSTEM START MERGES "+quoteDB(db)+".message_events"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE "+quoteDB(db)+".message_events FINAL"); err != nil {
		t.Fatal(err)
	}
	rows := stored(t, conn, db)
	if len(rows) != len(evs) {
		t.Errorf("%d events after the merge, want %d", len(rows), len(evs))
	}
	for id, n := range rows {
		if n != 1 {
			t.Errorf("%s stored %d times after OPTIMIZE FINAL, want 1", id, n)
		}
	}
	checkQueries("after the merge")
}

func TestLoaderReadErrorsAreRetried(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	src := &flakySource{memSource: newMemSource(t)}
	src.fail.Store(3)
	logs := newLogCounter(t)
	_, reg := startLoader(t, testConfig(db), conn, src, slogNew(logs))
	src.push(newEvents(5, "tenant-read", message.StatusSent, time.Now().UnixMilli())...)
	testwait.For(t, 10*time.Second, "events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == 5
	})
	if got := metric(t, reg, "wagate_loader_source_errors_total", "op", "read"); got != 3 {
		t.Errorf("read errors = %v, want 3", got)
	}
	if n := logs.count("reading events failed; retrying"); n != 1 {
		t.Errorf("read failure logged %d times, want once", n)
	}
	if n := logs.count("reading events works again"); n != 1 {
		t.Errorf("read recovery logged %d times, want once", n)
	}
}

// flakySource fails its first Reads.
type flakySource struct {
	*memSource
	fail atomic.Int32
}

func (s *flakySource) Read(ctx context.Context, dst []message.Event, max int, block time.Duration) ([]message.Event, error) {
	if s.fail.Add(-1) >= 0 {
		return dst, errors.New("redis: i/o timeout")
	}
	return s.memSource.Read(ctx, dst, max, block)
}
