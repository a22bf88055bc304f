package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	goredis "github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// bareServer is the HTTP ceiling's server: it reads each request and
// answers status with answer, nothing else.
func bareServer(status int, answer []byte) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			_ = ctx.PostBody()
			ctx.SetStatusCode(status)
			ctx.SetContentType("application/json")
			ctx.SetBody(answer)
		},
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    8 << 20,
	}
}

// ServeBare serves the HTTP ceiling's bare handler on ln (answering a send
// as the gateway would) until ctx ends: run in a process of its own, it
// shows what the ceiling is when server and load generator do not share
// a process, as the gateway and wabench do not.
func ServeBare(ctx context.Context, ln net.Listener) error {
	srv := bareServer(202, gatewayAnswer)
	go func() {
		<-ctx.Done()
		srv.Shutdown()
	}()
	return srv.Serve(ln)
}

// HTTPCeiling measures the HTTP ceiling of this machine for src's
// requests: a bare fasthttp handler on a free loopback port reads each
// request and answers status with answer, and the same load generator
// drives it with the same requests, connections and duration as the
// gateway gets.
func HTTPCeiling(ctx context.Context, name, what string, cfg LoadConfig, status int, answer []byte, src Source) (Ceiling, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Ceiling{}, fmt.Errorf("ceiling %s: %w", name, err)
	}
	srv := bareServer(status, answer)
	go srv.Serve(ln) //nolint:errcheck // Serve returns when Shutdown closes ln
	defer srv.Shutdown()
	cfg.Target = "http://" + ln.Addr().String()
	cfg.Name = "ceiling " + name
	l, err := Run(ctx, cfg, src)
	if err != nil {
		return Ceiling{}, fmt.Errorf("ceiling %s: %w", name, err)
	}
	c := Ceiling{Name: name, What: what, Value: l.RPS(), Unit: "req/s", Count: l.Requests, Errors: l.ErrorCount(),
		Elapsed: l.Elapsed.Seconds(), Latency: LatencyOf(&l.Latency)}
	if l.Messages != l.Requests {
		c.PerMessage = l.MPS()
	}
	return c, nil
}

// RedisCeilingConfig is the Redis ceiling's run.
type RedisCeilingConfig struct {
	// URL of the Redis the gateway uses.
	URL string
	// Key is the scratch stream, deleted before and after.
	Key string
	// Duration of the run (10 s).
	Duration time.Duration
	// Pipeline is the XADDs per round trip (1 000: a batch-send's size).
	Pipeline int
	// Writers are the pipelines in flight at once (4).
	Writers int
	// Text is each message's content.
	Text string
}

