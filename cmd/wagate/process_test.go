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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// The tests in this file run the dispatcher as the real wagate binary,
// built without the race detector, in processes of their own: speed is
// what they check, and a process is what gets killed.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func wagateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wagate-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wagate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// fleet is a simulator and dispatcher processes sharing one Redis prefix,
// all with the same config. The simulator runs apart too: a race-detecting
// test process would be too slow a provider for the rates checked here.
type fleet struct {
	t      *testing.T
	simURL string
	store  *redis.Store
	prefix string
	shards int
	cfg    string // config file
	procs  []*proc
	// redisURL is the Redis the processes use.
	redisURL string
}

// number is a sender number of a fleet.
type number struct {
	sender  string // E.164
	phoneID string
}

// sameShardNumbers returns n sender numbers that all hash to one shard.
func sameShardNumbers(n, shards int) []number {
	var out []number
	want := -1
	for i := 0; len(out) < n; i++ {
		s := fmt.Sprintf("+1555%07d", 1000+i)
		sh := message.ShardFor(s, shards)
		if want == -1 {
			want = sh
		}
		if sh == want {
			out = append(out, number{sender: s, phoneID: fmt.Sprintf("1000000000%05d", len(out)+1)})
		}
	}
	return out
}

func spreadNumbers(n int) []number {
	out := make([]number, n)
	for i := range out {
		out[i] = number{sender: fmt.Sprintf("+1666%07d", 2000+i), phoneID: fmt.Sprintf("2000000000%05d", i+1)}
	}
	return out
}

// newFleet starts the simulator for nums and writes the dispatchers'
// config; tune edits the config before it is written.
func newFleet(t *testing.T, sc sim.Config, nums []number, tune func(*fileConfig)) *fleet {
	t.Helper()
	rdb := redistest.Client(t)
	return newFleetOn(t, rdb, redistest.URL(), redistest.Prefix(t, rdb), sc, nums, tune)
}

// newFleetOn is newFleet on the Redis rdb reaches at url (one server or a
// Cluster), with the processes' keys under prefix.
func newFleetOn(t *testing.T, rdb goredis.UniversalClient, url, prefix string, sc sim.Config, nums []number, tune func(*fileConfig)) *fleet {
	t.Helper()
	f := &fleet{t: t, prefix: prefix, shards: 16, redisURL: url}
	var err error
	f.store, err = redis.New(context.Background(), rdb, redis.Config{Prefix: f.prefix, Shards: f.shards})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.store.Close)
	simAddr := freeAddr(t)
	args := []string{"sim", "-sim", simAddr, "-webhook", "", "-access-token", devSimToken, "-app-secret", devAppSecret,
		"-sim-latency", sc.Latency.String(), "-sim-throughput", strconv.FormatFloat(sc.Throughput, 'f', -1, 64),
		"-sim-throughput-burst", strconv.Itoa(sc.ThroughputBurst), "-sim-error-rate", strconv.FormatFloat(sc.ErrorRate, 'f', -1, 64)}
	for _, n := range nums {
		args = append(args, "-number", n.phoneID+":"+n.sender[1:])
	}
	f.startProcess("sim", simAddr, args...)
	f.simURL = "http://" + simAddr
	fc := &fileConfig{
		Tenants: []tenantConfig{{ID: devTenant, Tokens: []tokenConfig{{Token: devStaffToken, Role: "staff"}}}},
		Meta: metaConfig{AppSecret: devAppSecret, VerifyToken: devVerifyToken,
			Accounts: []metaAccount{{Name: "meta", BaseURL: f.simURL, Version: "v23.0", AccessToken: devSimToken, Numbers: map[string]string{}}}},
		Rates: rateConfig{DefaultMPS: 80, PerNumber: map[string]float64{}},
		Pairs: pairConfig{Burst: 1000},
	}
	fc.Dispatch.LeaseTTL = "2s"
	for _, n := range nums {
		fc.Tenants[0].Senders = append(fc.Tenants[0].Senders, n.sender)
		fc.Meta.Accounts[0].Numbers[n.sender] = n.phoneID
	}
	if tune != nil {
		tune(fc)
	}
	for i := range fc.SMS.Accounts {
		if fc.SMS.Accounts[i].BaseURL == "SIMURL" {
			fc.SMS.Accounts[i].BaseURL = f.simURL
		}
	}
	b, _ := json.MarshalIndent(fc, "", "  ")
	f.cfg = filepath.Join(t.TempDir(), "wagate.json")
	if err := os.WriteFile(f.cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// proc is a wagate process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	http string
	// ops is the process's ops listener, where its /metrics is.
	ops string
	log *bytes.Buffer
	mu  sync.Mutex
}

