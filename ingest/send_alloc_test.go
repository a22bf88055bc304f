//go:build !race

// The race detector empties sync.Pools, so allocation counts are only
// meaningful without it: scripts/test runs these again without -race.

package ingest

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// textSendAllocs is the allocation budget of one text send through the
// handler into Redis, alone (a flush of its own; under concurrent callers
// a send shares its flush and allocates about 23 times, BenchmarkHandleSend):
// the request's strings (phone, text), the request's deadline, go-redis's
// pipeline and its reading of the answer. Decoding takes no reflection, the
// recurring arguments are boxed once (argCache) and the answer is written
// into pooled buffers; the message id, time, recipient and the other byte
// arguments are the job's own buffers behind pointers (bytesArg). 36
// measured; 41 before the id, time and recipient were; 90 before fastjson
// and group commit.
const textSendAllocs = 36

// TestTextSendStaysWithinItsAllocationBudget: a text send, whole, allocates
// at most textSendAllocs times (BenchmarkHandleSend shows the same figure
// under concurrent callers).
func TestTextSendStaysWithinItsAllocationBudget(t *testing.T) {
	h := benchServer(t)
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(sendPath)
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+staffToken)
	req.SetBody(benchSendBody)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	send := func() {
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusAccepted {
			t.Fatalf("answer %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for range 50 { // warm the pools and caches
		send()
	}
	if n := testing.AllocsPerRun(300, send); n > textSendAllocs {
		t.Errorf("a text send allocates %v times, budget %d", n, textSendAllocs)
	} else {
		t.Logf("a text send allocates %v times (budget %d)", n, textSendAllocs)
	}
}
