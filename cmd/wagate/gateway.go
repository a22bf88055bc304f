package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/dispatcher"
	"github.com/wagate/wagate/filer"
	"github.com/wagate/wagate/hooks"
	"github.com/wagate/wagate/inbound"
	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/templatesync"
)

// gatewayFlags are the settings every gateway role shares.
type gatewayFlags struct {
	instance string
	redisURL string
	prefix   string
	shards   int
	// replicas is how many replicas must have what the API acknowledges
	// (redis.Config.Replicas).
	replicas   int
	clickhouse string
	chDatabase string
	// chCluster names a ClickHouse cluster (clickhouse.Config.Cluster).
	chCluster  string
	chUser     string
	chPassword string
	httpAddr   string
	logLevel   string
	logFormat  string
	roles      string
	// ops is the operator's listener (/metrics, /healthz, /readyz,
	// /debug/pprof/); empty: none. pprof is its old name (-pprof).
	ops   string
	pprof string
	// allowEviction starts the gateway on a Redis that may evict keys.
	allowEviction bool
	// readyLoaderLag is the longest an event may wait for ClickHouse
	// before /readyz fails (0: not checked).
	readyLoaderLag time.Duration
	media          mediaFlags
	// webhookAllow: internal networks tenants' webhooks may reach.
	webhookAllow string
}

// webhookAllowList is -webhook-allow as a list.
func (g *gatewayFlags) webhookAllowList() []string {
	var out []string
	for _, a := range strings.Split(g.webhookAllow, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// The roles one process can run.
const (
	roleAPI        = "api"
	roleDispatcher = "dispatcher"
	roleInbound    = "inbound"
	roleLoader     = "loader"
	roleFiler      = "filer"
)

func (g *gatewayFlags) has(role string) bool {
	for _, r := range strings.Split(g.roles, ",") {
		if strings.TrimSpace(r) == role {
			return true
		}
	}
	return false
}

// defaultOpsAddr is where the operator's listener is by default: loopback,
// apart from the public API port.
const defaultOpsAddr = "127.0.0.1:9464"

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&g.instance, "instance", env("WAGATE_INSTANCE", fmt.Sprintf("%s-%d", host, os.Getpid())),
		"this instance's name in shard leases and consumer groups, unique among live instances (WAGATE_INSTANCE)")
	fs.StringVar(&g.roles, "roles", env("WAGATE_ROLES", "api,dispatcher,inbound,loader,filer"),
		"what this process runs: api (HTTP API and webhooks), dispatcher, inbound (webhook processor), loader (ClickHouse), filer (conversations) (WAGATE_ROLES)")
	// The URL may hold a password: -h shows it redacted.
	g.redisURL = env("WAGATE_REDIS_URL", "redis://127.0.0.1:6379/0")
	fs.Var(secretFlag{&g.redisURL, redactURL}, "redis", "Redis `URL`, redis://[:password@]host:port/db (WAGATE_REDIS_URL)")
	fs.StringVar(&g.prefix, "prefix", env("WAGATE_PREFIX", "wa"), "prefix of every Redis key (WAGATE_PREFIX)")
	fs.IntVar(&g.shards, "shards", envInt("WAGATE_SHARDS", 16), "message shards (WAGATE_SHARDS)")
	fs.IntVar(&g.replicas, "redis-replicas", envInt("WAGATE_REDIS_REPLICAS", 0),
		"answer 202 (and a webhook's 200) only once this many replicas of its Redis master have it: WAIT once per group-committed flush (WAGATE_REDIS_REPLICAS)")
	fs.StringVar(&g.clickhouse, "clickhouse", env("WAGATE_CLICKHOUSE_ADDR", "127.0.0.1:9000"), "ClickHouse native address (WAGATE_CLICKHOUSE_ADDR)")
	fs.StringVar(&g.chDatabase, "clickhouse-db", env("WAGATE_CLICKHOUSE_DATABASE", "wagate"), "ClickHouse database (WAGATE_CLICKHOUSE_DATABASE)")
	fs.StringVar(&g.chCluster, "clickhouse-cluster", env("WAGATE_CLICKHOUSE_CLUSTER", ""),
		"a cluster `name` of the ClickHouse servers' remote_servers: tables on each of its servers, Distributed tables over them (WAGATE_CLICKHOUSE_CLUSTER)")
	fs.StringVar(&g.chUser, "clickhouse-user", env("WAGATE_CLICKHOUSE_USER", "default"), "ClickHouse user (WAGATE_CLICKHOUSE_USER)")
	g.chPassword = env("WAGATE_CLICKHOUSE_PASSWORD", "")
	fs.Var(secretFlag{&g.chPassword, hideSecret}, "clickhouse-password", "ClickHouse `password` (WAGATE_CLICKHOUSE_PASSWORD)")
	fs.StringVar(&g.httpAddr, "http", env("WAGATE_HTTP_ADDR", "127.0.0.1:8080"), "API listen address, the port Meta's webhooks reach (WAGATE_HTTP_ADDR)")
	fs.StringVar(&g.ops, "ops", env("WAGATE_OPS_ADDR", defaultOpsAddr),
		"operator listener: /metrics, /healthz, /readyz and /debug/pprof/; keep it off the public network; off when empty (WAGATE_OPS_ADDR)")
	fs.StringVar(&g.logLevel, "log-level", env("WAGATE_LOG_LEVEL", "info"), "debug, info, warn or error (WAGATE_LOG_LEVEL)")
	fs.StringVar(&g.webhookAllow, "webhook-allow", env("WAGATE_WEBHOOK_ALLOW", ""),
		"internal networks (comma-separated CIDRs or addresses) tenants' webhooks may reach; none when empty: loopback, private, link-local and metadata addresses are refused (`dev`: loopback) (WAGATE_WEBHOOK_ALLOW)")
	fs.StringVar(&g.logFormat, "log-format", env("WAGATE_LOG_FORMAT", "text"), "text or json (one JSON object a line) (WAGATE_LOG_FORMAT)")
	fs.StringVar(&g.pprof, "pprof", env("WAGATE_PPROF_ADDR", ""), "deprecated: the old name of -ops, which serves the profiles (WAGATE_PPROF_ADDR)")
	fs.BoolVar(&g.allowEviction, "allow-eviction", envBool("WAGATE_ALLOW_EVICTION"),
		"start even if Redis's maxmemory-policy may evict keys, losing queued messages (WAGATE_ALLOW_EVICTION)")
	fs.DurationVar(&g.readyLoaderLag, "ready-loader-lag", envDuration("WAGATE_READY_LOADER_LAG", 5*time.Minute),
		"with the loader role, /readyz fails once an event has waited longer for ClickHouse; 0: not checked (WAGATE_READY_LOADER_LAG)")
	g.media.register(fs)
}