// start runs `wagate serve` with roles, named instance.
func (f *fleet) start(instance, roles string) *proc {
	f.t.Helper()
	addr, ops := freeAddr(f.t), freeAddr(f.t)
	p := f.startProcess(instance, addr, "serve", "-config", f.cfg, "-roles", roles, "-instance", instance,
		"-http", addr, "-ops", ops, "-redis", f.redisURL, "-prefix", f.prefix, "-shards", strconv.Itoa(f.shards), "-log-level", "warn")
	p.ops = ops
	return p
}

// startProcess runs the wagate binary with args and waits until addr
// answers /healthz (the simulator: /_sim/stats).
func (f *fleet) startProcess(name, addr string, args ...string) *proc {
	f.t.Helper()
	p := &proc{t: f.t, name: name, http: addr, log: &bytes.Buffer{}}
	p.cmd = exec.Command(wagateBinary(f.t), args...)
	out, _ := p.cmd.StderrPipe()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.procs = append(f.procs, p)
	f.t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
		}
		if f.t.Failed() {
			p.mu.Lock()
			f.t.Logf("%s's log:\n%s", p.name, p.log.String())
			p.mu.Unlock()
		}
	})
	probe := "/healthz"
	if name == "sim" {
		probe = "/_sim/stats"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + probe); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s did not come up:\n%s", name, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// simStats reads the simulator's counters.
func (f *fleet) simStats() sim.Stats {
	f.t.Helper()
	var st sim.Stats
	f.simGet("/_sim/stats", &st)
	return st
}

func (f *fleet) simGet(path string, v any) {
	f.t.Helper()
	resp, err := http.Get(f.simURL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		f.t.Fatalf("%s: %v", path, err)
	}
}

// outage makes the simulator's Meta endpoint fail for d.
func (f *fleet) outage(d time.Duration) {
	f.t.Helper()
	resp, err := http.Post(f.simURL+"/_sim/outage?seconds="+strconv.FormatFloat(d.Seconds(), 'f', -1, 64), "", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
}

// metric scrapes one series of the process's /metrics, on its ops
// listener (summing over the labels it leaves out); -1 when the process
// does not answer.
func (p *proc) metric(name string, labels ...string) float64 {
	resp, err := http.Get("http://" + p.ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// cpu returns the process's user+system CPU time so far.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks (USER_HZ = 100)
}

// enqueue queues n texts from sender to distinct recipients, concurrently.
func (f *fleet) enqueue(n int, sender string, opt func(i int, a *redis.EnqueueArgs)) []string {
	f.t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				a := &redis.EnqueueArgs{TenantID: devTenant, Sender: sender, Recipient: fmt.Sprintf("+1%010d", 2000000000+i),
					Type: message.TypeText, Content: []byte(fmt.Sprintf(`{"body":"message %d"}`, i)), Lane: message.LaneTx}
				if opt != nil {
					opt(i, a)
				}
				res, err := f.store.Enqueue(context.Background(), a)
				if err != nil {
					f.t.Error(err)
					continue
				}
				ids[i] = res.ID
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return ids
}

// waitDone polls until every message is in a status done accepts.
func (f *fleet) waitDone(ids []string, timeout time.Duration, done func(*redis.State) bool) map[string]*redis.State {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	out := map[string]*redis.State{}
	for {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			st, err := f.store.State(context.Background(), id)
			if err == nil && done(st) {
				out[id] = st
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d messages done after %v", len(out), len(ids), timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func terminal(st *redis.State) bool { return message.Terminal(st.Status) }

// perSecond returns the simulator's accepted sends of phoneID per second,
// trimmed of the first and last (partial) seconds, in time order.
func (f *fleet) perSecond(phoneID string) []int {
	_, secs := f.secondsOf(phoneID)
	return secs
}

// secondsOf is perSecond with the sends of the partial second before the
// first full one (lead).
func (f *fleet) secondsOf(phoneID string) (lead int, secs []int) {
	var raw map[string]int
	f.simGet("/_sim/rates?phone_number_id="+phoneID, &raw)
	m := map[int64]int{}
	for k, n := range raw {
		sec, _ := strconv.ParseInt(k, 10, 64)
		m[sec] = n
	}
	var first, last int64 = 1 << 62, 0
	for s := range m {
		first, last = min(first, s), max(last, s)
	}
	for s := first + 1; s < last; s++ {
		secs = append(secs, m[s])
	}
	return m[first], secs
}

var _ = slog.Default
var _ = rand.IntN
