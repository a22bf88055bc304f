package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/syncbuf"
	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis/redistest"
)

func TestRedisThatMayEvictIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string // redis-server's
		allow    bool
		wantErr  []string // in the start's error; none: starts
		wantWarn string   // in the log
	}{
		{name: "noeviction", args: []string{"--maxmemory-policy", "noeviction"}},
		{name: "allkeys-lru", args: []string{"--maxmemory-policy", "allkeys-lru"},
			wantErr: []string{`maxmemory-policy is "allkeys-lru"`, "CONFIG SET maxmemory-policy noeviction", "-allow-eviction"}},
		{name: "volatile-ttl", args: []string{"--maxmemory-policy", "volatile-ttl"}, wantErr: []string{`"volatile-ttl"`}},
		{name: "allkeys-lru with -allow-eviction", args: []string{"--maxmemory-policy", "allkeys-lru"}, allow: true,
			wantWarn: "Redis may evict keys"},
		{name: "CONFIG renamed, as managed Redis does", args: []string{"--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", ""},
			wantWarn: "cannot read Redis's maxmemory-policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.StartServer(t, tc.args...)
			logs := &syncbuf.Buffer{}
			g := &gatewayFlags{instance: "evict", redisURL: r.URL, prefix: "ev", shards: 2, httpAddr: freeAddr(t), roles: "api",
				allowEviction: tc.allow, media: mediaFlags{dir: t.TempDir(), signingKey: devMediaSigningKey}}
			gw, err := startGateway(g, devConfig("http://127.0.0.1:1", devNumbers(1), 80), newTestLogger(logs))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				gw.shutdown(ctx)
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("started on a Redis with %v", tc.args)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused to start: %v", err)
			}
			if !strings.Contains(logs.String(), tc.wantWarn) {
				t.Fatalf("log %q does not say %q", logs.String(), tc.wantWarn)
			}
		})
	}
}

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		wantErr       string
		json          bool
	}{
		{level: "info", format: "text"},
		{level: "debug", format: "json", json: true},
		{level: "info", format: "xml", wantErr: `-log-format "xml"`},
		{level: "loud", format: "text", wantErr: `-log-level "loud"`},
	} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, tc.level, tc.format)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%s: error %v, want %q", tc.level, tc.format, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello", "n", 1)
		var v map[string]any
		isJSON := json.Unmarshal(buf.Bytes(), &v) == nil
		if isJSON != tc.json || (tc.json && (v["msg"] != "hello" || v["level"] != "INFO" || v["n"] != 1.0)) {
			t.Errorf("%s/%s wrote %q", tc.level, tc.format, buf.String())
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:s3cret@10.0.0.1:6379/0", "redis://:xxxxx@10.0.0.1:6379/0"},
		{"rediss://app:s3cret@redis.example.com:6380/2", "rediss://app:xxxxx@redis.example.com:6380/2"},
		{"redis://:s3cret@10.0.0.1:notaport/0", "xxxxx@10.0.0.1:notaport/0"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNoSecretInAnyLogLine runs the gateway as operators do, with a
// password in the Redis URL (and in ClickHouse's), through start, work and
// shutdown, at debug level: the password shows nowhere.
func TestNoSecretInAnyLogLine(t *testing.T) {
	const pass, chPass = "Redis-Pa55-7f3e", "Click-Pa55-91ab"
	r := redistest.StartServer(t, "--requirepass", pass)
	good := "redis://:" + pass + "@" + r.Addr + "/0"
	cfg := filepath.Join(t.TempDir(), "wagate.json")
	b, _ := json.Marshal(devConfig("http://127.0.0.1:1", devNumbers(1), 80))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Should ClickHouse take the password after all, the loader's schema
	// goes into a database of this test's.
	chDB := fmt.Sprintf("wagate_nosecret_%x", rand.Uint32())
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := clickhouse.Open(ctx, clickhouse.Config{Addr: clickhouseAddr()}); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+chDB)
			conn.Close()
		}
	})
	for _, tc := range []struct {
		name      string
		args      []string
		env       []string
		runs      bool   // comes up (else exits with an error)
		want      string // in the output
		jsonLines bool   // every line of stderr is JSON
	}{
		{name: "serve, text", args: []string{"serve", "-config", cfg, "-redis", good}, runs: true,
			want: "redis=redis://:xxxxx@" + r.Addr},
		{name: "serve, json", args: []string{"serve", "-config", cfg, "-redis", good, "-log-format", "json"}, runs: true,
			want: `"redis":"redis://:xxxxx@` + r.Addr, jsonLines: true},
		{name: "serve, URL from the environment", args: []string{"serve", "-config", cfg}, env: []string{"WAGATE_REDIS_URL=" + good}, runs: true,
			want: "redis://:xxxxx@"},
		{name: "dev", args: []string{"dev", "-redis", good, "-sim", "127.0.0.1:0", "-roles", "api,dispatcher,inbound"}, runs: true,
			want: "redis://:xxxxx@" + r.Addr},
		{name: "Redis refuses the password", args: []string{"serve", "-config", cfg, "-redis", "redis://:" + pass + "x@" + r.Addr + "/0"},
			want: "redis at " + r.Addr},
		{name: "a URL that does not parse", args: []string{"serve", "-config", cfg, "-redis", "redis://:" + pass + "@127.0.0.1:notaport/0"},
			want: "redis url (-redis, WAGATE_REDIS_URL) xxxxx@127.0.0.1:notaport/0"},
		{name: "help", args: []string{"serve", "-h"}, env: []string{"WAGATE_REDIS_URL=" + good, "WAGATE_MEDIA_SIGNING_KEY=" + pass + "-and-more-to-make-32-bytes"},
			want: "redis://:xxxxx@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := freeAddr(t)
			args := append(tc.args, "-http", freeAddr(t), "-ops", ops, "-log-level", "debug", "-media-dir", t.TempDir(),
				"-prefix", "nosecret", "-clickhouse-db", chDB, "-clickhouse-password", chPass)
			if tc.name == "help" {
				args = tc.args
			}
			cmd := exec.Command(wagateBinary(t), args...)
			cmd.Env = append(os.Environ(), tc.env...)
			cmd.Env = append(cmd.Env, "WAGATE_CLICKHOUSE_PASSWORD="+chPass)
			var out lockedLines
			cmd.Stdout, cmd.Stderr = out.writer("stdout"), out.writer("stderr")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if tc.runs {
				deadline := time.Now().Add(20 * time.Second)
				for {
					if resp, err := http.Get("http://" + ops + "/readyz"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						t.Fatalf("the gateway did not come up:\n%s", out.all())
					}
					time.Sleep(100 * time.Millisecond)
				}
				cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the gateway did not stop:\n%s", out.all())
			}
			text := out.all()
			if !strings.Contains(text, tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, text)
			}
			for _, l := range out.lines() {
				if strings.Contains(l.text, pass) || strings.Contains(l.text, chPass) {
					t.Errorf("a password in %s: %s", l.stream, l.text)
				}
				if tc.jsonLines && l.stream == "stderr" && !json.Valid([]byte(l.text)) {
					t.Errorf("not a JSON line: %s", l.text)
				}
			}
		})
	}
}

