package ingest

import (
	"context"
	"github.com/valyala/fastjson"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// benchSendBody is the body wabench's single scenario sends.
var benchSendBody = []byte(`{"guest_phone":"+447100000001","message_type":"text","content":{"text":"Your room 412 is ready. Reply CHECKIN to get your digital key."},"from":"+15550001001"}`)

// TestAppendTextContentDoesNotAllocate: the handler lays Meta's text object
// out in its pooled sendState's buffer, so once that has grown it costs no
// allocation per message.
func TestAppendTextContentDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 512)
	text := "Your room 412 is ready. Reply \"CHECKIN\" to get your digital key.\n\u2028é"
	if n := testing.AllocsPerRun(1000, func() {
		buf = appendTextContent(buf[:0], text, true)
	}); n != 0 {
		t.Errorf("appendTextContent allocates %v times per message, want 0", n)
	}
}

// TestFingerprintDoesNotAllocate: telling a reused Idempotency-Key's
// request apart costs no allocation.
func TestFingerprintDoesNotAllocate(t *testing.T) {
	a := redis.EnqueueArgs{TenantID: "demo-hotel", Sender: "+15550001001", Recipient: "+447100000001",
		Type: "text", Content: []byte(`{"body":"Your room 412 is ready."}`)}
	if n := testing.AllocsPerRun(1000, func() { _ = fingerprint(&a) }); n != 0 {
		t.Errorf("fingerprint allocates %v times, want 0", n)
	}
}

func BenchmarkAppendTextContent(b *testing.B) {
	buf := make([]byte, 0, 512)
	text := "Your room 412 is ready. Reply CHECKIN to get your digital key."
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendTextContent(buf[:0], text, false)
	}
}

// BenchmarkDecodeSend is decoding and validating the seed's send into a
// pooled request. It allocates: encoding/json's Decoder (needed for
// DisallowUnknownFields) and the request's strings, which the handler
// hands on to Enqueue.
func BenchmarkDecodeSend(b *testing.B) {
	var r sendRequest
	var p fastjson.Parser
	b.SetBytes(int64(len(benchSendBody)))
	b.ReportAllocs()
	for b.Loop() {
		if e := decodeSend(&p, benchSendBody, &r); e != nil {
			b.Fatal(e.Message)
		}
	}
}

// BenchmarkDecodeSendInvalid is a refused body: the error answer's cost.
func BenchmarkDecodeSendInvalid(b *testing.B) {
	body := []byte(`{"guest_phone":"1234567890","message_type":"text","content":{"text":"x"}}`)
	var r sendRequest
	var p fastjson.Parser
	b.ReportAllocs()
	for b.Loop() {
		if e := decodeSend(&p, body, &r); e == nil {
			b.Fatal("accepted a number without +")
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	a := redis.EnqueueArgs{TenantID: "demo-hotel", Sender: "+15550001001", Recipient: "+447100000001",
		Type: "text", Content: []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key."}`)}
	b.ReportAllocs()
	for b.Loop() {
		_ = fingerprint(&a)
	}
}

// benchServer is the API server over the test Redis (a prefix of its own),
// without a listener: requests go to its handler directly, so what is
// measured is the gateway's work per request, network excluded.
func benchServer(b testing.TB) fasthttp.RequestHandler {
	b.Helper()
	rdb := redistest.Client(b)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(b, rdb)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	ts := NewTokens()
	senders := make([]string, 16)
	for i := range senders {
		senders[i] = "+1555000" + strconv.Itoa(1000+i)
	}
	must(b, ts.Add(staffToken, Principal{Tenant: &Tenant{ID: "demo-hotel", Senders: senders}, Role: RoleStaff}))
	// The benchmark's guest has written: its texts are answers in the window.
	_, err = store.RecordInbound(context.Background(), &redis.InboundArgs{TenantID: "demo-hotel", Sender: senders[1],
		Guest: "+447100000001", ProviderMessageID: "wamid.bench", AtMS: time.Now().UnixMilli(), NotifyKind: "inbound_message"})
	must(b, err)
	reg := prometheus.NewRegistry()
	srv, err := NewServer(Config{Addr: "127.0.0.1:0", MetaAppSecret: appSecret}, store, ts, reg, reg, slog.New(slog.DiscardHandler))
	must(b, err)
	return srv.Handler()
}

// runHandler serves the same request over and over from parallel callers
// and checks each answer's status.
func runHandler(b *testing.B, h fasthttp.RequestHandler, path string, hdr map[string]string, body []byte, want int) {
	var failed atomic.Bool
	b.SetParallelism(32) // 64 callers on 2 cores: the single scenario's connections
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI(path)
		req.Header.SetContentType("application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		for pb.Next() {
			ctx.Response.Reset()
			h(&ctx)
			if ctx.Response.StatusCode() != want && !failed.Swap(true) {
				b.Errorf("answer %d %s, want %d", ctx.Response.StatusCode(), ctx.Response.Body(), want)
			}
		}
	})
}

// BenchmarkHandleSend is a whole send through the API's handler: auth,
// decoding, validation, backpressure and the enqueue into the real Redis
// (shared pipelines), without the socket.
func BenchmarkHandleSend(b *testing.B) {
	h := benchServer(b)
	runHandler(b, h, sendPath, map[string]string{"Authorization": "Bearer " + staffToken}, benchSendBody, fasthttp.StatusAccepted)
}

// BenchmarkHandleMetaWebhook is one signed status webhook through the
// receiver: signature, JSON check and the XADD into Redis.
func BenchmarkHandleMetaWebhook(b *testing.B) {
	h := benchServer(b)
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"200000000000001","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001000","phone_number_id":"100000000000001"},"statuses":[{"id":"wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","status":"delivered","timestamp":"1763708400","recipient_id":"447100000001","conversation":{"id":"c1","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}}]},"field":"messages"}]}]}`)
	sig := string(meta.AppendSignature(nil, body, []byte(appSecret)))
	runHandler(b, h, "/webhooks/meta", map[string]string{meta.SignatureHeader: sig}, body, fasthttp.StatusOK)
}