// settle reconciles flags after fs is parsed: -pprof, the old name of
// -ops, moves the operator listener unless -ops says otherwise. It
// returns a deprecation notice to log ("" for none).
func (g *gatewayFlags) settle(fs *flag.FlagSet) (string, error) {
	if g.pprof == "" || g.pprof == g.ops {
		return "", nil
	}
	opsSet := os.Getenv("WAGATE_OPS_ADDR") != ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "ops" {
			opsSet = true
		}
	})
	if opsSet {
		return "", fmt.Errorf("-pprof %s and -ops %s: -pprof is the old name of -ops (which serves the profiles too); give -ops alone", g.pprof, g.ops)
	}
	g.ops = g.pprof
	return "-pprof (WAGATE_PPROF_ADDR) is deprecated: use -ops (WAGATE_OPS_ADDR), which serves /metrics, /healthz and /readyz as well as the profiles", nil
}

// secretFlag is a string flag whose value -h shows through hide.
type secretFlag struct {
	v    *string
	hide func(string) string
}

// String is the value as -h shows it.
func (s secretFlag) String() string {
	if s.v == nil {
		return ""
	}
	return s.hide(*s.v)
}

// Set takes the flag's value.
func (s secretFlag) Set(v string) error {
	*s.v = v
	return nil
}

// hideSecret shows whether a secret is set, never what it is.
func hideSecret(v string) string {
	if v == "" {
		return ""
	}
	return "xxxxx"
}

func (g *gatewayFlags) chConfig() clickhouse.Config {
	c := clickhouse.DefaultConfig()
	c.Addr, c.Database, c.Username, c.Password = g.clickhouse, g.chDatabase, g.chUser, g.chPassword
	c.Cluster = g.chCluster
	return c
}