// RedisCeiling measures pipelined XADD of the payload a message of a
// batch-send carries (the guest's number and the content), in messages per
// second, into a scratch stream that it deletes afterwards.
func RedisCeiling(ctx context.Context, cfg RedisCeilingConfig, progress *Progress) (Ceiling, error) {
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	cfg.Pipeline = max(cfg.Pipeline, 1)
	cfg.Writers = max(cfg.Writers, 1)
	opt, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return Ceiling{}, fmt.Errorf("redis ceiling: %w", err)
	}
	opt.PoolSize = cfg.Writers + 2
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Del(ctx, cfg.Key).Err(); err != nil {
		return Ceiling{}, fmt.Errorf("redis ceiling: %w", err)
	}
	defer rdb.Unlink(context.Background(), cfg.Key)

	content := string(message.AppendJSONString([]byte(`{"body":`), cfg.Text)) + "}"
	var live liveCounts
	var hists = make([]Histogram, cfg.Writers)
	var errs atomic.Int64
	var seq atomic.Uint64
	if progress != nil {
		progress.Start("ceiling redis/xadd", cfg.Duration, 0, &live)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := make([]goredis.XAddArgs, cfg.Pipeline)
			phone := make([]byte, 0, 16)
			for rctx.Err() == nil {
				first := seq.Add(uint64(cfg.Pipeline)) - uint64(cfg.Pipeline)
				p := rdb.Pipeline()
				for i := range args {
					phone = appendRecipient(phone[:0], 0, first+uint64(i))
					args[i] = goredis.XAddArgs{Stream: cfg.Key, Values: []any{"r", string(phone), "b", content}}
					p.XAdd(ctx, &args[i])
				}
				t0 := time.Now()
				_, err := p.Exec(ctx)
				hists[w].Record(time.Since(t0))
				if err != nil {
					errs.Add(1)
					live.errors.Add(1)
					continue
				}
				live.requests.Add(int64(cfg.Pipeline))
				live.messages.Add(int64(cfg.Pipeline))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if progress != nil {
		progress.Stop()
	}
	var h Histogram
	for i := range hists {
		h.Merge(&hists[i])
	}
	n := live.messages.Load()
	return Ceiling{Name: "redis/xadd", Unit: "msg/s", Value: perSecond(n, elapsed), Count: n, Errors: errs.Load(),
		Elapsed: elapsed.Seconds(), Latency: LatencyOf(&h),
		What: fmt.Sprintf("go-redis pipelines of %d XADD (guest number + content) from %d writers into a scratch stream; latency per pipeline",
			cfg.Pipeline, cfg.Writers)}, nil
}

// ClickHouseConfig says where ClickHouse is.
type ClickHouseConfig struct {
	// Addr is the native protocol's host:port (127.0.0.1:9000).
	Addr string
	// Database holds the gateway's tables (and the scratch table).
	Database string
	Username string
	Password string
}

// OpenClickHouse connects with the native protocol.
func OpenClickHouse(ctx context.Context, cfg ClickHouseConfig) (driver.Conn, error) {
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native,
		Addr:     []string{cfg.Addr},
		Auth:     ch.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		// Each writer of the ceiling and the e2e queries hold one.
		MaxOpenConns: 8,
		DialTimeout:  5 * time.Second,
		ReadTimeout:  60 * time.Second,
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse at %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// eventColumns are message_events' columns (store/clickhouse/schema.sql),
// in the order the ceiling fills them.
var eventColumns = []string{
	"event_date", "event_time", "event_ms",
	"message_id", "tenant_id", "sender", "recipient", "status",
	"channel", "provider", "provider_message_id", "message_type", "lane",
	"attempt", "error_code", "error_title", "pricing_category", "billable",
	"conversation_id", "staff_member_id", "provider_conversation_id",
	"shard", "stream_id", "inserted_ms", "pricing_model", "pricing_type", "campaign_id", "template_name",
}

// eventTableDDL is message_events' definition with another name.
const eventTableDDL = `CREATE TABLE IF NOT EXISTS %s.%s (
    event_date Date, event_time DateTime, event_ms UInt64,
    message_id String, tenant_id String, sender String, recipient String, status String,
    channel String, provider String, provider_message_id String, message_type String, lane String,
    attempt UInt16, error_code Int32, error_title String, pricing_category String, billable UInt8,
    conversation_id String, staff_member_id String, provider_conversation_id String,
    shard UInt16, stream_id String, inserted_ms UInt64, pricing_model String, pricing_type String,
    campaign_id String, template_name String
) ENGINE = ReplacingMergeTree(inserted_ms) PARTITION BY event_date ORDER BY (tenant_id, message_id, status, attempt)`

// lifeStatuses are the rows one delivered and read message leaves in
// message_events.
var lifeStatuses = []string{"queued", "sending", "sent", "delivered", "read"}

// ClickHouseCeilingConfig is the ClickHouse ceiling's run.
type ClickHouseCeilingConfig struct {
	ClickHouseConfig
	// Table is the scratch table, created and dropped.
	Table string
	// Duration of the run (10 s).
	Duration time.Duration
	// BatchRows per INSERT (10 000: the loader's batch).
	BatchRows int
	// Writers are the INSERTs in flight at once (2).
	Writers int
}

// ClickHouseCeiling measures batch inserts of the rows the gateway writes
// (each message's queued, sending, sent, delivered and read rows), with
// an explicit column list and whole columns appended, as the loader does,
// into a scratch copy of message_events that it drops afterwards.
func ClickHouseCeiling(ctx context.Context, conn driver.Conn, cfg ClickHouseCeilingConfig, progress *Progress) (Ceiling, error) {
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.BatchRows == 0 {
		cfg.BatchRows = 10_000
	}
	cfg.Writers = max(cfg.Writers, 1)
	db := cfg.Database
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return Ceiling{}, fmt.Errorf("clickhouse ceiling: %w", err)
	}
	if err := conn.Exec(ctx, fmt.Sprintf(eventTableDDL, db, cfg.Table)); err != nil {
		return Ceiling{}, fmt.Errorf("clickhouse ceiling: %w", err)
	}
	defer conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+db+"."+cfg.Table) //nolint:errcheck // best effort
	insert := "INSERT INTO " + db + "." + cfg.Table + " (" + strings.Join(eventColumns, ", ") + ")"

	var live liveCounts
	var errs atomic.Int64
	var seq atomic.Uint64
	hists := make([]Histogram, cfg.Writers)
	if progress != nil {
		progress.Start("ceiling clickhouse", cfg.Duration, 0, &live)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r eventBatch
			for rctx.Err() == nil {
				r.fill(seq.Add(1)-1, cfg.BatchRows)
				t0 := time.Now()
				err := r.insert(ctx, conn, insert)
				hists[w].Record(time.Since(t0))
				if err != nil {
					errs.Add(1)
					live.errors.Add(1)
					firstErr.CompareAndSwap(nil, err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				live.requests.Add(int64(cfg.BatchRows))
				live.messages.Add(int64(cfg.BatchRows))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if progress != nil {
		progress.Stop()
	}
	n := live.messages.Load()
	if n == 0 {
		if err, _ := firstErr.Load().(error); err != nil {
			return Ceiling{}, fmt.Errorf("clickhouse ceiling: %w", err)
		}
	}
	var h Histogram
	for i := range hists {
		h.Merge(&hists[i])
	}
	rows := perSecond(n, elapsed)
	return Ceiling{Name: "clickhouse/insert", Unit: "rows/s", Value: rows, PerMessage: rows / float64(len(lifeStatuses)),
		Count: n, Errors: errs.Load(), Elapsed: elapsed.Seconds(), Latency: LatencyOf(&h),
		What: fmt.Sprintf("batches of %d message_events rows (%d per message: %s), column-wise with an explicit column list, %d writers, into a scratch copy of the table; latency per INSERT",
			cfg.BatchRows, len(lifeStatuses), strings.Join(lifeStatuses, ", "), cfg.Writers)}, nil
}

// eventBatch is one INSERT's rows laid out by column, reused.
type eventBatch struct {
	date, at                              []time.Time
	ms, ins                               []uint64
	id, tenant, sender, recipient, status []string
	channel, provider, pid, mtype, lane   []string
	errTitle, pricing, conv, staff, pconv []string
	stream, pmodel, ptype, camp, tmpl     []string
	attempt, shard                        []uint16
	errCode                               []int32
	billable                              []uint8
}

// fill lays out batch number b: rows/5 messages, each with its life's
// rows, as the gateway writes them.
func (r *eventBatch) fill(b uint64, rows int) {
	*r = eventBatch{date: r.date[:0], at: r.at[:0], ms: r.ms[:0], ins: r.ins[:0], id: r.id[:0], tenant: r.tenant[:0],
		sender: r.sender[:0], recipient: r.recipient[:0], status: r.status[:0], channel: r.channel[:0],
		provider: r.provider[:0], pid: r.pid[:0], mtype: r.mtype[:0], lane: r.lane[:0], errTitle: r.errTitle[:0],
		pricing: r.pricing[:0], conv: r.conv[:0], staff: r.staff[:0], pconv: r.pconv[:0], stream: r.stream[:0],
		pmodel: r.pmodel[:0], ptype: r.ptype[:0], camp: r.camp[:0], tmpl: r.tmpl[:0],
		attempt: r.attempt[:0], shard: r.shard[:0], errCode: r.errCode[:0], billable: r.billable[:0]}
	now := time.Now()
	nowMS := uint64(now.UnixMilli())
	for i := range rows {
		m := b*uint64(rows) + uint64(i/len(lifeStatuses))
		st := lifeStatuses[i%len(lifeStatuses)]
		at := now.Add(time.Duration(i%len(lifeStatuses)) * 20 * time.Millisecond)
		r.date = append(r.date, at.UTC())
		r.at = append(r.at, at.UTC())
		r.ms = append(r.ms, uint64(at.UnixMilli()))
		r.ins = append(r.ins, nowMS)
		r.id = append(r.id, "msg_01mbench"+strconv.FormatUint(m, 36)+"_"+strconv.Itoa(int(m%16)))
		r.tenant = append(r.tenant, "demo-hotel")
		r.sender = append(r.sender, "+15550001000")
		r.recipient = append(r.recipient, recipientDigits(0, m))
		r.status = append(r.status, st)
		r.channel = append(r.channel, "whatsapp")
		r.provider = append(r.provider, "meta")
		pid, pricing, pconv := "", "", ""
		if st != "queued" && st != "sending" {
			pid = "wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI5QTNDQTVC" + strconv.FormatUint(m, 36)
		}
		if st == "sent" || st == "delivered" {
			pricing, pconv = "utility", "bench-conversation"
		}
		r.pid = append(r.pid, pid)
		r.mtype = append(r.mtype, "text")
		r.lane = append(r.lane, "tx")
		r.errTitle = append(r.errTitle, "")
		r.pricing = append(r.pricing, pricing)
		r.conv = append(r.conv, "")
		r.staff = append(r.staff, "")
		r.pconv = append(r.pconv, pconv)
		pmodel, ptype := "", ""
		if pricing != "" {
			pmodel, ptype = "PMP", "regular"
		}
		r.pmodel = append(r.pmodel, pmodel)
		r.ptype = append(r.ptype, ptype)
		r.camp = append(r.camp, "")
		r.tmpl = append(r.tmpl, "")
		r.stream = append(r.stream, strconv.FormatUint(nowMS, 10)+"-"+strconv.Itoa(i))
		r.attempt = append(r.attempt, 1)
		r.shard = append(r.shard, uint16(m%16))
		r.errCode = append(r.errCode, 0)
		var bill uint8
		if pricing != "" {
			bill = 1
		}
		r.billable = append(r.billable, bill)
	}
}

func (r *eventBatch) insert(ctx context.Context, conn driver.Conn, insert string) error {
	b, err := conn.PrepareBatch(ctx, insert)
	if err != nil {
		return err
	}
	cols := []any{r.date, r.at, r.ms, r.id, r.tenant, r.sender, r.recipient, r.status, r.channel, r.provider, r.pid,
		r.mtype, r.lane, r.attempt, r.errCode, r.errTitle, r.pricing, r.billable, r.conv, r.staff, r.pconv,
		r.shard, r.stream, r.ins, r.pmodel, r.ptype, r.camp, r.tmpl}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			b.Abort()
			return fmt.Errorf("column %s: %w", eventColumns[i], err)
		}
	}
	return b.Send()
}
