package sim

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
)

// BenchmarkSendHandler is the send handler alone: validation, the
// throughput bucket, recording and the answer, without the network.
func BenchmarkSendHandler(b *testing.B) {
	s, err := New(Config{Numbers: testNumbers, AccessToken: testToken}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v23.0/" + testPhoneID + "/messages")
	ctx.Request.Header.Set("Authorization", "Bearer "+testToken)
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBodyString(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key.","preview_url":false}}`)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkSendLoopback is sends through provider/meta's client over
// loopback, each followed by its three status webhooks to a receiver that
// only answers 200: the simulator's whole load per message.
func BenchmarkSendLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	recv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {}}
	go recv.Serve(ln)
	defer func() { _ = recv.Shutdown(); _ = ln.Close() }()

	s := startSim(b, Config{WebhookURL: "http://" + ln.Addr().String() + "/webhooks/meta",
		StatusDelays: Delays{Sent: time.Millisecond, Delivered: 2 * time.Millisecond, Read: 3 * time.Millisecond}})
	c, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: testToken, PhoneNumberIDs: map[string]string{"+15550001000": testPhoneID}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		m := message.Message{Sender: "+15550001000", Recipient: "+4915112345678", Type: message.TypeText, Content: []byte(`{"body":"hi"}`)}
		for pb.Next() {
			if _, err := c.Send(context.Background(), &m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	want := 3 * s.Stats().Accepted
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().StatusesPosted < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.StatusesPosted != want {
		b.Fatalf("%d of %d statuses posted", st.StatusesPosted, want)
	}
	// Until the last status is posted, so that webhooks cannot lag behind.
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(s.Stats().Accepted)/elapsed, "sends/s")
	b.ReportMetric(float64(want)/elapsed, "statuses/s")
}

// TestShutdownLeavesNoGoroutines checks that after Shutdown no goroutine of
// the simulator is left, with webhooks in flight and scheduled.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	r := newReceiver(t)
	s, err := New(Config{Addr: "127.0.0.1:0", Numbers: testNumbers, AccessToken: testToken, AppSecret: testSecret, WebhookURL: r.srv.URL,
		StatusDelays: Delays{Sent: time.Millisecond, Delivered: 50 * time.Millisecond, Read: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	acceptN(t, s, 5)
	testwait.For(t, 5*time.Second, "some statuses", func() bool { return s.Stats().StatusesPosted >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown returns once every goroutine of the simulator is done (its
	// WaitGroup): one may still be on its way out, past its last deferred
	// call, for as long as the scheduler takes to run it once more. None
	// may stay.
	buf := make([]byte, 1<<20)
	var stacks string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "provider/sim.(*Server)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulator goroutines left 5 s after Shutdown:\n%s", stacks)
		}
	}
	st := s.Stats()
	if st.StatusesPosted+st.Abandoned != st.StatusesScheduled {
		t.Fatalf("posted %d + abandoned %d != scheduled %d", st.StatusesPosted, st.Abandoned, st.StatusesScheduled)
	}
}
