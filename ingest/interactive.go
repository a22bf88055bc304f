package ingest

import "github.com/valyala/fasthttp"

// handleSendInteractive serves POST /api/v1/whatsapp/messages/send-interactive.
func (s *Server) handleSendInteractive(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	notBuilt(ctx)
}
