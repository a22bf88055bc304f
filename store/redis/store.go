package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Config says how wagate lays out its data in Redis.
type Config struct {
	// Prefix namespaces every key ("wa"). Tests use a unique one each.
	Prefix string
	// Shards is the number of message shards (16). A message id carries its
	// shard, so changing it later keeps old messages reachable.
	Shards int
	// InboundParts is the number of inbound webhook streams (4).
	InboundParts int
	// StateTTL is how long a message's state hash lives after its last
	// change (7 days); ClickHouse keeps the history beyond it.
	StateTTL time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered (24 h).
	IdempotencyTTL time.Duration
	// PIDTTL is how long a provider message id maps to its message (30 days),
	// as long as a provider may still report on it.
	PIDTTL time.Duration
	// ConversationTTL is how long a conversation, its history and a guest's
	// window live after their last activity (90 days). A guest's opt-out
	// is kept for good.
	ConversationTTL time.Duration
	// Window is WhatsApp's customer service window (24 h): free-form
	// messages go only this long after the guest's last message.
	Window time.Duration
	// Pipelines is how many pipelines may be in flight at once (2: the
	// fewer, the more callers share each one function call, whose fixed
	// cost then weighs less per message; 2 against 4 gave 2–9% more sends
	// a second with wrk and ~1 µs less Redis per send, bench/RESULTS.md).
	Pipelines int
	// PipelineMax caps the callers sharing one pipeline (256).
	PipelineMax int
	// FileWait bounds how long a conversation read files what waits to be
	// filed before it answers (1 s; see FileNow).
	FileWait time.Duration
	// Replicas makes what the API acknowledges (accepted messages, batch
	// chunks, providers' webhooks) wait until that many replicas of the
	// master that took it have it too (WAIT, once per flush of the group
	// commit, on the flush's connection to each master): a master that
	// dies then loses nothing acknowledged while a replica it waited for
	// takes over. 0 (the default): the master's answer is enough.
	Replicas int
	// ReplicaTimeout bounds that wait (1 s); past it the callers learn
	// ErrNotReplicated (an ErrUnconfirmed: the write may survive).
	ReplicaTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "wa"
	}
	if c.Shards == 0 {
		c.Shards = 16
	}
	if c.InboundParts == 0 {
		c.InboundParts = 4
	}
	if c.StateTTL == 0 {
		c.StateTTL = 7 * 24 * time.Hour
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 24 * time.Hour
	}
	if c.PIDTTL == 0 {
		c.PIDTTL = 30 * 24 * time.Hour
	}
	if c.ConversationTTL == 0 {
		c.ConversationTTL = 90 * 24 * time.Hour
	}
	if c.Window == 0 {
		c.Window = 24 * time.Hour
	}
	if c.Pipelines == 0 {
		c.Pipelines = 2
	}
	if c.PipelineMax == 0 {
		c.PipelineMax = 256
	}
	if c.FileWait == 0 {
		c.FileWait = time.Second
	}
	if c.ReplicaTimeout == 0 {
		c.ReplicaTimeout = time.Second
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Shards < 1 || c.Shards > 1000:
		return fmt.Errorf("redis: shards must be 1..1000, got %d", c.Shards)
	case c.InboundParts < 1 || c.InboundParts > 100:
		return fmt.Errorf("redis: inbound parts must be 1..100, got %d", c.InboundParts)
	case strings.ContainsAny(c.Prefix, "{}: "):
		return fmt.Errorf("redis: prefix %q may not contain braces, colons or spaces", c.Prefix)
	case c.StateTTL < time.Minute || c.IdempotencyTTL < time.Second || c.PIDTTL < time.Minute || c.ConversationTTL < time.Minute || c.Window < time.Second:
		return errors.New("redis: TTLs are too short")
	case c.Pipelines < 1 || c.PipelineMax < 1:
		return errors.New("redis: pipelines and pipeline size must be positive")
	case c.Replicas < 0 || c.Replicas > 16:
		return fmt.Errorf("redis: replicas to wait for must be 0..16, got %d", c.Replicas)
	}
	return nil
}

