package ingest

import "github.com/valyala/fasthttp"

// handleWebhookConfigure serves POST /api/v1/whatsapp/webhooks/configure (admin).
func (s *Server) handleWebhookConfigure(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	notBuilt(ctx)
}

// handleWebhookGet serves GET /api/v1/whatsapp/webhooks (admin).
func (s *Server) handleWebhookGet(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }
