package redis

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/redisinfo"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis/redistest"
)

// benchStore is a store over the test Redis with a prefix of its own,
// whose keys are deleted when b ends.
func benchStore(b *testing.B) *Store {
	b.Helper()
	rdb := redistest.Client(b)
	s, err := New(context.Background(), rdb, Config{Prefix: redistest.Prefix(b, rdb)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// benchSenders are the 16 numbers the benchmarks spread messages over.
var benchSenders = func() (s [16]string) {
	for i := range s {
		s[i] = "+1555000" + strconv.Itoa(1000+i)
	}
	return s
}()

// benchArgs is the seed's text send from one of 16 numbers to a guest of
// its own, as the API builds it.
func benchArgs(i uint64) EnqueueArgs {
	return EnqueueArgs{
		TenantID: "demo-hotel", Sender: benchSenders[i%16],
		Recipient: "+447" + strconv.FormatUint(100000000+i, 10), Type: message.TypeText,
		Content: []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key."}`),
		Lane:    message.LaneTx, Fingerprint: i,
	}
}

// BenchmarkEnqueueParallel is the API's enqueue under concurrent callers:
// each call runs enqueue.lua, and the batcher shares one pipeline among
// whatever callers are waiting. ns/op is per message over all callers
// (b.SetParallelism(32): 64 callers on 2 cores, as the single scenario
// has 64 connections); allocs/op are the store's share of a send.
func BenchmarkEnqueueParallel(b *testing.B) {
	// Each message to a guest of its own, as wabench's: a new
	// conversation each, the costliest send.
	benchEnqueue(b, benchArgs)
}

// BenchmarkEnqueueOneGuest is BenchmarkEnqueueParallel with every send to
// one guest of one number, as `wrk` with one request body sends them: the
// guest and its conversation are found, not made.
func BenchmarkEnqueueOneGuest(b *testing.B) {
	benchEnqueue(b, func(uint64) EnqueueArgs { return benchArgs(0) })
}

// benchEnqueue enqueues args(n) for the n-th op from 64 callers.
func benchEnqueue(b *testing.B, args func(n uint64) EnqueueArgs) {
	s := benchStore(b)
	ctx := context.Background()
	var seq atomic.Uint64
	b.SetParallelism(32)
	b.ReportAllocs()
	defer reportRedisCPU(b, s)()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := args(seq.Add(1))
			if _, err := s.Enqueue(ctx, &a); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// reportRedisCPU reports, when the returned func runs at the end of a
// benchmark, what Redis spent per op (INFO commandstats deltas): in
// function calls (redis-fcall-µs/op, the commands they ran included) and
// in everything (redis-µs/op), after filing what the ops left to file so
// that the filer's share counts. Other users of the same Redis meanwhile
// count too: run it alone.
func reportRedisCPU(b *testing.B, s *Store) func() {
	ctx := context.Background()
	before, err := redistest.CommandStats(ctx, s.rdb)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := redisCPUSeconds(ctx, s.rdb)
	return func() {
		b.StopTimer()
		all := make([]int, s.cfg.Shards)
		for i := range all {
			all[i] = i
		}
		if err := s.FileNow(ctx, all); err != nil {
			b.Fatal(err)
		}
		after, err := redistest.CommandStats(ctx, s.rdb)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(after["fcall"].Usec-before["fcall"].Usec)/float64(b.N), "redis-fcall-µs/op")
		b.ReportMetric(float64(redisinfo.Usec(before, after))/float64(b.N), "redis-µs/op")
		b.ReportMetric((redisCPUSeconds(ctx, s.rdb)-cpu0)*1e6/float64(b.N), "redis-cpu-µs/op")
	}
}

// redisCPUSeconds is Redis's own CPU time (INFO cpu, user and system).
func redisCPUSeconds(ctx context.Context, rdb goredis.UniversalClient) float64 {
	info, _ := rdb.Info(ctx, "cpu").Result()
	return redisinfo.CPUSeconds(info)
}

// BenchmarkEnqueueSerial is one caller at a time: a round trip per
// message, the floor the batcher's sharing improves on.
func BenchmarkEnqueueSerial(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	a := benchArgs(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a.Fingerprint = uint64(i)
		if _, err := s.Enqueue(ctx, &a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendInboundParallel is the webhook receiver's write: the raw
// body XADDed through the same batcher.
func BenchmarkAppendInboundParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"200000000000001","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001000","phone_number_id":"100000000000001"},"statuses":[{"id":"wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","status":"delivered","timestamp":"1763708400","recipient_id":"447100000001","conversation":{"id":"c1","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}}]},"field":"messages"}]}]}`)
	b.SetParallelism(32)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.AppendInbound(ctx, "meta", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkApplyStatuses is the inbound processor's work for statuses
// (delivered, then read) of accepted messages over 16 numbers, in reads
// of 64 as under load: ns/op and the Redis figures are per status.
func BenchmarkApplyStatuses(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	n := b.N/2 + 1
	ids := make([]string, n)
	for i := range ids {
		a := benchArgs(uint64(i))
		r, err := s.Enqueue(ctx, &a)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = r.ID
	}
	b.ReportAllocs()
	done := reportRedisCPU(b, s)
	b.ResetTimer()
	batch := make([]StatusApply, 0, 64)
	flush := func() {
		if _, err := s.ApplyStatuses(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 0; i < b.N; i++ {
		st := message.StatusDelivered
		if i >= n {
			st = message.StatusRead
		}
		batch = append(batch, StatusApply{MessageID: ids[i%n], Result: Result{Status: st, AtMS: 1_700_000_000_000, Provider: "meta",
			ProviderMessageID: "wamid." + ids[i%n], PricingCategory: "utility", Billable: "1", PricingModel: "PMP", PricingType: "regular"}})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.StopTimer()
	done()
}
