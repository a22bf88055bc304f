package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/redisinfo"
)

func sampleReport() *Report {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * 10 * time.Microsecond) // 10 µs … 10 ms
	}
	rep := &Report{Date: "2026-11-21", Started: "2026-11-21T07:00:00Z",
		Machine: Machine{Cores: 2, Nproc: 2, CPU: "AMD EPYC", MemTotalMB: 24105, GOMAXPROCS: 2, Go: "go1.26", OS: "linux/amd64"},
		Command: "wabench -scenario single", Gateway: "wagate dev -numbers 16",
		Ceilings: []Ceiling{{Name: "http/send", What: "bare fasthttp | same requests", Value: 60000, Unit: "req/s", Count: 600000, Elapsed: 10, Latency: LatencyOf(&h)}}}
	r := Result{Scenario: "single", Name: "single", Unit: "req/s", Throughput: 39000, Requests: 390000, Messages: 390000,
		Errors: 2, ErrorKinds: map[string]int64{"http 503 SERVICE_UNAVAILABLE": 2}, Latency: LatencyOf(&h),
		Goal: "≥ 60% of http/send", Concurrency: 64, Elapsed: 10}
	r.compare(rep.Ceiling("http/send"), false)
	r.Checks = []Check{{What: "accepted messages in Redis", Want: 390000, Got: 390000, OK: true}}
	r.figure("lag p50 (ms)", 12.5)
	r.judge(r.Ratio >= 0.6)
	bad := Result{Scenario: "bulk", Name: "bulk", Unit: "msg/s", Throughput: 15000, Goal: "≥ 300000 msg/s"}
	bad.Checks = []Check{{What: "batches", Want: 10, Got: 9, OK: false, Detail: "batch b1: total 0"}}
	bad.judge(bad.Throughput >= 300000)
	rep.Results = []Result{r, bad}
	return rep
}

func TestResultRatioAndGoal(t *testing.T) {
	rep := sampleReport()
	r := rep.Results[0]
	if r.Ratio != 0.65 || r.CeilingValue != 60000 || r.Ceiling != "http/send" {
		t.Fatalf("ratio %v of %s %v, want 0.65 of http/send 60000", r.Ratio, r.Ceiling, r.CeilingValue)
	}
	if r.Met == nil || !*r.Met {
		t.Fatal("65% of the ceiling with every check ok is not met")
	}
	if b := rep.Results[1]; b.Met == nil || *b.Met {
		t.Fatal("a result below its goal with a failed check counts as met")
	}
	ok := Result{Throughput: 400000, Checks: []Check{{OK: false}}}
	ok.judge(true)
	if *ok.Met {
		t.Fatal("a failed check does not make the goal missed")
	}
	per := Result{Throughput: 100}
	per.compare(&Ceiling{Name: "c", Value: 10, PerMessage: 1000}, true)
	if per.CeilingValue != 1000 || per.Ratio != 0.1 {
		t.Fatalf("per-message comparison: %v of %v, want 0.1 of 1000", per.Ratio, per.CeilingValue)
	}
}

func TestReportJSONRoundTrips(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, rep) {
		t.Fatalf("JSON round trip changed the report:\n%s", buf.Bytes())
	}
	for _, k := range []string{`"p99_ms"`, `"ceiling_value": 60000`, `"ratio": 0.65`, `"met": false`, `"cores": 2`} {
		if !strings.Contains(buf.String(), k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
}

func TestReportMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"Machine: 2 cores (`nproc` 2), AMD EPYC, 24 105 MB RAM",
		"wagate dev -numbers 16\nwabench -scenario single\n",
		"| result | throughput | p50 | p95 | p99 | errors | ceiling | ratio | goal | met |",
		"| single | 39 000 req/s | 5.01 ms | 9.50 ms | 9.90 ms | 2 | http/send 60 000 req/s | 65% | ≥ 60% of http/send | met |",
		"| bulk | 15 000 msg/s | – | – | – | 0 | – | – | ≥ 300000 msg/s | MISSED |",
		"| http/send | 60 000 req/s |  | 5.01 ms | 9.90 ms | 600 000 | 0 | bare fasthttp \\| same requests |",
		"- accepted messages in Redis: 390 000 of 390 000 ok",
		"- batches: 9 of 10 FAILED (batch b1: total 0)",
		"- error `http 503 SERVICE_UNAVAILABLE`: 2",
		"- lag p50 (ms): 12.500",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportTableAlignsColumns(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	head, single := lines[0], lines[1]
	if !strings.HasPrefix(single, "single ") || !strings.Contains(single, "39 000 req/s") {
		t.Fatalf("first result line %q", single)
	}
	// Right-aligned numbers end where their header ends.
	for _, col := range []string{"throughput", "p99", "errors"} {
		end := strings.Index(head, col) + len(col)
		if single[end-1] == ' ' || end < len(single) && single[end] != ' ' {
			t.Errorf("column %s not aligned:\n%s\n%s", col, head, single)
		}
	}
	if !strings.Contains(buf.String(), "bulk: batches: 9 of 10 FAILED (batch b1: total 0)") {
		t.Errorf("table lacks the failed check:\n%s", buf.String())
	}
}

func TestNumberFormats(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(groupDigits(0), "0")
	f(groupDigits(999), "999")
	f(groupDigits(1000), "1 000")
	f(groupDigits(1234567), "1 234 567")
	f(groupDigits(-1000), "-1 000")
	f(number(12.3456), "12.346")
	f(number(1234.6), "1 235")
	f(number(42), "42")
	f(ms(0.123), "0.12 ms")
	f(ms(12.34), "12.3 ms")
	f(ms(1234.5), "1234 ms")
	f(ratioCell(0.6049), "60%")
	f(rate(299999.6, "msg/s"), "300 000 msg/s")
}

func TestCPUFigures(t *testing.T) {
	if got := parseProcStat("cpu  100 0 50 1000 20 5 5 0 0 0\ncpu0 1 2 3\n"); got != 1.6 {
		t.Errorf("busy %v s, want 1.6 (user+system+irq+softirq)", got)
	}
	if got := redisinfo.CPUSeconds("# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9\r\n"); got != 3.75 {
		t.Errorf("redis cpu %v, want 3.75", got)
	}
	t0 := time.Now()
	a := cpuSample{at: t0, gateway: 10, redis: 5, bench: 1, machine: 100}
	b := cpuSample{at: t0.Add(2 * time.Second), gateway: 11, redis: 6, bench: 1.5, machine: 103.6}
	f := cpuFigures(a, b, 10_000, "message")
	want := map[string]float64{
		"CPU gateway (cores)": 0.5, "CPU gateway per message (µs)": 100,
		"CPU redis (cores)": 0.5, "CPU redis per message (µs)": 100,
		"CPU wabench (cores)": 0.25, "CPU wabench per message (µs)": 50,
		"CPU machine busy (cores)": 1.8, "CPU everything else (cores)": 0.55,
	}
	for k, v := range want {
		if math.Abs(f[k]-v) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
	a.redis = -1
	if _, ok := cpuFigures(a, b, 1, "message")["CPU redis (cores)"]; ok {
		t.Error("a missing Redis sample gave a figure")
	}
}
