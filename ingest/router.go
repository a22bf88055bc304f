package ingest

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// apiPrefix starts every API path.
const apiPrefix = "/api/v1/whatsapp/"

// apiPrefixUnversioned is seed 002's spelling of apiPrefix
// ("GET /api/whatsapp/conversations"): the same API, served as an alias.
const apiPrefixUnversioned = "/api/whatsapp/"

// params are an endpoint's path parameters, in the pattern's order.
type params [2]string

// handlerFunc serves one endpoint for p.
type handlerFunc func(s *Server, ctx *fasthttp.RequestCtx, p Principal, ps params)

// endpoint is one row of the API's route table.
type endpoint struct {
	method string
	// pattern is the path after apiPrefix; a "{name}" segment matches any
	// one segment and becomes a parameter.
	pattern string
	route   route
	// admin: staff tokens get 403.
	admin bool
	// json: the body must be JSON (see jsonBody).
	json bool

	// public: no bearer token (the handler checks its own credentials).
	public bool
	// session: a staff member's session only; API tokens get 403.
	session bool
	h       handlerFunc
}

// apiEndpoints is the API's route table: exact patterns before ones with
// parameters where both could match. NewServer builds it once; it is only
// read afterwards.
func apiEndpoints() []endpoint {
	return []endpoint{
		{method: "POST", pattern: "messages/send", route: routeSend, json: true, h: (*Server).handleSend},
		{method: "POST", pattern: "messages/batch-send", route: routeBatch, json: true, h: (*Server).handleBatchSend},
		{method: "POST", pattern: "messages/send-media", route: routeMedia, json: true, h: (*Server).handleSendMedia},
		{method: "POST", pattern: "messages/send-interactive", route: routeInteractive, json: true, h: (*Server).handleSendInteractive},
		{method: "GET", pattern: "messages/{id}/status", route: routeStatus, h: (*Server).handleStatus},
		{method: "POST", pattern: "messages/read", route: routeConversations, json: true, h: (*Server).handleMessageReadBody},
		{method: "POST", pattern: "messages/{id}/read", route: routeConversations, json: true, h: (*Server).handleMessageRead},
		{method: "GET", pattern: "batches/{id}", route: routeBatch, h: (*Server).handleBatchGet},
		{method: "POST", pattern: "batches/{id}/cancel", route: routeBatch, h: (*Server).handleBatchCancel},
		{method: "GET", pattern: "batches/{id}/messages", route: routeBatch, h: (*Server).handleBatchMessages},
		{method: "GET", pattern: "templates", route: routeTemplates, h: (*Server).handleTemplateList},
		{method: "POST", pattern: "templates", route: routeTemplates, admin: true, json: true, h: (*Server).handleTemplateCreate},
		{method: "POST", pattern: "templates/send", route: routeTemplates, json: true, h: (*Server).handleTemplateSend},
		{method: "GET", pattern: "templates/{name}", route: routeTemplates, h: (*Server).handleTemplateGet},
		{method: "POST", pattern: "media/upload", route: routeMedia, h: (*Server).handleMediaUpload},
		{method: "GET", pattern: "media/{id}", route: routeMedia, public: true, h: (*Server).handleMediaGet},
		{method: "GET", pattern: "inbox/stream", route: routeConversations, h: (*Server).handleInboxStream},
		{method: "GET", pattern: "conversations", route: routeConversations, h: (*Server).handleConversationList},
		{method: "GET", pattern: "conversations/{id}", route: routeConversations, h: (*Server).handleConversationGet},
		{method: "GET", pattern: "conversations/{id}/window-status", route: routeConversations, h: (*Server).handleWindowStatus},
		{method: "GET", pattern: "conversations/{id}/analytics", route: routeConversations, h: (*Server).handleConversationAnalytics},
		{method: "POST", pattern: "conversations/{id}/{action}", route: routeConversations, json: true, h: (*Server).handleConversationAction},
		{method: "GET", pattern: "guests/{phone}", route: routeConversations, h: (*Server).handleGuestGet},
		{method: "POST", pattern: "guests/{phone}/{action}", route: routeConversations, json: true, h: (*Server).handleGuestAction},
		{method: "POST", pattern: "webhooks/configure", route: routeAdmin, admin: true, json: true, h: (*Server).handleWebhookConfigure},
		{method: "GET", pattern: "webhooks", route: routeAdmin, admin: true, h: (*Server).handleWebhookGet},
		{method: "DELETE", pattern: "webhooks", route: routeAdmin, admin: true, h: (*Server).handleWebhookDelete},
		{method: "POST", pattern: "webhooks/test", route: routeAdmin, admin: true, h: (*Server).handleWebhookTest},
		{method: "POST", pattern: "webhooks/dead-letters/redeliver", route: routeAdmin, admin: true, h: (*Server).handleWebhookRedeliver},
		{method: "POST", pattern: "webhooks/dead-letters/{id}/redeliver", route: routeAdmin, admin: true, h: (*Server).handleWebhookRedeliver},
		{method: "GET", pattern: "settings", route: routeAdmin, admin: true, h: (*Server).handleSettingsGet},
		{method: "PUT", pattern: "settings", route: routeAdmin, admin: true, json: true, h: (*Server).handleSettingsPut},
		{method: "GET", pattern: "admin/dead-letters", route: routeAdmin, admin: true, h: (*Server).handleDeadLetterList},
		{method: "POST", pattern: "admin/dead-letters/{id}/requeue", route: routeAdmin, admin: true, h: (*Server).handleDeadLetterRequeue},
		{method: "POST", pattern: "auth/login", route: routeStaff, public: true, json: true, h: (*Server).handleLogin},
		{method: "POST", pattern: "auth/logout", route: routeStaff, session: true, h: (*Server).handleLogout},
		{method: "GET", pattern: "auth/me", route: routeStaff, session: true, h: (*Server).handleMe},
		{method: "GET", pattern: "staff", route: routeStaff, h: (*Server).handleStaffList},
		{method: "POST", pattern: "staff", route: routeStaff, admin: true, json: true, h: (*Server).handleStaffCreate},
		{method: "PATCH", pattern: "staff/me", route: routeStaff, session: true, json: true, h: (*Server).handleStaffMe},
		{method: "GET", pattern: "staff/{id}", route: routeStaff, admin: true, h: (*Server).handleStaffGet},
		{method: "PATCH", pattern: "staff/{id}", route: routeStaff, admin: true, json: true, h: (*Server).handleStaffPatch},
		{method: "POST", pattern: "staff/{id}/password", route: routeStaff, admin: true, json: true, h: (*Server).handleStaffPassword},
	}
}