// gateway is every role of wagate wired together in one process.
type gateway struct {
	log *slog.Logger
	// reg holds every role's metrics.
	reg     *prometheus.Registry
	rdb     goredis.UniversalClient
	store   *redis.Store
	api     *ingest.Server
	proc    *inbound.Processor
	disp    *dispatcher.Dispatcher
	hooks   *hooks.Deliverer
	tplSync *templatesync.Sync
	filer   *filer.Filer
	trimmer *redis.Trimmer
	// ops is the operator's listener (nil: -ops is empty).
	ops *http.Server
	// stopping fails /readyz from the start of shutdown, so that load
	// balancers stop sending before the API stops taking requests.
	stopping atomic.Bool

	// The loader starts once ClickHouse answers (it may come up later).
	chMu     sync.Mutex
	chConn   driver.Conn
	loader   *clickhouse.Loader
	chCancel context.CancelFunc
	chDone   chan struct{}
}

// startGateway connects to Redis, starts the API, the inbound processor,
// the dispatcher and the events trimmer, and starts the ClickHouse loader as
// soon as ClickHouse answers.
func startGateway(g *gatewayFlags, fc *fileConfig, log *slog.Logger) (*gateway, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerBuildInfo(reg, readBuildInfo()); err != nil {
		return nil, err
	}

	// url.Parse's errors quote the URL, password and all: say what is
	// wrong without it.
	// (Cluster and Sentinel URLs list several hosts, which url.Parse
	// refuses: redis.Open reads them.)
	if !strings.HasPrefix(g.redisURL, "redis+") {
		if _, err := url.Parse(g.redisURL); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("redis url (-redis, WAGATE_REDIS_URL) %s: %w", redactURL(g.redisURL), err)
		}
	}
	rdb, err := redis.Open(ctx, g.redisURL)
	if err != nil {
		return nil, fmt.Errorf("%w (start local services with scripts/services up)", err)
	}
	if err := checkEviction(ctx, rdb, g.allowEviction, log); err != nil {
		rdb.Close()
		return nil, err
	}
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: g.prefix, Shards: g.shards, Replicas: g.replicas})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	tokens, err := fc.tokens()
	if err != nil {
		return nil, err
	}
	mediaCfg, mediaSrc, err := g.media.setup(g.httpAddr, store, log)
	if err != nil {
		return nil, err
	}
	routes, err := fc.routes(mediaSrc)
	if err != nil {
		return nil, err
	}
	tplAccounts, wabaTenants, err := fc.templateAccounts()
	if err != nil {
		return nil, err
	}
	dcfg, err := fc.dispatchConfig(g.instance)
	if err != nil {
		return nil, err
	}

	gw := &gateway{log: log, reg: reg, rdb: rdb, store: store}
	rates, err := ratelimit.NewSenders(dcfg.Rates)
	if err != nil {
		return nil, err
	}
	// No gatherer: /metrics is the ops listener's alone, off the public
	// port that Meta's webhooks reach.
	markers, err := fc.readMarkers()
	if err != nil {
		return nil, err
	}
	gw.api, err = ingest.NewServer(ingest.Config{Addr: g.httpAddr, ReadMarkers: markers, MetaAppSecret: fc.Meta.AppSecret, MetaVerifyToken: fc.Meta.VerifyToken,
		MetricsOnly: !g.has(roleAPI), SenderRate: func(s string) float64 { return rates.Get(s).Configured() }, Media: mediaCfg,
		WebhookAllow: g.webhookAllowList(), ProviderWebhooks: fc.providerWebhooks()},
		store, tokens, reg, nil, log.With("role", "api"))
	if err != nil {
		return nil, err
	}
	if g.has(roleInbound) {
		fetchers, err := fc.mediaFetchers()
		if err != nil {
			return nil, err
		}
		gw.proc = inbound.New(inbound.Config{Consumer: g.instance, Numbers: fc.numbers(), WABATenants: wabaTenants,
			Portfolios: fc.portfolios(),
			Media:      mediaCfg, MediaFetchers: fetchers},
			store, reg, log.With("role", "inbound"))
	}
	if g.has(roleDispatcher) {
		gw.disp, err = dispatcher.New(dcfg, store, routes, reg, log.With("role", "dispatcher"))
		if err != nil {
			return nil, err
		}
		// The tenants' webhooks go with the dispatcher role: every
		// deployment runs it, and the events streams are trimmed only
		// once the hooks group has read them.
		gw.hooks, err = hooks.New(hooks.Config{Consumer: g.instance, Allow: g.webhookAllowList()}, store, reg, log.With("role", "hooks"))
		if err != nil {
			return nil, err
		}
		// Every dispatcher may run the template sync: one at a time holds
		// its lease.
		if len(tplAccounts) > 0 {
			gw.tplSync, err = templatesync.New(templatesync.Config{Instance: g.instance, Accounts: tplAccounts},
				store, reg, log.With("role", "templates"))
			if err != nil {
				return nil, err
			}
		}
	}
	if g.has(roleFiler) {
		gw.filer, err = filer.New(filer.Config{Instance: g.instance}, store, reg, log.With("role", "filer"))
		if err != nil {
			return nil, err
		}
	}
	gw.trimmer = redis.NewTrimmer(store, 0, log.With("role", "trimmer"))

	if err := gw.api.Start(); err != nil {
		return nil, err
	}
	if g.ops != "" {
		if gw.ops, err = startOps(g.ops, reg, gw.readyChecks(g, dcfg.LeaseTTL)); err != nil {
			gw.api.Shutdown(ctx)
			return nil, err
		}
		log.Info("ops listener: /metrics, /healthz, /readyz, /debug/pprof/", "addr", gw.ops.Addr)
	}
	if gw.proc != nil {
		gw.proc.Start()
	}
	if gw.disp != nil {
		gw.disp.Start()
		gw.hooks.Start()
		if gw.tplSync != nil {
			gw.tplSync.Start()
		}
	}
	if gw.filer != nil {
		gw.filer.Start()
	}
	gw.trimmer.Start()
	if !g.has(roleLoader) {
		gw.chCancel, gw.chDone = func() {}, make(chan struct{})
		close(gw.chDone)
		return gw, nil
	}

	chCtx, chCancel := context.WithCancel(context.Background())
	gw.chCancel, gw.chDone = chCancel, make(chan struct{})
	go gw.startLoader(chCtx, g, reg)
	return gw, nil
}

// startLoader connects to ClickHouse (retrying until it answers), applies
// the schema and starts the loader. Events wait in Redis meanwhile.
func (gw *gateway) startLoader(ctx context.Context, g *gatewayFlags, reg prometheus.Registerer) {
	defer close(gw.chDone)
	cfg := g.chConfig()
	warned := false
	for {
		conn, err := clickhouse.Open(ctx, cfg)
		if err == nil {
			err = clickhouse.MigrateFor(ctx, conn, cfg)
			if err != nil {
				conn.Close()
			}
		}
		if err == nil {
			loader := clickhouse.NewLoader(cfg, conn, gw.store.EventReader(g.instance), reg, gw.log.With("role", "loader"))
			gw.chMu.Lock()
			gw.chConn, gw.loader = conn, loader
			gw.chMu.Unlock()
			loader.Start(context.Background())
			if warned {
				gw.log.Info("clickhouse answers; loading events", "addr", cfg.Addr)
			}
			return
		}
		if !warned {
			gw.log.Warn("clickhouse does not answer yet; events wait in Redis", "addr", cfg.Addr, "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// shutdown stops taking requests, finishes the sends in flight, processes
// no more webhooks, flushes the loader, and closes the connections.
func (gw *gateway) shutdown(ctx context.Context) error {
	gw.stopping.Store(true)
	var errs []error
	errs = append(errs, gw.api.Shutdown(ctx))
	if gw.disp != nil {
		errs = append(errs, gw.disp.Shutdown(ctx), gw.hooks.Shutdown(ctx))
	}
	if gw.proc != nil {
		errs = append(errs, gw.proc.Shutdown(ctx))
	}
	if gw.tplSync != nil {
		errs = append(errs, gw.tplSync.Shutdown(ctx))
	}
	if gw.filer != nil {
		errs = append(errs, gw.filer.Shutdown(ctx))
	}
	gw.trimmer.Shutdown()
	gw.chCancel()
	<-gw.chDone
	gw.chMu.Lock()
	if gw.loader != nil {
		errs = append(errs, gw.loader.Shutdown(ctx))
		gw.chConn.Close()
	}
	gw.chMu.Unlock()
	gw.store.Close()
	errs = append(errs, gw.rdb.Close())
	// The ops listener goes last: /metrics and /readyz tell about the
	// shutdown while it lasts.
	if gw.ops != nil {
		gw.ops.Close()
	}
	return errors.Join(errs...)
}
