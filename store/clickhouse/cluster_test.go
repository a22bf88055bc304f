package clickhouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
)

// TestLoaderOnTwoServers: with Cluster set, the schema is a Distributed
// table over a shard on each of two ClickHouse servers; the loader's
// events spread over both, each event (and every copy of it) on the
// shard its message id picks, and the usual reads answer through the
// Distributed tables.
func TestLoaderOnTwoServers(t *testing.T) {
	openTest(t) // the shared server proves the ClickHouse binaries are installed
	pa := freePort(t)
	pb := freePort(t)
	for pb >= pa-1 && pb <= pa+1 {
		pb = freePort(t)
	}
	xml := fmt.Sprintf(`<?xml version="1.0"?>
<yandex><remote_servers><wagate_two>
  <shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>
  <shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>
</wagate_two></remote_servers></yandex>
`, pa, pb)
	file := filepath.Join(t.TempDir(), "cluster.xml")
	if err := os.WriteFile(file, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	for i, p := range []int{pa, pb} {
		services(t, "clickhouse-start", dirs[i], fmt.Sprint(p), file)
		t.Cleanup(func() { services(t, "clickhouse-stop", dirs[i], "KILL") })
	}
	ctx := context.Background()
	cfg := Config{Addr: fmt.Sprintf("127.0.0.1:%d", pa), Database: "wagate_two", Cluster: "wagate_two",
		BatchSize: 100, FlushInterval: 30 * time.Millisecond, RetryBackoffMin: 20 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond}
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for range 2 { // idempotent
		if err := MigrateCluster(ctx, conn, cfg); err != nil {
			t.Fatal(err)
		}
	}
	other := cfg
	other.Addr = fmt.Sprintf("127.0.0.1:%d", pb)
	connB, err := Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { connB.Close() })

	src := newMemSource(t)
	startLoader(t, cfg, conn, src, slogNew(newLogCounter(t)))
	now := time.Now().UnixMilli()
	evs := src.push(newEvents(400, "tenant-two", message.StatusSent, now)...)
	// Twenty of them again, as a loader that died between insert and ack
	// inserts them.
	src.push(evs[:20]...)
	testwait.For(t, 30*time.Second, "420 events acknowledged", func() bool {
		_, acked, _ := src.state()
		return acked == 420
	})

	count := func(c driver.Conn, q string, args ...any) uint64 {
		t.Helper()
		var n uint64
		if err := c.QueryRow(ctx, fmt.Sprintf(q, quoteDB(cfg.Database)), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	a := count(conn, "SELECT toUInt64(count()) FROM %s.message_events_local")
	b := count(connB, "SELECT toUInt64(count()) FROM %s.message_events_local")
	if a+b != 420 || a < 100 || b < 100 {
		t.Fatalf("rows on the two servers: %d and %d, want 420 spread over both", a, b)
	}
	for _, c := range []driver.Conn{conn, connB} {
		if n := count(c, "SELECT toUInt64(uniqExact(message_id)) FROM %s.message_events"); n != 400 {
			t.Fatalf("%d messages through the Distributed table, want 400", n)
		}
	}
	// Every copy of an event on one shard: FINAL collapses them there.
	for _, ev := range evs[:20] {
		na := count(conn, "SELECT toUInt64(count()) FROM %s.message_events_local WHERE message_id = ?", ev.MessageID)
		nb := count(connB, "SELECT toUInt64(count()) FROM %s.message_events_local WHERE message_id = ?", ev.MessageID)
		if na+nb != 2 || na != 0 && nb != 0 {
			t.Fatalf("%s: %d copies on one server, %d on the other, want both on one", ev.MessageID, na, nb)
		}
		got, err := Events(ctx, conn, cfg.Database, ev.MessageID)
		if err != nil || len(got) != 1 || got[0].Status != message.StatusSent {
			t.Fatalf("Events(%s) through the Distributed table: %+v %v, want its one event", ev.MessageID, got, err)
		}
	}
	if n := count(connB, "SELECT toUInt64(sum(events)) FROM %s.message_status_minute"); n != 420 {
		t.Fatalf("message_status_minute counts %d events, want the 420 inserted", n)
	}
}
