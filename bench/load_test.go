package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/syncbuf"
)

// TestHTTPCeilingDrivesTheSameRequests: the bare handler answers every
// send the load generator makes, over a handful of connections, and the
// figures add up.
func TestHTTPCeilingDrivesTheSameRequests(t *testing.T) {
	src := newSendSource("tok", Senders(4), 0, DefaultText, 4, true)
	c, err := HTTPCeiling(context.Background(), "http/send", "test", LoadConfig{Concurrency: 4, Duration: 300 * time.Millisecond},
		202, gatewayAnswer, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Count == 0 || c.Errors != 0 || c.Value <= 0 || c.Latency == nil || c.Latency.N != uint64(c.Count) {
		t.Fatalf("ceiling %+v: want requests, no errors, a rate and a latency per request", c)
	}
	if acc := src.accepted(); int64(len(acc)) != c.Count || acc[0].id != "msg_01m7yb4j2d3c59g3vj0tbha_15" {
		t.Fatalf("%d recorded messages for %d answers (first %+v)", len(acc), c.Count, acc[0])
	}
}

// recorder is a server that keeps what it was sent and answers by path.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	hdrs   []string
}

func (r *recorder) serve(t *testing.T, answer func(ctx *fasthttp.RequestCtx)) string {
	t.Helper()
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		r.mu.Lock()
		r.bodies = append(r.bodies, append([]byte(nil), ctx.PostBody()...))
		r.hdrs = append(r.hdrs, string(ctx.Method())+" "+string(ctx.Path())+" "+string(ctx.Request.Header.Peek("Authorization"))+
			string(ctx.Request.Header.Peek(SignatureHeader)))
		r.mu.Unlock()
		answer(ctx)
	}}
	go srv.Serve(ln) //nolint:errcheck // ends with the listener
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestRunStopsAtMaxRequestsAndCountsErrors(t *testing.T) {
	var r recorder
	target := r.serve(t, func(ctx *fasthttp.RequestCtx) {
		if bytes.Contains(ctx.PostBody(), []byte(`"from":"+15550001001"`)) {
			ctx.SetStatusCode(503)
			ctx.SetBodyString(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"x"}}`)
			return
		}
		ctx.SetStatusCode(202)
		ctx.SetBodyString(`{"message_id":"m1","status":"queued"}`)
	})
	src := newSendSource("tok", Senders(2), 0, DefaultText, 3, false)
	l, err := Run(context.Background(), LoadConfig{Target: target, Concurrency: 3, MaxRequests: 100}, src)
	if err != nil {
		t.Fatal(err)
	}
	if l.Requests != 50 || l.Messages != 50 || l.ErrorCount() != 50 || l.Errors["http 503 SERVICE_UNAVAILABLE"] != 50 {
		t.Fatalf("%d ok, %d messages, errors %v; want 50, 50 and 50 × http 503 SERVICE_UNAVAILABLE", l.Requests, l.Messages, l.Errors)
	}
	if len(r.bodies) != 100 {
		t.Fatalf("server got %d requests, want 100", len(r.bodies))
	}
	if !strings.HasPrefix(r.hdrs[0], "POST /api/v1/whatsapp/messages/send Bearer tok") {
		t.Fatalf("request line %q", r.hdrs[0])
	}
	seen := map[string]bool{}
	for _, b := range r.bodies {
		var v struct {
			GuestPhone  string                `json:"guest_phone"`
			MessageType string                `json:"message_type"`
			Content     struct{ Text string } `json:"content"`
			From        string                `json:"from"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		if len(v.GuestPhone) != 13 || !strings.HasPrefix(v.GuestPhone, "+447") || v.MessageType != "text" || v.Content.Text != DefaultText {
			t.Fatalf("body %s is not the seed's send to a +447 guest", b)
		}
		if seen[v.GuestPhone] {
			t.Fatalf("guest %s twice", v.GuestPhone)
		}
		seen[v.GuestPhone] = true
	}
}

func TestRunPacesAtTheRate(t *testing.T) {
	var r recorder
	target := r.serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(202)
		ctx.SetBodyString(`{"message_id":"m1"}`)
	})
	src := newSendSource("tok", Senders(1), 0, "hi", 8, false)
	start := time.Now()
	l, err := Run(context.Background(), LoadConfig{Target: target, Concurrency: 8, MaxRequests: 40, Rate: 200}, src)
	if err != nil {
		t.Fatal(err)
	}
	// 40 requests at 200/s: the last goes out at 195 ms.
	if el := time.Since(start); el < 190*time.Millisecond || l.Requests != 40 {
		t.Fatalf("%d requests in %v; want 40 in at least 195 ms", l.Requests, el)
	}
}

