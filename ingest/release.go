package ingest

import (
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// memReleaser gives the memory of large request bodies back: fasthttp
// keeps a request's body buffer for the next request, so a burst of big
// posts (unsigned 3 MB webhooks, say: their signature can only be checked
// once the whole body is in) would leave the process that much bigger for
// minutes. A body over threshold is taken from its request once answered,
// and a release (a collection that returns free memory to the OS) follows
// after delay, one for a whole burst.
type memReleaser struct {
	threshold int
	delay     time.Duration
	pending   atomic.Bool
}

func newMemReleaser(threshold int, delay time.Duration) *memReleaser {
	return &memReleaser{threshold: threshold, delay: delay}
}

// done is called once a request was answered.
func (m *memReleaser) done(ctx *fasthttp.RequestCtx) {
	if cap(ctx.Request.Body()) <= m.threshold {
		return
	}
	// The buffer leaves fasthttp's pools with the returned slice, which
	// nothing keeps.
	ctx.Request.SwapBody(nil)
	if m.pending.CompareAndSwap(false, true) {
		time.AfterFunc(m.delay, func() {
			m.pending.Store(false)
			debug.FreeOSMemory()
		})
	}
}
