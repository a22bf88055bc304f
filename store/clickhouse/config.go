// Package clickhouse lands message status events in ClickHouse and reads
// delivery analytics back: the schema (schema.sql, applied by Migrate), the
// loader that drains the events streams in batches (loader.go) and the
// queries used by the API, the tests and the bench (query.go).
//
// Everything here speaks ClickHouse's native protocol through clickhouse-go
// and keeps to SQL that both ClickHouse 18.16 (the test machine) and current
// releases accept; see docs/STYLE.md.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is and how the loader batches. Zero fields take
// the defaults of DefaultConfig.
type Config struct {
	// Addr is ClickHouse's native-protocol address, host:port (never HTTP).
	// Default 127.0.0.1:9000.
	Addr string
	// Database holds wagate's tables; Migrate creates it. Letters, digits and
	// "_" only, not starting with a digit. Default "wagate".
	Database string
	// Username and Password authenticate; an empty Username is "default".
	Username string
	Password string
	// Cluster, when set, names a cluster of the servers' remote_servers
	// configuration: Migrate makes the tables on each of its servers
	// (message_events_local…) and Distributed tables over them under the
	// usual names, sharded by message id; the loader's inserts are
	// synchronous (insert_distributed_sync), so an acknowledged event is on
	// its shard. Letters, digits and "_".
	Cluster string
	// DialTimeout bounds opening one connection. Default 5s.
	DialTimeout time.Duration
	// ReadTimeout bounds the wait for any one answer of the server. Default 30s.
	ReadTimeout time.Duration

	// BatchSize is the most events the loader inserts in one INSERT; it
	// flushes as soon as it holds that many. Default 10 000.
	BatchSize int
	// FlushInterval is the longest an event waits in the loader before its
	// batch is inserted, counted from the batch's first event. Default 1s.
	FlushInterval time.Duration
	// InsertTimeout bounds one insert attempt (prepare, send, commit), so a
	// server that stops answering counts as a failure and is retried.
	// Default 30s.
	InsertTimeout time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the wait between retries of a
	// failed insert, read or ack: it starts at Min and doubles up to Max.
	// Defaults 200ms and 10s.
	RetryBackoffMin time.Duration
	RetryBackoffMax time.Duration
}

// DefaultConfig returns the defaults that zero fields of a Config take.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:9000",
		Database:        "wagate",
		Username:        "default",
		DialTimeout:     5 * time.Second,
		ReadTimeout:     30 * time.Second,
		BatchSize:       10_000,
		FlushInterval:   time.Second,
		InsertTimeout:   30 * time.Second,
		RetryBackoffMin: 200 * time.Millisecond,
		RetryBackoffMax: 10 * time.Second,
	}
}

// withDefaults returns c with its zero fields set to DefaultConfig's.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.Database == "" {
		c.Database = d.Database
	}
	if c.Username == "" {
		c.Username = d.Username
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = d.InsertTimeout
	}
	if c.RetryBackoffMin == 0 {
		c.RetryBackoffMin = d.RetryBackoffMin
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = d.RetryBackoffMax
	}
	return c
}

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("invalid clickhouse config")

// maxBatchSize keeps one batch's memory bounded (about 1 KiB per event).
const maxBatchSize = 1_000_000

// Validate reports the first field of c (after defaults) that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		return bad("Addr %q is not host:port", c.Addr)
	}
	if err := checkDatabase(c.Database); err != nil {
		return bad("%v", err)
	}
	if c.Cluster != "" && checkDatabase(c.Cluster) != nil {
		return bad("Cluster %q is not letters, digits and _", c.Cluster)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"ReadTimeout", c.ReadTimeout},
		{"FlushInterval", c.FlushInterval},
		{"InsertTimeout", c.InsertTimeout},
		{"RetryBackoffMin", c.RetryBackoffMin},
		{"RetryBackoffMax", c.RetryBackoffMax},
	} {
		if d.v < 0 {
			return bad("%s %v is negative", d.name, d.v)
		}
	}
	if c.FlushInterval < time.Millisecond {
		return bad("FlushInterval %v is under 1ms", c.FlushInterval)
	}
	if c.BatchSize < 0 || c.BatchSize > maxBatchSize {
		return bad("BatchSize %d is outside 1..%d", c.BatchSize, maxBatchSize)
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		return bad("RetryBackoffMax %v is below RetryBackoffMin %v", c.RetryBackoffMax, c.RetryBackoffMin)
	}
	return nil
}

// databaseName is what Migrate and the queries accept as a database name: it
// is spliced into SQL (identifiers cannot be bound), so nothing else passes.
var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ErrDatabaseName says a database name is not one Migrate and the queries accept.
var ErrDatabaseName = errors.New("database name must be letters, digits and _, not starting with a digit, at most 64")

func checkDatabase(db string) error {
	if !databaseName.MatchString(db) {
		return fmt.Errorf("database %q: %w", db, ErrDatabaseName)
	}
	return nil
}

// quoteDB returns db (already checked) quoted as an identifier.
func quoteDB(db string) string { return "`" + db + "`" }

// Open connects to ClickHouse over the native protocol and pings it. The
// connection is a pool, safe for concurrent use; close it when done.
// Tables are always qualified with cfg.Database, so Open works before Migrate
// has created it.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native,
		Addr:     []string{cfg.Addr},
		Auth: ch.Auth{
			// Not cfg.Database: the handshake fails while it does not exist.
			Database: "default",
			Username: cfg.Username,
			Password: cfg.Password,
		},
		DialTimeout: cfg.DialTimeout,
		ReadTimeout: cfg.ReadTimeout,
		Compression: &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}
