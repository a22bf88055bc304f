package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/redisinfo"
)

// cpuSample is the CPU time used so far by the three processes that share
// the machine in a run: the gateway (its process_cpu_seconds_total), Redis
// (INFO cpu) and wabench itself (getrusage). A missing one is -1.
type cpuSample struct {
	at                    time.Time
	gateway, redis, bench float64
	// machine is the CPU time every process of the machine used
	// (/proc/stat), so that what others ran during a run shows.
	machine float64
	// cmds is Redis's INFO commandstats: time (µs) and calls per command
	// (on a Cluster, summed over the masters).
	cmds map[string]redisinfo.CommandStat
	// masters are, on a Cluster, each master's CPU seconds and commands'
	// time (µs), by address.
	masters map[string]masterSample
}

// masterSample is one master's share of a sample.
type masterSample struct {
	cpu  float64
	usec int64
}

// cpuMeter takes the samples; it needs the gateway's metrics (its ops
// listener) and Redis.
type cpuMeter struct {
	ops *Client
	rdb *goredis.Client
	// cluster is the Redis Cluster when the gateway runs on one
	// (redis+cluster://…): its masters are sampled one by one.
	cluster *goredis.ClusterClient
}

func newCPUMeter(ops *Client, redisURL string) *cpuMeter {
	m := &cpuMeter{ops: ops}
	if hosts, ok := strings.CutPrefix(redisURL, "redis+cluster://"); ok {
		m.cluster = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(hosts, ","), PoolSize: 1})
		return m
	}
	if opt, err := goredis.ParseURL(redisURL); err == nil {
		opt.PoolSize = 1
		m.rdb = goredis.NewClient(opt)
	}
	return m
}

func (m *cpuMeter) close() {
	if m.rdb != nil {
		m.rdb.Close()
	}
	if m.cluster != nil {
		m.cluster.Close()
	}
}

// sampleCluster sums the masters' CPU and commandstats into s and keeps
// each master's share.
func (m *cpuMeter) sampleCluster(s *cpuSample) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	s.masters, s.cmds = map[string]masterSample{}, map[string]redisinfo.CommandStat{}
	s.redis = 0
	err := m.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		info, err := c.Info(ctx, "cpu", "commandstats").Result()
		if err != nil {
			return err
		}
		cpu, cmds := redisinfo.CPUSeconds(info), redisinfo.CommandStats(info)
		mu.Lock()
		defer mu.Unlock()
		s.redis += cpu
		var usec int64
		for name, st := range cmds {
			sum := s.cmds[name]
			sum.Calls += st.Calls
			sum.Usec += st.Usec
			s.cmds[name] = sum
			if name != "info" {
				usec += st.Usec
			}
		}
		s.masters[c.Options().Addr] = masterSample{cpu: cpu, usec: usec}
		return nil
	})
	if err != nil {
		s.redis, s.cmds, s.masters = -1, nil, nil
	}
}

func (m *cpuMeter) sample() cpuSample {
	s := cpuSample{at: time.Now(), gateway: -1, redis: -1, bench: selfCPU(), machine: machineCPU()}
	if m.ops != nil {
		if mt, err := m.ops.Scrape(); err == nil && mt["process_cpu_seconds_total"] != nil {
			s.gateway = mt.Value("process_cpu_seconds_total")
		}
	}
	if m.cluster != nil {
		m.sampleCluster(&s)
	}
	if m.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := m.rdb.Info(ctx, "cpu", "commandstats").Result()
		cancel()
		if err == nil {
			s.redis = redisinfo.CPUSeconds(info)
			s.cmds = redisinfo.CommandStats(info)
		}
	}
	return s
}

// selfCPU is this process's user and system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// machineCPU is the busy time of all CPUs in seconds: the first line of
// /proc/stat, in USER_HZ (100 on Linux), less idle and iowait.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	return parseProcStat(string(b))
}

func parseProcStat(stat string) float64 {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy float64
	for i, v := range f[1:] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return -1
		}
		// user nice system idle iowait irq softirq steal (guest is in user)
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return busy / 100
}

