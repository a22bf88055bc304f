package ingest

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openapiYAML is wagate's own OpenAPI 3.1 description of its HTTP API
// (openapi.yaml beside this file). openapi_test.go holds every answer the
// tests get to it, so the document and the handlers cannot drift apart.
//
//go:embed openapi.yaml
var openapiYAML []byte

// handleOpenAPI serves /openapi.yaml to anyone, without a token: GET and
// HEAD answer the embedded document, other methods 405.
func (s *Server) handleOpenAPI(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		writeError(ctx, methodNotAllowed("GET, HEAD"))
		return
	}
	ctx.SetContentType("application/yaml")
	// fasthttp sends a HEAD's headers (Content-Length included) without
	// the body.
	ctx.SetBody(openapiYAML)
}