// Store is wagate's Redis layer. It is safe for concurrent use.
type Store struct {
	rdb     goredis.UniversalClient
	cfg     Config
	keys    *Keys
	scripts *scripts
	batch   *batcher

	stateTTL, idemTTL, convTTL string // seconds, as script arguments
	// cluster: rdb is a Redis Cluster, where one call's keys share a slot.
	cluster bool
	// eventsKeyArgs are each shard's events stream as a call's keys, and
	// enqueueHead and scheduleHead the enqueue and schedule functions'
	// leading arguments: built once.
	eventsKeyArgs [][]any
	enqueueHead   []any
	scheduleHead  []any
	// beginHead and finishHead are each shard's leading arguments of the
	// begin and finish functions: built once.
	beginHead, finishHead [][]any
	// args caches the enqueue's recurring arguments as interfaces.
	args       argCache
	windowMS   string
	now        func() time.Time
	inboundSeq atomic.Uint64 // spreads webhooks over partitions
	// filePerEntry is how many messages a file stream entry held lately
	// (a call's gathered ones share one): a filing round reads about
	// fileBatch messages, not entries.
	filePerEntry atomic.Int64
}

// Consumer groups of wagate's streams.
const (
	GroupDispatch = "dispatch"
	GroupInbound  = "inbound"
	GroupLoader   = "loader"
	// GroupHooks delivers events to the tenants' webhooks.
	GroupHooks = "hooks"
)

// Open connects to the Redis at url: one server ("redis://[user:pass@]host:port/db",
// "rediss://" with TLS), a Redis Cluster by seed nodes
// ("redis+cluster://[user:pass@]host:port[,host:port…]"), or a primary
// with replicas watched by Sentinel
// ("redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]").
func Open(ctx context.Context, url string) (goredis.UniversalClient, error) {
	rdb, addr, err := newClient(url)
	if err != nil {
		return nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		// Every master must answer: a Cluster with a master down cannot
		// take every shard's writes.
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		}); err != nil {
			rdb.Close()
			return nil, fmt.Errorf("redis cluster at %s: %w", addr, err)
		}
	}
	return rdb, nil
}

// minPool is the least connections per server: every shard worker blocks
// on one in XREADGROUP.
const minPool = 64

// newClient builds the client for url without connecting; addr names it
// in errors (never with its password).
func newClient(url string) (goredis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, "", errors.New("redis url: no scheme (redis://, rediss://, redis+cluster:// or redis+sentinel://)")
	}
	switch scheme {
	case "redis+cluster", "redis+sentinel":
	default:
		opt, err := goredis.ParseURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("redis url: %w", err)
		}
		opt.PoolSize = max(opt.PoolSize, minPool)
		// A call ends at its context's deadline, not only at the client's
		// read timeout: a frozen Redis (a stalled network, a long fork)
		// must cost an API request its own bound (503), not the whole
		// freeze.
		opt.ContextTimeoutEnabled = true
		if opt.DialTimeout == 0 {
			opt.DialTimeout = 3 * time.Second
		}
		return goredis.NewClient(opt), opt.Addr, nil
	}
	user, pass := "", ""
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		if u, p, ok := strings.Cut(cred, ":"); ok {
			user, pass = u, p
		} else {
			pass = cred
		}
	}
	hosts, path, _ := strings.Cut(rest, "/")
	path, _, _ = strings.Cut(path, "?")
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			if !strings.Contains(h, ":") {
				h += ":6379"
			}
			addrs = append(addrs, h)
		}
	}
	if len(addrs) == 0 {
		return nil, "", fmt.Errorf("redis url: %s needs at least one host:port", scheme)
	}
	addr := strings.Join(addrs, ",")
	if scheme == "redis+cluster" {
		if path != "" {
			return nil, "", errors.New("redis url: a Redis Cluster has one database: no /db in a redis+cluster:// url")
		}
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, Username: user, Password: pass,
			PoolSize: minPool, ContextTimeoutEnabled: true, DialTimeout: 3 * time.Second}), addr, nil
	}
	master, dbs, _ := strings.Cut(path, "/")
	if master == "" {
		return nil, "", errors.New("redis url: redis+sentinel:// needs the master's name: redis+sentinel://host:port/<master name>[/db]")
	}
	db := 0
	if dbs != "" {
		n, err := strconv.Atoi(dbs)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("redis url: database %q is not a number", dbs)
		}
		db = n
	}
	return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: master, SentinelAddrs: addrs,
		Username: user, Password: pass, DB: db, PoolSize: minPool, ContextTimeoutEnabled: true,
		DialTimeout: 3 * time.Second}), addr + "/" + master, nil
}