// redisCommandFigures are what Redis's commands cost between a and b per
// unit (µs, from INFO commandstats): the total (redisinfo.Usec), the
// functions' part, and the costliest commands one by one.
func redisCommandFigures(a, b cpuSample, units int64, unit string, out map[string]float64) {
	if a.cmds == nil || b.cmds == nil || units <= 0 {
		return
	}
	type row struct {
		name string
		usec int64
	}
	var rows []row
	for name, st := range b.cmds {
		if d := st.Usec - a.cmds[name].Usec; d > 0 && name != "info" {
			rows = append(rows, row{name, d})
		}
	}
	total := redisinfo.Usec(a.cmds, b.cmds)
	per := func(us int64) float64 { return float64(us) / float64(units) }
	out["Redis commands per "+unit+" (µs, commandstats)"] = per(total)
	out["Redis functions (FCALL) per "+unit+" (µs, commandstats)"] = per(b.cmds["fcall"].Usec - a.cmds["fcall"].Usec)
	slices.SortFunc(rows, func(x, y row) int { return int(y.usec - x.usec) })
	for _, r := range rows[:min(len(rows), 8)] {
		out["Redis cmd "+r.name+" per "+unit+" (µs)"] = per(r.usec)
	}
}

// cpuFigures are the CPU used between a and b: cores busy on average,
// and microseconds per unit (message, request, row) of each process.
func cpuFigures(a, b cpuSample, units int64, unit string) map[string]float64 {
	el := b.at.Sub(a.at).Seconds()
	out := map[string]float64{}
	if el <= 0 {
		return out
	}
	f := func(name string, x, y float64) {
		if x < 0 || y < 0 {
			return
		}
		out["CPU "+name+" (cores)"] = (y - x) / el
		if units > 0 {
			out["CPU "+name+" per "+unit+" (µs)"] = (y - x) / float64(units) * 1e6
		}
	}
	f("gateway", a.gateway, b.gateway)
	f("redis", a.redis, b.redis)
	redisCommandFigures(a, b, units, unit, out)
	masterFigures(a, b, units, unit, out)
	f("wabench", a.bench, b.bench)
	if a.machine >= 0 && b.machine >= 0 {
		busy := (b.machine - a.machine) / el
		out["CPU machine busy (cores)"] = busy
		others := busy
		for _, p := range [][2]float64{{a.gateway, b.gateway}, {a.redis, b.redis}, {a.bench, b.bench}} {
			if p[0] >= 0 && p[1] >= 0 {
				others -= (p[1] - p[0]) / el
			}
		}
		out["CPU everything else (cores)"] = max(others, 0)
	}
	return out
}

// profiler saves CPU profiles of the gateway (its ops listener, -ops) taken
// during the timed runs, one file per run.
type profiler struct {
	url, dir string
}

// during profiles the gateway for most of a run of length d that starts
// now, into dir/name.pprof; the returned function waits for it.
func (p *profiler) during(name string, d time.Duration) func() error {
	if p == nil || p.url == "" || d < 4*time.Second {
		return func() error { return nil }
	}
	secs := int(min(d-2*time.Second, 30*time.Second) / time.Second)
	done := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		done <- p.fetch(name, secs)
	}()
	return func() error { return <-done }
}

func (p *profiler) fetch(name string, secs int) error {
	c := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
	resp, err := c.Get(strings.TrimRight(p.url, "/") + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
	if err != nil {
		return fmt.Errorf("profile %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("profile %s: http %d", name, resp.StatusCode)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(p.dir, strings.NewReplacer("/", "-", " ", "_", ":", "").Replace(name)+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// masterFigures are, on a Redis Cluster, each master's CPU per unit and
// share of the commands' time, and how far the busiest and the idlest
// master are from an even share (the load's spread over the masters).
func masterFigures(a, b cpuSample, units int64, unit string, out map[string]float64) {
	if len(b.masters) == 0 || units <= 0 {
		return
	}
	var total int64
	usec := map[string]int64{}
	for addr, m := range b.masters {
		if p, ok := a.masters[addr]; ok {
			usec[addr] = m.usec - p.usec
			total += usec[addr]
			out["Redis master "+addr+" CPU per "+unit+" (µs)"] = (m.cpu - p.cpu) / float64(units) * 1e6
		}
	}
	if total <= 0 || len(usec) == 0 {
		return
	}
	even := float64(total) / float64(len(usec))
	lo, hi := 1e18, 0.0
	for addr, u := range usec {
		out["Redis master "+addr+" share of commands (%)"] = float64(u) / float64(total) * 100
		lo, hi = min(lo, float64(u)), max(hi, float64(u))
	}
	out["Redis masters"] = float64(len(usec))
	out["Redis masters' spread: busiest over an even share (%)"] = (hi/even - 1) * 100
	out["Redis masters' spread: idlest under an even share (%)"] = (1 - lo/even) * 100
}
