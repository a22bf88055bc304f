package bench

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramIsExactForSmallValues(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v))
	}
	f := func(q float64, want time.Duration) {
		t.Helper()
		if got := h.Quantile(q); got != want {
			t.Errorf("quantile %v = %v, want %v", q, got, want)
		}
	}
	f(0.5, 50)
	f(0.95, 95)
	f(0.99, 99)
	f(1, 100)
	f(0, 1)
	f(0.001, 1)
	if h.Count() != 100 || h.Min() != 1 || h.Max() != 100 || h.Mean() != 50 {
		t.Errorf("count %d min %v max %v mean %v, want 100 1 100 50", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

// TestHistogramQuantilesWithinAPercent: over a wide range, a quantile is
// within 1% of the exact nearest-rank value.
func TestHistogramQuantilesWithinAPercent(t *testing.T) {
	f := func(name string, vals []time.Duration, exact func(q float64) time.Duration) {
		t.Helper()
		var h Histogram
		for _, v := range vals {
			h.Record(v)
		}
		for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
			want, got := exact(q), h.Quantile(q)
			if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
				t.Errorf("%s: quantile %v = %v, want %v ±1%% (off by %.2f%%)", name, q, got, want, rel*100)
			}
		}
	}
	// 1 µs … 1 s in 1 µs steps: the nearest-rank quantile q is q×n µs.
	var uniform []time.Duration
	for v := 1; v <= 1_000_000; v++ {
		uniform = append(uniform, time.Duration(v)*time.Microsecond)
	}
	rand.Shuffle(len(uniform), func(i, j int) { uniform[i], uniform[j] = uniform[j], uniform[i] })
	f("uniform", uniform, func(q float64) time.Duration {
		return time.Duration(math.Ceil(q*1_000_000)) * time.Microsecond
	})
	// A long tail: 99% at 2 ms, 1% at 250 ms.
	var tail []time.Duration
	for i := 0; i < 10_000; i++ {
		v := 2 * time.Millisecond
		if i%100 == 0 {
			v = 250 * time.Millisecond
		}
		tail = append(tail, v)
	}
	f("tail", tail, func(q float64) time.Duration {
		if q > 0.99 {
			return 250 * time.Millisecond
		}
		return 2 * time.Millisecond
	})
}

func TestHistogramMergeIsRecordingBoth(t *testing.T) {
	var a, b, all Histogram
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		v := time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
		all.Record(v)
	}
	a.Merge(&b)
	if a.counts != all.counts || a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Fatal("merged histogram differs from one that recorded everything")
	}
	var empty Histogram
	a.Merge(&empty)
	if a.Count() != all.Count() || a.Min() != all.Min() {
		t.Fatal("merging an empty histogram changed it")
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("an empty histogram reports something")
	}
	h.Record(-time.Second)
	if h.Quantile(0.5) != 0 || h.Count() != 1 {
		t.Fatalf("a negative duration: quantile %v count %d, want 0 and 1", h.Quantile(0.5), h.Count())
	}
}

// TestHistogramBucketsCoverEveryValue: each value falls in the bucket its
// index names, and the bucket is at most 1/64 of its low end wide.
func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100_000; i++ {
		v := r.Uint64() >> r.IntN(64)
		idx := histIndex(v)
		if idx < 0 || idx >= histBuckets {
			t.Fatalf("value %d: bucket %d out of range", v, idx)
		}
		low, width := histBounds(idx)
		if v < low || v-low >= width {
			t.Fatalf("value %d in bucket %d = [%d, %d+%d)", v, idx, low, low, width)
		}
		if low >= histSubCount && width*64 > low {
			t.Fatalf("bucket %d [%d, +%d) is wider than 1/64 of its low end", idx, low, width)
		}
	}
}
