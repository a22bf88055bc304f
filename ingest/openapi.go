package ingest

import "github.com/valyala/fasthttp"

// handleOpenAPI serves /openapi.yaml.
func (s *Server) handleOpenAPI(ctx *fasthttp.RequestCtx) { notBuilt(ctx) }