// New returns a Store over rdb, loading the scripts and creating the
// consumer groups of every stream it owns.
func New(ctx context.Context, rdb goredis.UniversalClient, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		rdb:      rdb,
		cfg:      cfg,
		keys:     newKeysFor(rdb, cfg),
		scripts:  newScripts(),
		stateTTL: fmt.Sprint(int64(cfg.StateTTL / time.Second)),
		idemTTL:  fmt.Sprint(int64(cfg.IdempotencyTTL / time.Second)),
		convTTL:  fmt.Sprint(int64(cfg.ConversationTTL / time.Second)),
		windowMS: fmt.Sprint(cfg.Window.Milliseconds()),
		now:      time.Now,
	}
	_, s.cluster = rdb.(*goredis.ClusterClient)
	for sh := 0; sh < cfg.Shards; sh++ {
		s.eventsKeyArgs = append(s.eventsKeyArgs, []any{s.keys.Events(sh)})
	}
	s.enqueueHead = []any{s.idemTTL, s.windowMS, s.convTTL}
	s.scheduleHead = []any{s.stateTTL, s.idemTTL, s.windowMS, s.convTTL}
	for sh := 0; sh < s.cfg.Shards; sh++ {
		s.beginHead = append(s.beginHead, []any{GroupDispatch, s.stateTTL, s.keys.ShardPrefix(sh)})
		s.finishHead = append(s.finishHead, []any{GroupDispatch, s.stateTTL, s.keys.ShardPrefix(sh)})
	}
	if err := s.scripts.load(ctx, rdb); err != nil {
		return nil, err
	}
	if err := s.createGroups(ctx); err != nil {
		return nil, err
	}
	s.batch = newBatcher(rdb, s.scripts, cfg.Pipelines, cfg.PipelineMax)
	s.batch.replicas, s.batch.replicaTimeout = cfg.Replicas, cfg.ReplicaTimeout
	return s, nil
}

// Keys returns the store's key names.
func (s *Store) Keys() *Keys { return s.keys }

// Config returns the store's settings, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Client is the underlying Redis client.
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Close stops the pipeline flushers; the Redis client stays open (the caller
// owns it).
func (s *Store) Close() { s.batch.close() }

// createGroups makes every stream and its consumer group, from the start of
// the stream so that nothing written before the group existed is skipped.
func (s *Store) createGroups(ctx context.Context) error {
	// Queue streams are made with their group by enqueue (ensure_queue).
	p := s.rdb.Pipeline()
	for sh := 0; sh < s.cfg.Shards; sh++ {
		p.XGroupCreateMkStream(ctx, s.keys.Events(sh), GroupLoader, "0")
		p.XGroupCreateMkStream(ctx, s.keys.Events(sh), GroupHooks, "0")
		p.XGroupCreateMkStream(ctx, s.keys.Notify(sh), GroupHooks, "0")
	}
	for part := 0; part < s.cfg.InboundParts; part++ {
		p.XGroupCreateMkStream(ctx, s.keys.Inbound(part), GroupInbound, "0")
	}
	cmds, _ := p.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("create consumer groups: %w", err)
		}
	}
	return nil
}

// callShard is the shard a merged call of shard's messages is filed under:
// on a Redis Cluster the shard itself (a call's keys must share a slot);
// on one server every shard's messages may share one call (-1), which
// pays a call's fixed cost once per flush rather than once per shard.
func (s *Store) callShard(shard int) int {
	if s.cluster {
		return shard
	}
	return -1
}

// nowMS is the store's clock in Unix milliseconds.
func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

// newKeysFor is the key layout for rdb: spread hash tags on a Redis
// Cluster (NewClusterKeys), the plain ones on one server.
func newKeysFor(rdb goredis.UniversalClient, cfg Config) *Keys {
	if _, ok := rdb.(*goredis.ClusterClient); ok {
		return NewClusterKeys(cfg.Prefix, cfg.Shards, cfg.InboundParts)
	}
	return NewKeys(cfg.Prefix, cfg.Shards, cfg.InboundParts)
}
