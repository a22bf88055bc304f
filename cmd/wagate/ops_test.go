package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/syncbuf"
	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// opsGateway starts the gateway in this process on redisURL with roles,
// its ops listener on a free port; tune edits the flags first. The demo
// tenant's provider points nowhere: these tests send nothing.
func opsGateway(t *testing.T, redisURL, prefix, roles string, tune func(*gatewayFlags)) (*gateway, *gatewayFlags, error) {
	t.Helper()
	g := &gatewayFlags{
		instance: "ops-" + t.Name(), redisURL: redisURL, prefix: prefix, shards: 4,
		clickhouse: clickhouseAddr(), chDatabase: fmt.Sprintf("wagate_ops_%x", rand.Uint32()), chUser: "default",
		httpAddr: freeAddr(t), ops: freeAddr(t), roles: roles, readyLoaderLag: 5 * time.Minute,
		media: mediaFlags{dir: t.TempDir(), signingKey: devMediaSigningKey},
	}
	if tune != nil {
		tune(g)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := startGateway(g, devConfig("http://127.0.0.1:1", devNumbers(1), 80), log)
	if err != nil {
		return nil, g, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		gw.shutdown(ctx) // Redis may be gone: the errors say so, and do not matter here
		if g.has(roleLoader) {
			if conn, err := clickhouse.Open(ctx, g.chConfig()); err == nil {
				conn.Exec(ctx, "DROP DATABASE IF EXISTS "+g.chDatabase)
				conn.Close()
			}
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return gw, g, nil
}

// get answers GET url: the status and the body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readyz reads /readyz of the ops listener at ops.
func readyz(t *testing.T, ops string) (int, readyReport) {
	t.Helper()
	code, body := get(t, "http://"+ops+"/readyz")
	var rep readyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/readyz answered %d %q: not JSON: %v", code, body, err)
	}
	return code, rep
}

// waitReady polls /readyz until it answers want, and returns that answer.
func waitReady(t *testing.T, ops string, want int, within time.Duration) readyReport {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, rep := readyz(t, ops)
		if code == want {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d %+v after %v, want %d", code, rep, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReadyzNamesEachCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		roles string
		want  []string // the checks /readyz reports
	}{
		{"every role", "api,dispatcher,inbound,loader,filer",
			[]string{"dispatch_leases", "filer_leases", "functions", "loader_lag", "redis", "shutdown"}},
		{"api alone", "api", []string{"functions", "redis", "shutdown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.StartServer(t)
			gw, g, err := opsGateway(t, r.URL, "ops", tc.roles, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep := waitReady(t, g.ops, 200, 15*time.Second)
			var names []string
			for name, res := range rep.Checks {
				names = append(names, name)
				if res != "ok" {
					t.Errorf("check %s: %q at 200", name, res)
				}
			}
			if fmt.Sprint(slices.Sorted(slices.Values(names))) != fmt.Sprint(tc.want) || !rep.Ready || len(rep.Failing) != 0 {
				t.Fatalf("/readyz %+v, want ready with checks %v", rep, tc.want)
			}

			// Redis stops: not ready, and the answer names Redis.
			r.Stop()
			code, rep := readyz(t, g.ops)
			if code != 503 || rep.Ready || !slices.Contains(rep.Failing, "redis") || rep.Checks["redis"] == "ok" {
				t.Fatalf("with Redis stopped /readyz answered %d %+v, want 503 naming redis", code, rep)
			}
			for _, name := range rep.Failing {
				if rep.Checks[name] == "ok" || rep.Checks[name] == "" {
					t.Errorf("failing check %s says %q, want what failed", name, rep.Checks[name])
				}
			}
			// Liveness is not readiness: the process itself is fine.
			if code, body := get(t, "http://"+g.ops+"/healthz"); code != 200 || body != "ok" {
				t.Fatalf("/healthz %d %q", code, body)
			}
			gw.stopping.Store(true)
			if _, rep := readyz(t, g.ops); rep.Checks["shutdown"] == "ok" {
				t.Fatalf("shutting down, /readyz says %+v", rep)
			}
		})
	}
}

// TestReadyzRestoresLostFunctions: Redis lost wagate's functions (FUNCTION
// FLUSH, a new server); /readyz loads them again rather than waiting for
// traffic that a load balancer would not send to an unready API.
func TestReadyzRestoresLostFunctions(t *testing.T) {
	r := redistest.StartServer(t)
	_, g, err := opsGateway(t, r.URL, "ops", "api", nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer rdb.Close()
	if err := rdb.FunctionFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if code, rep := readyz(t, g.ops); code != 200 || rep.Checks["functions"] != "ok" {
		t.Fatalf("after FUNCTION FLUSH /readyz answered %d %+v", code, rep)
	}
	libs, err := rdb.FunctionList(context.Background(), goredis.FunctionListQuery{LibraryNamePattern: "wagate_*"}).Result()
	if err != nil || len(libs) != 1 {
		t.Fatalf("libraries after /readyz: %v %v, want wagate's", libs, err)
	}
}

func TestLoaderLagIsTheOldestEventNotInClickHouse(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := context.Background()
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: prefix, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.UnixMilli(time.Now().UnixMilli()) // as precise as stream ids
	key := store.Keys().Events(1)
	for _, tc := range []struct {
		name string
		do   func() error // what happens to the streams first
		want time.Duration
	}{
		{"nothing waits", func() error { return nil }, 0},
		{"an event the loader has not read", func() error {
			id := fmt.Sprintf("%d-0", now.Add(-10*time.Minute).UnixMilli())
			return rdb.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: id, Values: []any{"f", "v"}}).Err()
		}, 10 * time.Minute},
		{"read but not acknowledged", func() error {
			return rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: redis.GroupLoader, Consumer: "c", Streams: []string{key, ">"}, Count: 1}).Err()
		}, 10 * time.Minute},
		{"acknowledged: in ClickHouse", func() error {
			id := fmt.Sprintf("%d-0", now.Add(-10*time.Minute).UnixMilli())
			return rdb.XAck(ctx, key, redis.GroupLoader, id).Err()
		}, 0},
	} {
		if err := tc.do(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		lag, err := loaderLag(ctx, store, now)
		if err != nil || lag != tc.want {
			t.Fatalf("%s: lag %v %v, want %v", tc.name, lag, err, tc.want)
		}
	}
}

func TestMetricsOnTheOpsListenerOnly(t *testing.T) {
	rdb := redistest.Client(t)
	_, g, err := opsGateway(t, redistest.URL(), redistest.Prefix(t, rdb), "api,dispatcher", nil)
	if err != nil {
		t.Fatal(err)
	}
	api, ops := "http://"+g.httpAddr, "http://"+g.ops
	bi := readBuildInfo()
	for _, tc := range []struct {
		url      string
		wantCode int
		want     string // in the body
	}{
		{api + "/metrics", 404, ""},
		{api + "/debug/pprof/", 404, ""},
		{api + "/healthz", 200, "ok"},
		{ops + "/healthz", 200, "ok"},
		{ops + "/metrics", 200, "wagate_dispatch_shards_owned"},
		{ops + "/metrics", 200, fmt.Sprintf(`wagate_build_info{commit=%q,goversion=%q,version=%q} 1`, bi.Commit, runtime.Version(), bi.Version)},
		{ops + "/debug/pprof/cmdline", 200, ""},
	} {
		code, body := get(t, tc.url)
		if code != tc.wantCode || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d with %q; body:\n%.300s", tc.url, code, tc.wantCode, tc.want, body)
		}
	}
}

