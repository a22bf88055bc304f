package ingest

import "github.com/valyala/fasthttp"

// handleConversationList serves GET /api/v1/whatsapp/conversations.
func (s *Server) handleConversationList(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	notBuilt(ctx)
}

// handleConversationGet serves GET /api/v1/whatsapp/conversations/{id}.
func (s *Server) handleConversationGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	notBuilt(ctx)
}

// handleWindowStatus serves GET /api/v1/whatsapp/conversations/{id}/window-status.
func (s *Server) handleWindowStatus(ctx *fasthttp.RequestCtx, p Principal, ps params) { notBuilt(ctx) }

// handleConversationAnalytics serves GET /api/v1/whatsapp/conversations/{id}/analytics.
func (s *Server) handleConversationAnalytics(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	notBuilt(ctx)
}

// handleConversationAction serves POST /api/v1/whatsapp/conversations/{id}/{action}.
func (s *Server) handleConversationAction(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	notBuilt(ctx)
}

// handleGuestAction serves POST /api/v1/whatsapp/guests/{phone}/{action}.
func (s *Server) handleGuestAction(ctx *fasthttp.RequestCtx, p Principal, ps params) { notBuilt(ctx) }
