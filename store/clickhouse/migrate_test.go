package clickhouse

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

func TestMigrateIdempotent(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn) // first run
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}

	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		got[name] = engine
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		EventsTable:       "ReplacingMergeTree",
		StatusMinuteTable: "SummingMergeTree",
		StatusMinuteView:  "MaterializedView",
	}
	for name, engine := range want {
		if got[name] != engine {
			t.Errorf("table %s: engine %q, want %q", name, got[name], engine)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tables %v, want exactly %v", got, want)
	}

	// The columns the loader inserts are the table's, in any order.
	var cols []string
	crow, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", db, EventsTable)
	if err != nil {
		t.Fatal(err)
	}
	defer crow.Close()
	for crow.Next() {
		var c string
		if err := crow.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	slices.Sort(cols)
	want2 := slices.Clone(eventColumns[:])
	slices.Sort(want2)
	if !slices.Equal(cols, want2) {
		t.Errorf("message_events columns %v, want %v", cols, want2)
	}
}

func TestMigrateRefusesBadDatabaseName(t *testing.T) {
	conn := openTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, db := range []string{"", "wagate-test", "1wagate", "wa`gate", "wagate; DROP DATABASE x", strings.Repeat("a", 65)} {
		err := Migrate(ctx, conn, db)
		if !errors.Is(err, ErrDatabaseName) {
			t.Errorf("Migrate(%q) = %v, want ErrDatabaseName", db, err)
		}
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT toUInt64(count()) FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("Migrate(%q) created a database", db)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	f := func(name, script string, want ...string) {
		t.Helper()
		got := splitStatements(script)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	f("empty", "")
	f("comments only", "-- a\n  -- b;\n\n")
	f("one", "SELECT 1;", "SELECT 1")
	f("no final semicolon", "SELECT 1;\nSELECT 2", "SELECT 1", "SELECT 2")
	f("multi-line", "CREATE TABLE t\n(\n  a UInt8\n)\nENGINE = Memory;\n", "CREATE TABLE t\n(\n  a UInt8\n)\nENGINE = Memory")
	f("semicolon inside a line", "SELECT 'a;b' AS x,\n 1;\nSELECT 2;", "SELECT 'a;b' AS x,\n1", "SELECT 2")
	f("comment between lines", "SELECT\n-- the answer;\n42;", "SELECT\n42")
	f("CRLF and trailing blanks", "SELECT 1;  \r\nSELECT 2;\r\n", "SELECT 1", "SELECT 2")

	stmts := splitStatements(schemaSQL)
	if len(stmts) != 3 {
		t.Fatalf("schema.sql splits into %d statements, want 3: %q", len(stmts), stmts)
	}
	for _, s := range stmts {
		if !strings.HasPrefix(s, "CREATE ") || !strings.Contains(s, "IF NOT EXISTS {db}.") {
			t.Errorf("schema statement is not an idempotent CREATE in {db}: %.80q", s)
		}
		for _, banned := range []string{"DateTime64", "LowCardinality", "TTL", "MergeTree(event_date"} {
			if strings.Contains(s, banned) {
				t.Errorf("schema statement uses %s, which 18.16 or current releases refuse: %.80q", banned, s)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(name string, mutate func(*Config), wantErr bool) {
		t.Helper()
		c := Config{}
		mutate(&c)
		err := c.Validate()
		if (err != nil) != wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", name, err, wantErr)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v does not wrap ErrConfig", name, err)
		}
	}
	f("zero takes defaults", func(*Config) {}, false)
	f("defaults", func(c *Config) { *c = DefaultConfig() }, false)
	f("addr without port", func(c *Config) { c.Addr = "localhost" }, true)
	f("bad database", func(c *Config) { c.Database = "wa-gate" }, true)
	f("negative batch", func(c *Config) { c.BatchSize = -1 }, true)
	f("huge batch", func(c *Config) { c.BatchSize = maxBatchSize + 1 }, true)
	f("negative flush", func(c *Config) { c.FlushInterval = -time.Second }, true)
	f("tiny flush", func(c *Config) { c.FlushInterval = time.Microsecond }, true)
	f("negative dial", func(c *Config) { c.DialTimeout = -1 }, true)
	f("max under min", func(c *Config) { c.RetryBackoffMin, c.RetryBackoffMax = time.Second, time.Millisecond }, true)
	f("min over default max", func(c *Config) { c.RetryBackoffMin = time.Minute }, true)

	d := Config{}.withDefaults()
	if d.BatchSize != 10_000 || d.FlushInterval != time.Second || d.RetryBackoffMin != 200*time.Millisecond ||
		d.RetryBackoffMax != 10*time.Second || d.Addr != "127.0.0.1:9000" || d.Database != "wagate" {
		t.Errorf("defaults %+v", d)
	}
}

func TestOpenFailsWhenNothingListens(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := testConfig("wagate")
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(port)
	if conn, err := Open(ctx, cfg); err == nil {
		conn.Close()
		t.Fatalf("Open of %s with nothing listening succeeded", cfg.Addr)
	}
	if _, err := Open(ctx, Config{Addr: "nonsense"}); !errors.Is(err, ErrConfig) {
		t.Errorf("Open with a bad Addr = %v, want ErrConfig", err)
	}
}

// TestMigrateAddsColumnsToAnOlderTable: a message_events made by a release
// before the pricing model and type gains them, keeps its rows (the new
// columns empty), and takes the loader's rows with every column after.
func TestMigrateAddsColumnsToAnOlderTable(t *testing.T) {
	conn := openTest(t)
	db := newDB(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := func(sql string) {
		t.Helper()
		if err := conn.Exec(ctx, strings.ReplaceAll(sql, "{db}", quoteDB(db))); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// The older release's table: everything up to inserted_ms.
	q("DROP TABLE {db}.message_status_minute_mv")
	q("DROP TABLE {db}.message_events")
	old := schemaSQL[strings.Index(schemaSQL, "CREATE TABLE IF NOT EXISTS {db}.message_events"):]
	// Everything after inserted_ms came later.
	cut := strings.Index(old, "inserted_ms         UInt64,") + len("inserted_ms         UInt64")
	old = old[:cut] + "\n" + old[strings.Index(old, "\n)"):]
	q(old[:strings.Index(old, ";")])
	q("INSERT INTO {db}.message_events (event_date, event_time, event_ms, message_id, tenant_id, status, pricing_category) " +
		"SELECT toDate(1765000000), toDateTime(1765000000), 1765000000000, 'msg_old', 'old-tenant', 'delivered', 'utility'")

	for range 2 { // and again: nothing left to add
		if err := Migrate(ctx, conn, db); err != nil {
			t.Fatalf("Migrate over the older table: %v", err)
		}
	}
	var model, typ, cat, campaign string
	if err := conn.QueryRow(ctx, "SELECT pricing_model, pricing_type, pricing_category, campaign_id FROM "+quoteDB(db)+
		".message_events WHERE message_id = 'msg_old'").Scan(&model, &typ, &cat, &campaign); err != nil {
		t.Fatalf("the older row: %v", err)
	}
	if model != "" || typ != "" || cat != "utility" || campaign != "" {
		t.Errorf("older row after Migrate: model %q type %q category %q, want empty, empty, utility", model, typ, cat)
	}
	b, err := conn.PrepareBatch(ctx, insertEventsSQL(db))
	if err != nil {
		t.Fatalf("the loader's insert after Migrate: %v", err)
	}
	var r eventRows
	r.add(&message.Event{MessageID: "msg_new", TenantID: "t", Status: message.StatusSent, AtMS: 1765000001000,
		PricingCategory: "marketing", PricingModel: "PMP", PricingType: "regular", Billable: true}, 1)
	if err := r.appendTo(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert after Migrate: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT pricing_model, pricing_type, pricing_category FROM "+quoteDB(db)+
		".message_events WHERE message_id = 'msg_new'").Scan(&model, &typ, &cat); err != nil {
		t.Fatal(err)
	}
	if model != "PMP" || typ != "regular" || cat != "marketing" {
		t.Errorf("new row: model %q type %q category %q, want PMP, regular, marketing", model, typ, cat)
	}
}
