package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

// benchEvents is a batch of realistic events for the append benchmarks.
func benchEvents(n int) []message.Event {
	evs := newEvents(n, "tenant-bench", message.StatusDelivered, time.Now().UnixMilli())
	for i := range evs {
		evs[i].StreamID = "1700000000000-0"
		evs[i].ProviderMessageID = "wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
		evs[i].PricingCategory = "utility"
		evs[i].Billable = true
		evs[i].ConversationID = "conv-123"
	}
	return evs
}

// TestEventRowsAddDoesNotAllocate: once its slices have grown to a batch, the
// loader lays out the next batch's events without allocating.
func TestEventRowsAddDoesNotAllocate(t *testing.T) {
	evs := benchEvents(256)
	var r eventRows
	fill := func() {
		r.reset()
		for i := range evs {
			r.add(&evs[i], 1)
		}
	}
	fill()
	if allocs := testing.AllocsPerRun(100, fill); allocs != 0 {
		t.Errorf("laying out a batch of %d events allocates %v times, want 0", len(evs), allocs)
	}
}

// BenchmarkEventAppend measures the loader's Event→batch path per event:
// laying the event out in eventRows and handing the columns to a
// clickhouse-go batch (prepared against the test server, never sent).
func BenchmarkEventAppend(b *testing.B) {
	conn := openTest(b)
	db := newDB(b, conn)
	const batch = 10_000
	evs := benchEvents(batch)
	var r eventRows
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		b.StopTimer()
		bt, err := conn.PrepareBatch(ctx, insertEventsSQL(db))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r.reset()
		for i := range n {
			r.add(&evs[i], 1)
		}
		if err := r.appendTo(bt); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bt.Abort()
		b.StartTimer()
	}
}

// BenchmarkEventAppendPerRow is the row-at-a-time alternative, batch.Append
// with one value per column, which boxes every value: kept to show why the
// loader appends whole columns instead.
func BenchmarkEventAppendPerRow(b *testing.B) {
	conn := openTest(b)
	db := newDB(b, conn)
	const batch = 10_000
	evs := benchEvents(batch)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		b.StopTimer()
		bt, err := conn.PrepareBatch(ctx, insertEventsSQL(db))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := range n {
			ev := &evs[i]
			at := time.UnixMilli(ev.AtMS).UTC()
			var billable uint8
			if ev.Billable {
				billable = 1
			}
			if err := bt.Append(at, at, uint64(ev.AtMS), ev.MessageID, ev.TenantID, ev.Sender, ev.Recipient,
				string(ev.Status), ev.Channel, ev.Provider, ev.ProviderMessageID, string(ev.Type), string(ev.Lane),
				uint16(ev.Attempt), int32(ev.ErrorCode), ev.ErrorTitle, ev.PricingCategory, billable,
				ev.ConversationID, ev.StaffMemberID, ev.ProviderConversationID, uint16(ev.Shard), ev.StreamID, uint64(1),
				ev.PricingModel, ev.PricingType, ev.Campaign, ev.TemplateName); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		bt.Abort()
		b.StartTimer()
	}
}
