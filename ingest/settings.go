package ingest

import "github.com/valyala/fasthttp"

// handleSettingsGet serves GET /api/v1/whatsapp/settings (admin).
func (s *Server) handleSettingsGet(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }

// handleSettingsPut serves PUT /api/v1/whatsapp/settings (admin).
func (s *Server) handleSettingsPut(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }
