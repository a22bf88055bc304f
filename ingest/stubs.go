package ingest

// TEMPORARY: placeholders while the issue-4 endpoints are being built; this
// file is deleted before the work lands.

import (
	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

func notBuilt(ctx *fasthttp.RequestCtx) {
	writeError(ctx, &apiError{Code: message.CodeInternal, Message: "not built yet"})
}