// match reports whether path (after apiPrefix) fits pattern, and its
// parameters. It allocates only the parameters it returns.
func match(path []byte, pattern string) (params, bool) {
	var ps params
	n := 0
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		seg, rest, more := bytes.Cut(path, []byte("/"))
		if len(seg) == 0 || pmore != more {
			return ps, false
		}
		if strings.HasPrefix(pseg, "{") {
			if n < len(ps) {
				ps[n] = string(seg)
			}
			n++
		} else if string(seg) != pseg {
			return ps, false
		}
		if !more {
			return ps, true
		}
		pattern, path = prest, rest
	}
}

// serveAPI routes a request under apiPrefix through the table: 404 when no
// pattern fits, 405 with Allow when none fits its method, then the token
// or session (with its CSRF token), the role, the body and the handler.
func (s *Server) serveAPI(ctx *fasthttp.RequestCtx, path []byte) route {
	var allow []string
	r := routeOther
	for i := range s.endpoints {
		e := &s.endpoints[i]
		ps, ok := match(path, e.pattern)
		if !ok {
			continue
		}
		r = e.route
		if string(ctx.Method()) != e.method {
			allow = append(allow, e.method)
			continue
		}
		if e.public {
			e.h(s, ctx, Principal{}, ps)
			return r
		}
		p, ok := s.auth(ctx)
		if !ok || (e.admin && !s.admin(ctx, p)) || (e.session && !sessionOnly(ctx, p)) || (e.json && (!jsonBody(ctx) || !textOK(ctx))) {
			return r
		}
		e.h(s, ctx, p, ps)
		return r
	}
	if len(allow) > 0 {
		writeError(ctx, methodNotAllowed(strings.Join(allow, ", ")))
		return r
	}
	writeError(ctx, errNotFound)
	return r
}

// Paths with their own body limits; every other API call has MaxBodyBytes.
var (
	pathBatchSend = []byte(apiPrefix + "messages/batch-send")
	pathUpload    = []byte(apiPrefix + "media/upload")
)

// bodyLimit is the body limit of a request URI, checked by fasthttp before
// the body is read.
func (c *Config) bodyLimit(uri []byte) int {
	path, _, _ := bytes.Cut(uri, []byte("?"))
	if rest, ok := bytes.CutPrefix(path, []byte(apiPrefixUnversioned)); ok {
		path = append([]byte(apiPrefix), rest...)
	}
	switch {
	case bytes.Equal(path, pathBatchSend):
		return c.MaxBatchBytes
	case bytes.Equal(path, pathUpload):
		return c.MaxUploadBytes
	case bytes.Equal(path, pathMeta), bytes.Equal(path, pathGallaboxHook), bytes.Equal(path, pathChatAppHook):
		return c.MaxWebhookBytes
	}
	return c.MaxBodyBytes
}
