package clickhouse

import (
	"testing"
	"time"
)

// BenchmarkEventRowsAdd is laying one event out in the loader's reused
// columns, without a ClickHouse batch (BenchmarkEventAppend adds handing
// the columns to clickhouse-go): the per-event cost of the loader's own
// encoding, which TestEventRowsAddDoesNotAllocate keeps free of
// allocations once the columns have grown to a batch.
func BenchmarkEventRowsAdd(b *testing.B) {
	const batch = 10_000
	evs := benchEvents(batch)
	var r eventRows
	insertedMS := time.Now().UnixMilli()
	for i := range evs {
		r.add(&evs[i], insertedMS)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%batch == 0 {
			r.reset()
		}
		r.add(&evs[i%batch], insertedMS)
	}
}