func TestWebhookSourceSignsAndStopsWhenDry(t *testing.T) {
	var r recorder
	target := r.serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("EVENT_RECEIVED") })
	bodies := [][]byte{[]byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":3}`)}
	sigs := []string{"sha256=1", "sha256=2", "sha256=3"}
	src := newWebhookSource(bodies, sigs, []int{1, 50, 2}, false)
	l, err := Run(context.Background(), LoadConfig{Target: target, Concurrency: 2, Duration: 5 * time.Second}, src)
	if err != nil {
		t.Fatal(err)
	}
	if l.Requests != 3 || l.Messages != 53 || l.Elapsed >= 5*time.Second {
		t.Fatalf("%d requests, %d statuses in %v; want 3 and 53, ended by the source", l.Requests, l.Messages, l.Elapsed)
	}
	for i := range bodies {
		if !src.posted[i].Load() {
			t.Errorf("body %d not marked posted", i)
		}
	}
	if len(r.hdrs) != 3 || !strings.HasPrefix(r.hdrs[0], "POST /webhooks/meta sha256=") {
		t.Fatalf("requests %q", r.hdrs)
	}
}

func TestBulkSourceBuildsTheBatchContract(t *testing.T) {
	src := newBulkSource("tok", Senders(16), 7, 1000, DefaultText, 1)
	var req fasthttp.Request
	if !src.Build(0, 5, &req) {
		t.Fatal("no request")
	}
	var v struct {
		Messages []struct{ Phone, Content string } `json:"messages"`
		From     string                            `json:"from"`
	}
	if err := json.Unmarshal(req.Body(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Messages) != 1000 || v.From != "+15550001005" || string(req.URI().Path()) != pathBatchSend {
		t.Fatalf("%d messages from %s to %s", len(v.Messages), v.From, req.URI().Path())
	}
	if v.Messages[0].Phone != "+447000005007" || v.Messages[999].Phone != "+447000006006" || v.Messages[0].Content != DefaultText {
		t.Fatalf("messages %+v … %+v", v.Messages[0], v.Messages[999])
	}
	n, err := src.Done(0, 5, 202, []byte(`{"batch_id":"b_1","status":"queued","accepted":1000,"estimated_completion":"2026-11-21T08:00:00Z"}`))
	if err != nil || n != 1000 || src.accepted()[0] != (batchSent{"b_1", 1000}) {
		t.Fatalf("answer read as %d, %v, %+v", n, err, src.accepted())
	}
	if _, err := src.Done(0, 6, 202, []byte(`{"status":"queued"}`)); err == nil {
		t.Fatal("an answer without batch_id passed")
	}
}

func TestJSONPeek(t *testing.T) {
	body := []byte(`{"error":{"code" : "RATE_LIMIT_EXCEEDED","message":"a \"code\": x"},"accepted": 1000,"neg":-3, "batch_id":"b\"1"}`)
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(jsonStringField(body, "code"), "RATE_LIMIT_EXCEEDED")
	f(jsonStringField(body, "batch_id"), `b\"1`)
	f(jsonStringField(body, "missing"), "")
	f(jsonStringField(body, "accepted"), "")
	if n, ok := jsonIntField(body, "accepted"); !ok || n != 1000 {
		t.Errorf("accepted = %d, %v", n, ok)
	}
	if n, ok := jsonIntField(body, "neg"); !ok || n != -3 {
		t.Errorf("neg = %d, %v", n, ok)
	}
	if _, ok := jsonIntField(body, "code"); ok {
		t.Error("a string read as a number")
	}
	if err := statusError(429, body); err.Error() != "http 429 RATE_LIMIT_EXCEEDED" {
		t.Errorf("status error %q", err)
	}
	if err := statusError(502, []byte("bad gateway")); err.Error() != "http 502" {
		t.Errorf("status error %q", err)
	}
}

func TestMetricsValue(t *testing.T) {
	m, err := ParseMetrics([]byte(`# HELP wagate_inbound_statuses_total x
# TYPE wagate_inbound_statuses_total counter
wagate_inbound_statuses_total{result="new"} 40
wagate_inbound_statuses_total{result="duplicate"} 2
# TYPE wagate_queue_depth gauge
wagate_queue_depth{lane="tx"} 700
wagate_queue_depth{lane="bulk"} 300
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345e+08
# TYPE wagate_http_request_duration_seconds histogram
wagate_http_request_duration_seconds_bucket{route="send",le="+Inf"} 9
wagate_http_request_duration_seconds_sum{route="send"} 0.5
wagate_http_request_duration_seconds_count{route="send"} 9
`))
	if err != nil {
		t.Fatal(err)
	}
	f := func(got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	f(m.Value("wagate_inbound_statuses_total", "result", "new"), 40)
	f(m.Value("wagate_inbound_statuses_total"), 42)
	f(m.Value("wagate_queue_depth"), 1000)
	f(m.Value("wagate_queue_depth", "lane", "bulk"), 300)
	f(m.Value("process_resident_memory_bytes"), 1.2345e8)
	f(m.Value("wagate_http_request_duration_seconds", "route", "send"), 9)
	f(m.Value("nothing"), 0)
	if _, err := ParseMetrics([]byte("not metrics {")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestProgressLine(t *testing.T) {
	got := progressLine("single", 15*time.Second, 30*time.Second, 123456, 0, 123456, 3, 8230.4)
	want := "single                 [############------------]  50%   15.0s  123 456 req  8 230/s  err 3"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	got = progressLine("bulk", time.Second, 0, 50, 200, 50000, 0, 50)
	if !strings.Contains(got, "[######------------------]  25%") || !strings.Contains(got, "50 000 msg") {
		t.Errorf("count-driven line %q", got)
	}
	got = progressLine("wait", time.Second, 0, 7, 0, 7, 0, 7)
	if strings.Contains(got, "[") {
		t.Errorf("a line without duration or total has a bar: %q", got)
	}
}

func TestProgressWritesLinesOffTerminal(t *testing.T) {
	var buf syncbuf.Buffer
	p := NewProgress(&buf, false)
	var live liveCounts
	live.requests.Store(10)
	p.Start("run", time.Second, 0, &live)
	p.Stop()
	p.Note("phase %d", 2)
	out := buf.String()
	if strings.Contains(out, "\r") || !strings.Contains(out, "run ") || !strings.HasSuffix(out, "  · phase 2\n") {
		t.Errorf("progress off a terminal wrote %q", out)
	}
}

func TestSlowestWindow(t *testing.T) {
	var ts []int64
	// 100/s for 30 s, but only 50/s from 10 s to 20 s.
	for ms := int64(0); ms < 30_000; ms += 10 {
		if ms >= 10_000 && ms < 20_000 && ms%20 != 0 {
			continue
		}
		ts = append(ts, ms)
	}
	if got := slowestWindow(ts, 10_000, 1_000); got != 50 {
		t.Errorf("slowest 10 s window %v/s, want 50", got)
	}
	if got := slowestWindow(ts[:10], 10_000, 1_000); got != 0 {
		t.Errorf("a span shorter than the window gives %v, want 0", got)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mod func(c *Config), wantErr string) {
		t.Helper()
		c := Config{Target: "http://127.0.0.1:18080"}
		mod(&c)
		c.setDefaults()
		err := c.Validate()
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("valid config refused: %v", err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("got %v, want an error about %q", err, wantErr)
		}
	}
	f(func(c *Config) {}, "")
	f(func(c *Config) { c.Target = "127.0.0.1:18080" }, "-target")
	f(func(c *Config) { c.Sim = "ftp://x" }, "-sim")
	f(func(c *Config) { c.Ops = "127.0.0.1:18060" }, "-ops")
	f(func(c *Config) { c.BulkSize = 10_001 }, "bulk size")
	f(func(c *Config) { c.WebhookBatch = 5000 }, "webhook batch")
	f(func(c *Config) { c.ClickHouse.Database = "wagate; DROP" }, "clickhouse database")
	f(func(c *Config) { c.E2ERate = -1 }, "negative")
	if _, err := NewSuite(Config{Target: "http://127.0.0.1:18080"}, "", ""); err != nil {
		t.Errorf("NewSuite: %v", err)
	}
	s, _ := NewSuite(Config{Target: "http://127.0.0.1:1"}, "", "")
	if err := s.Run(context.Background(), []string{"singel"}); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("unknown scenario: %v", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