func TestPprofIsTheOldNameOfOps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     string // WAGATE_OPS_ADDR
		wantOps string
		wantErr string
		notice  bool
	}{
		{name: "neither", wantOps: defaultOpsAddr},
		{name: "-ops", args: []string{"-ops", "127.0.0.1:9999"}, wantOps: "127.0.0.1:9999"},
		{name: "-pprof alone moves the ops listener", args: []string{"-pprof", "127.0.0.1:18060"}, wantOps: "127.0.0.1:18060", notice: true},
		{name: "-pprof and -ops the same", args: []string{"-pprof", "127.0.0.1:1", "-ops", "127.0.0.1:1"}, wantOps: "127.0.0.1:1"},
		{name: "-pprof and -ops apart", args: []string{"-pprof", "127.0.0.1:1", "-ops", "127.0.0.1:2"}, wantErr: "give -ops alone"},
		{name: "-pprof and WAGATE_OPS_ADDR apart", args: []string{"-pprof", "127.0.0.1:1"}, env: "127.0.0.1:2", wantErr: "give -ops alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WAGATE_OPS_ADDR", tc.env)
			t.Setenv("WAGATE_PPROF_ADDR", "")
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var g gatewayFlags
			g.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			notice, err := g.settle(fs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || g.ops != tc.wantOps || (notice != "") != tc.notice {
				t.Fatalf("ops %q, notice %q, error %v; want ops %q, a notice: %v", g.ops, notice, err, tc.wantOps, tc.notice)
			}
		})
	}
}
