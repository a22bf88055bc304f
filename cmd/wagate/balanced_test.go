package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// startNginx runs Debian's nginx in the foreground as the load balancer a
// user would put before several API processes, on a free port, until t
// ends. It returns its base URL.
func startNginx(t *testing.T, upstreams ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is missing: scripts/test installs it (Debian's nginx-light)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "    server %s max_fails=1 fail_timeout=2s;\n", u)
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream wagate {
%[2]s    keepalive 64;
  }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://wagate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # A POST is tried on another process only when it never reached the
      # first: a send is never accepted twice by the balancer.
      proxy_next_upstream error timeout;
    }
  }
}
`, dir, servers.String(), addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not come up: %s\n%s", out.String(), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGatewaysBehindNginxOnACluster: two gateways (API and dispatcher) on
// the test Redis Cluster behind nginx take sends from 16 callers; one is
// killed (SIGKILL) and a third dispatcher joins during the run. Every send
// answered 202 is sent, the shards are shared again between the two live
// dispatchers within the lease's time, and the provider got no more
// duplicates than the killed one had sends in flight.
func TestGatewaysBehindNginxOnACluster(t *testing.T) {
	cc := redistest.ClusterClient(t)
	nums := spreadNumbers(12)
	f := newFleetOn(t, cc, redistest.ClusterURL(), redistest.ClusterPrefix(t, cc), sim.Config{Latency: 10 * time.Millisecond}, nums,
		func(fc *fileConfig) {
			for _, n := range nums {
				fc.Rates.PerNumber[n.sender] = 300
			}
		})
	ctx := context.Background()
	// Free text to guests who never wrote: the tenant sends without the
	// window rule, as wabench's tenant does.
	if err := f.store.PutTenantDoc(ctx, devTenant, redis.DocSettings, []byte(`{"window_enforcement":false}`)); err != nil {
		t.Fatal(err)
	}
	g1 := f.start("g1", "api,dispatcher")
	g2 := f.start("g2", "api,dispatcher")
	lb := startNginx(t, g1.http, g2.http)

	var (
		mu       sync.Mutex
		accepted []string
		refused  atomic.Int64
		seq      atomic.Int64
	)
	client := &http.Client{Timeout: 10 * time.Second}
	stop := time.Now().Add(8 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				n := seq.Add(1)
				from := nums[n%int64(len(nums))].sender
				body := fmt.Sprintf(`{"guest_phone":"+1415800%04d","from":"%s","message_type":"text","content":{"text":"Your table is ready"}}`, n%10000, from)
				req, _ := http.NewRequest("POST", lb+"/api/v1/whatsapp/messages/send", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+devStaffToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var v map[string]any
				if resp.StatusCode == 202 && json.Unmarshal(raw, &v) == nil {
					mu.Lock()
					accepted = append(accepted, v["message_id"].(string))
					mu.Unlock()
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	// g2 dies: what it had "sending" on its shards is what may go twice.
	if err := g2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	g2.cmd.Wait()
	owned := map[int]bool{}
	for sh := 0; sh < f.shards; sh++ {
		owned[sh] = strings.HasPrefix(cc.Get(ctx, f.store.Keys().Lease(sh, "dispatch")).Val(), "g2\t")
	}
	// Every message of g2's shards that was "sending" when it died, before
	// g1 takes them over (2 s lease): not only those whose 202 had reached
	// a client by then (a message may be sending before its answer is
	// back, and a cut answer's message goes all the same).
	var inFlightN atomic.Int64
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		var keys []string
		iter := c.Scan(ctx, 0, f.prefix+":*:msg:*", 1000).Iterator()
		for iter.Next(ctx) {
			id := iter.Val()[strings.LastIndex(iter.Val(), ":")+1:]
			if sh, err := message.ShardOf(id); err == nil && owned[sh] {
				keys = append(keys, iter.Val())
			}
		}
		pipe := c.Pipeline()
		sts := make([]*goredis.StringCmd, len(keys))
		for i, k := range keys {
			sts[i] = pipe.HGet(ctx, k, "st")
		}
		pipe.Exec(ctx)
		for _, st := range sts {
			if st.Val() == string(message.StatusSending) {
				inFlightN.Add(1)
			}
		}
		return iter.Err()
	})
	inFlight := int(inFlightN.Load())
	time.Sleep(time.Second)
	f.start("g3", "dispatcher")
	g3start := time.Now() // it answers /healthz: its roles run

	// The shards are shared by g1 and g3 within the lease's time (2 s;
	// twice that on a loaded machine).
	var holders map[string]int
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		holders = map[string]int{}
		for sh := 0; sh < f.shards; sh++ {
			v := cc.Get(ctx, f.store.Keys().Lease(sh, "dispatch")).Val()
			holders[strings.SplitN(v, "\t", 2)[0]]++
		}
		if holders["g1"] >= f.shards/4 && holders["g3"] >= f.shards/4 && holders["g1"]+holders["g3"] == f.shards {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if holders["g1"] < f.shards/4 || holders["g3"] < f.shards/4 || holders["g1"]+holders["g3"] != f.shards {
		t.Fatalf("shard leases %v %v after g3 started, want them shared by g1 and g3", holders, time.Since(g3start))
	}
	t.Logf("shards shared %v, %v after g3 started", holders, time.Since(g3start).Round(time.Millisecond))
	wg.Wait()

	states := f.waitDone(accepted, 2*time.Minute, terminal)
	for id, st := range states {
		if st.Status != message.StatusSent && st.Status != message.StatusDelivered && st.Status != message.StatusRead {
			t.Fatalf("%s ended %s (%s)", id, st.Status, st.ErrorTitle)
		}
	}
	// The messages Redis took: those answered 202, and those whose answer
	// g2's death cut (the caller saw an error; the message goes all the
	// same, as a caller retrying with an Idempotency-Key would find).
	var taken atomic.Int64
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		iter := c.Scan(ctx, 0, f.prefix+":*:msg:*", 1000).Iterator()
		for iter.Next(ctx) {
			taken.Add(1)
		}
		return iter.Err()
	})
	sent := f.simStats().Accepted
	dups := sent - taken.Load()
	t.Logf("%d sends answered 202 through nginx, %d refused or cut while g2 died, %d messages in Redis; the provider got %d: %d duplicates, %d in flight at the kill",
		len(accepted), refused.Load(), taken.Load(), sent, dups, inFlight)
	if len(accepted) < 500 {
		t.Fatalf("only %d sends accepted", len(accepted))
	}
	if dups < 0 || dups > int64(inFlight) {
		t.Fatalf("%d duplicate sends, %d in flight at the kill", dups, inFlight)
	}
}
