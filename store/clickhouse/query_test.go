package clickhouse

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
)

// load stores evs through a loader, the way production does, and returns
// once all are acknowledged.
func load(t *testing.T, db string, evs []message.Event) {
	t.Helper()
	conn := openTest(t)
	src := newMemSource(t)
	l := NewLoader(testConfig(db), conn, src, nil, nil)
	l.Start(context.Background())
	src.push(evs...)
	testwait.For(t, 10*time.Second, "events loaded", func() bool {
		_, acked, _ := src.state()
		return acked == len(evs)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// lifecycle returns the events of one message sent at sentMS, then
// delivered and read after the given delays (negative: never).
func lifecycle(tenant, sender string, sentMS int64, deliveredAfter, readAfter time.Duration, failed bool) []message.Event {
	shard := message.ShardFor(sender, 16)
	base := message.Event{
		Shard: shard, MessageID: message.NewID(shard, sentMS-100), TenantID: tenant, Sender: sender,
		Recipient: "+447700900001", Channel: "whatsapp", Provider: "sim", Type: message.TypeText,
		Lane: message.LaneTx, Attempt: 1,
	}
	at := func(s message.Status, ms int64) message.Event {
		ev := base
		ev.Status, ev.AtMS = s, ms
		return ev
	}
	evs := []message.Event{at(message.StatusQueued, sentMS-100), at(message.StatusSent, sentMS)}
	if deliveredAfter >= 0 {
		evs = append(evs, at(message.StatusDelivered, sentMS+deliveredAfter.Milliseconds()))
	}
	if readAfter >= 0 {
		evs = append(evs, at(message.StatusRead, sentMS+readAfter.Milliseconds()))
	}
	if failed {
		f := at(message.StatusFailed, sentMS+1000)
		f.ErrorCode, f.ErrorTitle = 131026, "Message undeliverable"
		evs = append(evs, f)
	}
	return evs
}

func TestDeliveryStats(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	const a, b = "+15550001000", "+15550002000"
	from := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	ms := func(d time.Duration) int64 { return from.Add(d).UnixMilli() }

	var evs []message.Event
	// Sender a: 4 sent in range; deliveries after 1s, 2s, 3s (one of them
	// read), one failed; a read without a delivered still proves delivery.
	evs = append(evs, lifecycle("t1", a, ms(time.Minute), time.Second, 10*time.Second, false)...)
	evs = append(evs, lifecycle("t1", a, ms(2*time.Minute), 2*time.Second, never(), false)...)
	evs = append(evs, lifecycle("t1", a, ms(59*time.Minute+59*time.Second), 3*time.Second, never(), false)...) // delivered after `to`: counts
	evs = append(evs, lifecycle("t1", a, ms(3*time.Minute), never(), never(), true)...)
	// Sender b: 2 sent, one delivered only through its read (after 4s).
	evs = append(evs, lifecycle("t1", b, ms(5*time.Minute), never(), 4*time.Second, false)...)
	evs = append(evs, lifecycle("t1", b, ms(6*time.Minute), never(), never(), false)...)
	// Outside the range or another tenant: not counted.
	evs = append(evs, lifecycle("t1", a, ms(-time.Minute), time.Second, never(), false)...)
	evs = append(evs, lifecycle("t1", a, ms(time.Hour), time.Second, never(), false)...)
	evs = append(evs, lifecycle("t2", a, ms(time.Minute), time.Second, never(), false)...)
	load(t, db, evs)

	got, err := DeliveryStats(context.Background(), conn, db, "t1", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("stats for %d senders, want 2: %+v", len(got), got)
	}
	sa, sb := got[0], got[1]
	wantA := SenderStats{Sender: a, Sent: 4, Delivered: 3, Read: 1, Failed: 1, DeliveredRatio: 0.75, ReadRatio: 1.0 / 3,
		DeliveryP50: 2 * time.Second}
	sa.DeliveryP95 = 0 // approximate: checked below
	if sa != wantA {
		t.Errorf("sender a:\n got %+v\nwant %+v", sa, wantA)
	}
	if p95 := got[0].DeliveryP95; p95 < 2800*time.Millisecond || p95 > 3*time.Second {
		t.Errorf("sender a p95 = %v, want about 2.9s", p95)
	}
	wantB := SenderStats{Sender: b, Sent: 2, Delivered: 1, Read: 1, DeliveredRatio: 0.5, ReadRatio: 1,
		DeliveryP50: 4 * time.Second, DeliveryP95: 4 * time.Second}
	if sb != wantB {
		t.Errorf("sender b:\n got %+v\nwant %+v", sb, wantB)
	}

	// A range with sends but no deliveries has zero latencies, not NaN.
	got, err = DeliveryStats(context.Background(), conn, db, "t1", from.Add(3*time.Minute), from.Add(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := []SenderStats{{Sender: a, Sent: 1, Failed: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("undelivered range: got %+v, want %+v", got, want)
	}
	got, err = DeliveryStats(context.Background(), conn, db, "t1", from.Add(-24*time.Hour), from.Add(-23*time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("empty range: %+v, %v; want nothing", got, err)
	}
}

func TestCountByStatus(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	now := time.Now().Truncate(time.Second)
	var evs []message.Event
	evs = append(evs, lifecycle("t1", "+15550001000", now.Add(-2*time.Hour).UnixMilli(), time.Second, never(), false)...)
	evs = append(evs, lifecycle("t1", "+15550001000", now.Add(-time.Minute).UnixMilli(), time.Second, 2*time.Second, false)...)
	evs = append(evs, lifecycle("t1", "+15550002000", now.Add(-time.Minute).UnixMilli(), never(), never(), true)...)
	// A second failed attempt of the same message counts it once.
	retry := evs[len(evs)-1]
	retry.Attempt, retry.AtMS = 2, retry.AtMS+5000
	evs = append(evs, retry)
	evs = append(evs, lifecycle("t2", "+15550001000", now.Add(-time.Minute).UnixMilli(), time.Second, never(), false)...)
	load(t, db, evs)

	f := func(since time.Time, want map[message.Status]uint64) {
		t.Helper()
		got, err := CountByStatus(context.Background(), conn, db, "t1", since)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("since %v: got %v, want %v", since, got, want)
		}
	}
	f(now.Add(-3*time.Hour), map[message.Status]uint64{"queued": 3, "sent": 3, "delivered": 2, "read": 1, "failed": 1})
	f(now.Add(-10*time.Minute), map[message.Status]uint64{"queued": 2, "sent": 2, "delivered": 1, "read": 1, "failed": 1})
	f(now.Add(time.Hour), map[message.Status]uint64{})
}

func never() time.Duration { return -1 }

func TestStatusMinuteRollup(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	minute := time.Date(2025, 3, 10, 12, 7, 0, 0, time.UTC)
	var evs []message.Event
	for i := range 5 {
		evs = append(evs, lifecycle("t1", "+15550001000", minute.Add(time.Duration(i)*time.Second).UnixMilli(), time.Minute, never(), false)...)
	}
	load(t, db, evs)
	rows, err := conn.Query(context.Background(), "SELECT minute, status, toUInt64(sum(events)) FROM "+quoteDB(db)+
		".message_status_minute WHERE tenant_id = 't1' AND sender = '+15550001000' AND channel = 'whatsapp' GROUP BY minute, status ORDER BY minute, status")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type key struct {
		minute time.Time
		status string
	}
	got := map[key]uint64{}
	for rows.Next() {
		var k key
		var n uint64
		if err := rows.Scan(&k.minute, &k.status, &n); err != nil {
			t.Fatal(err)
		}
		k.minute = k.minute.UTC()
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[key]uint64{
		{minute.Add(-time.Minute), "queued"}:   1, // the first message queued 100ms before 12:07:00
		{minute, "queued"}:                     4,
		{minute, "sent"}:                       5,
		{minute.Add(time.Minute), "delivered"}: 5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rollup %v, want %v", got, want)
	}
}

func TestDropPartitionsBefore(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	day1 := time.Date(2025, 3, 10, 23, 59, 0, 0, time.UTC)
	var evs []message.Event
	for d := range 3 {
		evs = append(evs, newEvents(2, "t1", message.StatusSent, day1.AddDate(0, 0, d).UnixMilli())...)
	}
	load(t, db, evs)
	ctx := context.Background()
	n, err := DropPartitionsBefore(ctx, conn, db, day1.AddDate(0, 0, 1).Add(-23*time.Hour)) // some time on day 2
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // day 1 of message_events and of message_status_minute
		t.Errorf("dropped %d partitions, want 2", n)
	}
	var left uint64
	var oldest string
	if err := conn.QueryRow(ctx, "SELECT toUInt64(count()), toString(min(event_date)) FROM "+quoteDB(db)+".message_events").Scan(&left, &oldest); err != nil {
		t.Fatal(err)
	}
	if left != 4 || oldest != "2025-03-11" {
		t.Errorf("after the drop: %d events, oldest day %s; want 4 from 2025-03-11", left, oldest)
	}
	if n, err := DropPartitionsBefore(ctx, conn, db, day1); err != nil || n != 0 {
		t.Errorf("dropping again: %d, %v; want 0, nil", n, err)
	}
}

func TestQueriesRefuseBadInput(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	ctx := context.Background()
	now := time.Now()
	id := message.NewID(3, now.UnixMilli())
	f := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	_, err := Events(ctx, conn, "bad-db", id)
	f("Events bad db", err, ErrDatabaseName)
	_, err = Events(ctx, conn, db, "msg_not-an-id")
	f("Events bad id", err, message.ErrBadID)
	_, err = Events(ctx, conn, db, "' OR 1 = 1 --")
	f("Events injection", err, message.ErrBadID)
	_, err = CountByStatus(ctx, conn, db, "", now)
	f("CountByStatus no tenant", err, ErrTenantRequired)
	_, err = CountByStatus(ctx, conn, "x;y", "t1", now)
	f("CountByStatus bad db", err, ErrDatabaseName)
	_, err = DeliveryStats(ctx, conn, db, "t1", now, now)
	f("DeliveryStats empty range", err, ErrTimeRange)
	_, err = DeliveryStats(ctx, conn, db, "t1", now, now.Add(-time.Hour))
	f("DeliveryStats reversed range", err, ErrTimeRange)
	_, err = DeliveryStats(ctx, conn, db, "", now.Add(-time.Hour), now)
	f("DeliveryStats no tenant", err, ErrTenantRequired)
	_, err = DropPartitionsBefore(ctx, conn, "", now)
	f("DropPartitionsBefore bad db", err, ErrDatabaseName)

	// A tenant id with quotes is a value, bound safely, not SQL.
	got, err := CountByStatus(ctx, conn, db, "t1' OR '1'='1", now.Add(-time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("CountByStatus with a quote in the tenant: %v, %v", got, err)
	}
	evs, err := Events(ctx, conn, db, id)
	if err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("Events of an unknown message: %#v, %v; want an empty slice", evs, err)
	}
}
