package ingest

import "github.com/valyala/fasthttp"

// handleTemplateList serves GET /api/v1/whatsapp/templates.
func (s *Server) handleTemplateList(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }

// handleTemplateGet serves GET /api/v1/whatsapp/templates/{name}.
func (s *Server) handleTemplateGet(ctx *fasthttp.RequestCtx, p Principal, ps params) { notBuilt(ctx) }

// handleTemplateCreate serves POST /api/v1/whatsapp/templates (admin).
func (s *Server) handleTemplateCreate(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }

// handleTemplateSend serves POST /api/v1/whatsapp/templates/send.
func (s *Server) handleTemplateSend(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }
