package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/dispatcher"
	"github.com/wagate/wagate/filer"
	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/ratelimit"
	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis"
)

// gatewayFlags are the settings every gateway role shares.
type gatewayFlags struct {
	instance   string
	redisURL   string
	prefix     string
	shards     int
	clickhouse string
	chDatabase string
	chUser     string
	chPassword string
	httpAddr   string
	logLevel   string
	roles      string
	pprof      string
	media      mediaFlags
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

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&g.instance, "instance", env("WAGATE_INSTANCE", fmt.Sprintf("%s-%d", host, os.Getpid())),
		"this instance's name in shard leases and consumer groups, unique among live instances (WAGATE_INSTANCE)")
	fs.StringVar(&g.roles, "roles", env("WAGATE_ROLES", "api,dispatcher,inbound,loader,filer"),
		"what this process runs: api (HTTP API and webhooks), dispatcher, inbound (webhook processor), loader (ClickHouse), filer (conversations) (WAGATE_ROLES)")
	fs.StringVar(&g.redisURL, "redis", env("WAGATE_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (WAGATE_REDIS_URL)")
	fs.StringVar(&g.prefix, "prefix", env("WAGATE_PREFIX", "wa"), "prefix of every Redis key (WAGATE_PREFIX)")
	fs.IntVar(&g.shards, "shards", envInt("WAGATE_SHARDS", 16), "message shards (WAGATE_SHARDS)")
	fs.StringVar(&g.clickhouse, "clickhouse", env("WAGATE_CLICKHOUSE_ADDR", "127.0.0.1:9000"), "ClickHouse native address (WAGATE_CLICKHOUSE_ADDR)")
	fs.StringVar(&g.chDatabase, "clickhouse-db", env("WAGATE_CLICKHOUSE_DATABASE", "wagate"), "ClickHouse database (WAGATE_CLICKHOUSE_DATABASE)")
	fs.StringVar(&g.chUser, "clickhouse-user", env("WAGATE_CLICKHOUSE_USER", "default"), "ClickHouse user (WAGATE_CLICKHOUSE_USER)")
	fs.StringVar(&g.chPassword, "clickhouse-password", env("WAGATE_CLICKHOUSE_PASSWORD", ""), "ClickHouse password (WAGATE_CLICKHOUSE_PASSWORD)")
	fs.StringVar(&g.httpAddr, "http", env("WAGATE_HTTP_ADDR", "127.0.0.1:8080"), "API listen address (WAGATE_HTTP_ADDR)")
	fs.StringVar(&g.logLevel, "log-level", env("WAGATE_LOG_LEVEL", "info"), "debug, info, warn or error (WAGATE_LOG_LEVEL)")
	fs.StringVar(&g.webhookAllow, "webhook-allow", env("WAGATE_WEBHOOK_ALLOW", ""),
		"internal networks (comma-separated CIDRs or addresses) tenants' webhooks may reach; none when empty: loopback, private, link-local and metadata addresses are refused (`dev`: loopback) (WAGATE_WEBHOOK_ALLOW)")
	fs.StringVar(&g.pprof, "pprof", env("WAGATE_PPROF_ADDR", ""), "serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty (WAGATE_PPROF_ADDR)")
	g.media.register(fs)
}

func (g *gatewayFlags) chConfig() clickhouse.Config {
	c := clickhouse.DefaultConfig()
	c.Addr, c.Database, c.Username, c.Password = g.clickhouse, g.chDatabase, g.chUser, g.chPassword
	return c
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// gateway is every role of wagate wired together in one process.
type gateway struct {
	log     *slog.Logger
	rdb     goredis.UniversalClient
	store   *redis.Store
	api     *ingest.Server
	proc    *ingest.Processor
	disp    *dispatcher.Dispatcher
	hooks   *dispatcher.HookDeliverer
	tplSync *dispatcher.TemplateSync
	filer   *filer.Filer
	trimmer *redis.Trimmer
	pprof   *http.Server

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

	rdb, err := redis.Open(ctx, g.redisURL)
	if err != nil {
		return nil, fmt.Errorf("%w (start local services with scripts/services up)", err)
	}
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: g.prefix, Shards: g.shards})
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

	gw := &gateway{log: log, rdb: rdb, store: store}
	rates, err := ratelimit.NewSenders(dcfg.Rates)
	if err != nil {
		return nil, err
	}
	gw.api, err = ingest.NewServer(ingest.Config{Addr: g.httpAddr, MetaAppSecret: fc.Meta.AppSecret, MetaVerifyToken: fc.Meta.VerifyToken,
		MetricsOnly: !g.has(roleAPI), SenderRate: func(s string) float64 { return rates.Get(s).Configured() }, Media: mediaCfg,
		WebhookAllow: g.webhookAllowList()},
		store, tokens, reg, reg, log.With("role", "api"))
	if err != nil {
		return nil, err
	}
	if g.has(roleInbound) {
		gw.proc = ingest.NewProcessor(ingest.ProcessorConfig{Consumer: g.instance, Numbers: fc.numbers(), WABATenants: wabaTenants},
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
		gw.hooks, err = dispatcher.NewHookDeliverer(dispatcher.HookConfig{Consumer: g.instance, Allow: g.webhookAllowList()}, store, reg, log.With("role", "hooks"))
		if err != nil {
			return nil, err
		}
		// Every dispatcher may run the template sync: one at a time holds
		// its lease.
		if len(tplAccounts) > 0 {
			gw.tplSync, err = dispatcher.NewTemplateSync(dispatcher.TemplateSyncConfig{Instance: g.instance, Accounts: tplAccounts},
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
	if g.pprof != "" {
		if gw.pprof, err = startPprof(g.pprof); err != nil {
			return nil, err
		}
		log.Info("profiles served", "addr", gw.pprof.Addr)
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
			err = clickhouse.Migrate(ctx, conn, cfg.Database)
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
	if gw.pprof != nil {
		gw.pprof.Close()
	}
	gw.store.Close()
	errs = append(errs, gw.rdb.Close())
	return errors.Join(errs...)
}

// startPprof serves net/http/pprof's handlers on their own listener, apart
// from the API: profiles show internals that are not for API clients.
func startPprof(addr string) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // returns when closed
	return srv, nil
}
