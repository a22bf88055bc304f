package ingest

// TEMPORARY: placeholders while the issue-4 endpoints are being built; this
// file is deleted before the work lands.

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

func notBuilt(ctx *fasthttp.RequestCtx) {
	writeError(ctx, &apiError{Code: message.CodeInternal, Message: "not built yet"})
}

// utilityTemplates: up to n of tenant's approved utility templates; lands
// with the template store.
func (s *Server) utilityTemplates(ctx context.Context, tenant string, n int) []string {
	return []string{}
}
