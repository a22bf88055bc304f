package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram buckets are log-linear: values below 2^histSubBits
// nanoseconds have a bucket each, and every power of two above is split
// into 2^(histSubBits-1) buckets, so a bucket is at most 1/64 of its lower
// bound wide and a quantile read at its middle is within 0.8% of the
// truth, whatever the range (HDR histogram's layout).
const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits // exact buckets 0..127
	histHalf     = histSubCount / 2 // buckets per power of two above
	histBuckets  = (64 - histSubBits + 2) * histHalf
)

// Histogram records durations for quantiles at a fixed memory cost. The
// zero value is empty and ready; it is not safe for concurrent use (the
// load generator keeps one per worker and merges them).
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // nanoseconds
	min, max int64
}

func histIndex(v uint64) int {
	if v < histSubCount {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits
	return shift*histHalf + int(v>>shift)
}

// histBounds is bucket i's range [low, low+width).
func histBounds(i int) (low, width uint64) {
	if i < histSubCount {
		return uint64(i), 1
	}
	shift := i/histHalf - 1
	return uint64(i-shift*histHalf) << shift, 1 << shift
}

// Record adds one duration; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds o's records to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the longest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the shortest duration recorded, exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the average duration, exactly.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the duration below or at which a fraction q (0..1) of
// the records lie: the nearest-rank record, read at its bucket's middle
// and kept within the exact minimum and maximum. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		low, width := histBounds(i)
		v := int64(low + (width-1)/2)
		return time.Duration(min(max(v, h.min), h.max))
	}
	return time.Duration(h.max)
}