// newTestLogger logs everything, as text, to w.
func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lockedLines gathers the lines a process writes to its streams.
type lockedLines struct {
	mu sync.Mutex
	ls []line
}

type line struct{ stream, text string }

func (o *lockedLines) writer(stream string) *lineWriter { return &lineWriter{o: o, stream: stream} }

func (o *lockedLines) lines() []line {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]line(nil), o.ls...)
}

func (o *lockedLines) all() string {
	var b strings.Builder
	for _, l := range o.lines() {
		b.WriteString(l.stream + ": " + l.text + "\n")
	}
	return b.String()
}

// lineWriter splits what one stream gets into lines.
type lineWriter struct {
	o      *lockedLines
	stream string
	part   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.part = append(w.part, p...)
	n := bytes.LastIndexByte(w.part, '\n') + 1 // whole lines only
	sc := bufio.NewScanner(bytes.NewReader(w.part[:n]))
	sc.Buffer(nil, 1<<20)
	w.o.mu.Lock()
	for sc.Scan() {
		w.o.ls = append(w.o.ls, line{w.stream, sc.Text()})
	}
	w.o.mu.Unlock()
	w.part = append(w.part[:0], w.part[n:]...)
	return len(p), nil
}

// TestVersionCommand builds wagate as a release is built, with its version
// and commit given to the linker.
func TestVersionCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wagate")
	if out, err := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X main.version=v9.8.7-test -X main.commit=0123456789abcdef0123456789abcdef01234567", ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("wagate version: %v\n%s", err, out)
	}
	want := "wagate v9.8.7-test\ncommit 0123456789abcdef0123456789abcdef01234567\ngo     " + runtime.Version() + "\n"
	if string(out) != want {
		t.Fatalf("wagate version printed %q, want %q", out, want)
	}
}

func TestBuildInfoRule(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name                string
		ldVersion, ldCommit string
		bi                  *debug.BuildInfo
		want                buildInfo
	}{
		{"-ldflags win", "v1.2.3", "c0ffee", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-x"}, Settings: vcs("abc", "false")},
			buildInfo{"v1.2.3", "c0ffee", "go1.26.0"}},
		{"what Go recorded", "", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"}, Settings: vcs("def", "true")},
			buildInfo{"v1.4.0", "def-dirty", "go1.26.0"}},
		{"a devel build without VCS", "", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			buildInfo{"devel", "unknown", "go1.26.0"}},
		{"no build info", "", "", nil, buildInfo{"devel", "unknown", runtime.Version()}},
	} {
		if got := makeBuildInfo(tc.ldVersion, tc.ldCommit, tc.bi); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
