package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/dispatcher"
	"github.com/wagate/wagate/filer"
	"github.com/wagate/wagate/store/redis"
)

// readyTimeout bounds all of /readyz's checks together: a probe that hangs
// is worse than one that fails.
const readyTimeout = 3 * time.Second

// check is one condition of readiness: met when run returns nil, else the
// error says what is wrong.
type check struct {
	name string
	run  func(ctx context.Context) error
}

// readyReport is /readyz's answer: each check "ok" or what failed, and the
// names of the failing ones.
type readyReport struct {
	Ready   bool              `json:"ready"`
	Failing []string          `json:"failing,omitempty"`
	Checks  map[string]string `json:"checks"`
}

// runChecks runs the checks at once, each bounded by ctx.
func runChecks(ctx context.Context, checks []check) readyReport {
	rep := readyReport{Ready: true, Checks: make(map[string]string, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			res := "ok"
			if err := c.run(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			rep.Checks[c.name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, c := range checks {
		if rep.Checks[c.name] != "ok" {
			rep.Ready = false
			rep.Failing = append(rep.Failing, c.name)
		}
	}
	slices.Sort(rep.Failing)
	return rep
}

// startOps serves the operator's endpoints on their own listener, apart
// from the public API port that Meta's webhooks must reach: /metrics
// (business numbers and traffic), /healthz, /readyz and Go's profiles.
func startOps(addr string, gather prometheus.Gatherer, checks []check) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		rep := runChecks(ctx, checks)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ops listen (-ops, WAGATE_OPS_ADDR; empty turns it off): %w", err)
	}
	// No WriteTimeout: a CPU profile takes as long as it was asked to.
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // returns when closed
	return srv, nil
}

// readyChecks are the conditions under which this process can do its
// roles' work: Redis answers and has wagate's functions, the roles that
// work shards hold some, the loader keeps ClickHouse within
// g.readyLoaderLag of Redis, and the process is not shutting down.
func (gw *gateway) readyChecks(g *gatewayFlags, dispatchTTL time.Duration) []check {
	rdb := gw.store.Client()
	if dispatchTTL == 0 {
		dispatchTTL = 5 * time.Second // the dispatcher's default
	}
	checks := []check{
		{"shutdown", func(context.Context) error {
			if gw.stopping.Load() {
				return fmt.Errorf("shutting down")
			}
			return nil
		}},
		{"redis", func(ctx context.Context) error {
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			return nil
		}},
		// Redis may have lost the functions (a new server, FUNCTION FLUSH):
		// they are loaded again here, as the next call would, so that an
		// idle API that no traffic reaches while unready recovers too.
		{"functions", gw.store.EnsureFunctions},
	}
	if gw.disp != nil {
		checks = append(checks, check{"dispatch_leases", leaseCheck(gw.store, dispatcher.Role, dispatchTTL, gw.disp.Owned)})
	}
	if gw.filer != nil {
		checks = append(checks, check{"filer_leases", leaseCheck(gw.store, filer.Role, 5*time.Second, gw.filer.Owned)})
	}
	if g.has(roleLoader) && g.readyLoaderLag > 0 {
		bound := g.readyLoaderLag
		checks = append(checks, check{"loader_lag", func(ctx context.Context) error {
			lag, err := loaderLag(ctx, gw.store, time.Now())
			if err != nil {
				return err
			}
			if lag <= bound {
				return nil
			}
			gw.chMu.Lock()
			started := gw.loader != nil
			gw.chMu.Unlock()
			why := ""
			if !started {
				why = "; the loader has not started: ClickHouse has not answered yet"
			}
			return fmt.Errorf("the oldest event not in ClickHouse has waited %v (bound %v, -ready-loader-lag)%s",
				lag.Round(time.Second), bound, why)
		}})
	}
	return checks
}

// leaseCheck is met while the role holds shards, or while it has more live
// instances than shards (so that this one's share is none).
func leaseCheck(store *redis.Store, role string, ttl time.Duration, owned func() []int) func(context.Context) error {
	return func(ctx context.Context) error {
		if len(owned()) > 0 {
			return nil
		}
		since := time.Now().Add(-ttl).UnixMilli()
		n, err := store.Client().ZCount(ctx, store.Keys().Members(role), strconv.FormatInt(since, 10), "+inf").Result()
		if err != nil {
			return fmt.Errorf("count the %s instances: %w", role, err)
		}
		shards := store.Config().Shards
		if n > int64(shards) {
			return nil
		}
		return fmt.Errorf("holds none of the %d %s shards (%d live instances of the role)", shards, role, n)
	}
}

// loaderLag is how long the oldest event not yet in ClickHouse has waited:
// the oldest the loader group holds unacknowledged, or else the oldest it
// has not read; 0 when none waits. Stream ids carry Redis's time of the
// event.
func loaderLag(ctx context.Context, store *redis.Store, now time.Time) (time.Duration, error) {
	rdb, keys, shards := store.Client(), store.Keys(), store.Config().Shards
	p := rdb.Pipeline()
	infos := make([]*goredis.XInfoGroupsCmd, shards)
	for sh := range shards {
		infos[sh] = p.XInfoGroups(ctx, keys.Events(sh))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, fmt.Errorf("loader lag: %w", err)
	}
	p = rdb.Pipeline()
	var pend []*goredis.XPendingCmd
	var next []*goredis.XMessageSliceCmd
	for sh := range shards {
		i := slices.IndexFunc(infos[sh].Val(), func(g goredis.XInfoGroup) bool { return g.Name == redis.GroupLoader })
		if i < 0 {
			return 0, fmt.Errorf("loader lag: %s has no %s group", keys.Events(sh), redis.GroupLoader)
		}
		g := infos[sh].Val()[i]
		if g.Pending > 0 {
			pend = append(pend, p.XPending(ctx, keys.Events(sh), redis.GroupLoader))
		}
		next = append(next, p.XRangeN(ctx, keys.Events(sh), "("+g.LastDeliveredID, "+", 1))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, fmt.Errorf("loader lag: %w", err)
	}
	oldest := int64(-1)
	see := func(id string) {
		ms, _, _ := strings.Cut(id, "-")
		if v, err := strconv.ParseInt(ms, 10, 64); err == nil && (oldest < 0 || v < oldest) {
			oldest = v
		}
	}
	for _, c := range pend {
		see(c.Val().Lower)
	}
	for _, c := range next {
		if msgs := c.Val(); len(msgs) > 0 {
			see(msgs[0].ID)
		}
	}
	if oldest < 0 {
		return 0, nil
	}
	return max(now.Sub(time.UnixMilli(oldest)), 0), nil
}

// opsAddr is where the ops listener is, for banners and logs.
func (gw *gateway) opsAddr() string {
	if gw.ops == nil {
		return "off (-ops)"
	}
	return "http://" + reachable(gw.ops.Addr)
}
