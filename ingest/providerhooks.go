package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/chatapp"
	"github.com/wagate/wagate/provider/gallabox"
)

// The status callbacks of the secondary providers, beside Meta's
// (webhook.go): POST /webhooks/gallabox and POST /webhooks/chatapp. Each
// is verified the way its provider allows (Gallabox signs the body with
// the webhook's Secret; ChatApp signs nothing, so its callback URL carries
// a token), stored raw in the inbound streams like Meta's, and parsed by
// the inbound role (package inbound) with the provider's own parser.

// Kinds of provider webhooks.
const (
	KindGallabox = "gallabox"
	KindChatApp  = "chatapp"
)

var (
	pathGallaboxHook = []byte("/webhooks/gallabox")
	pathChatAppHook  = []byte("/webhooks/chatapp")
)

// ProviderWebhook is a Gallabox or ChatApp account whose status callbacks
// the API takes.
type ProviderWebhook struct {
	// Kind is KindGallabox or KindChatApp.
	Kind string
	// Name is the account's provider name, recorded with its statuses:
	// the name its adapter sends under.
	Name string
	// Secret verifies the account's callbacks: the Secret set on the
	// Gallabox webhook (x-gallabox-signature), or the token in ChatApp's
	// callback URL (?token=).
	Secret string
}

// providerHooks are the accounts that may post callbacks, by kind.
type providerHooks struct {
	gallabox, chatapp []hookAccount
}

// hookAccount is one account's secret and the provider tag its bodies are
// stored under: the kind, or "kind/name" for an account named otherwise.
type hookAccount struct {
	tag    string
	secret []byte
}

func newProviderHooks(ws []ProviderWebhook) (providerHooks, error) {
	var h providerHooks
	names := map[string]bool{}
	for _, w := range ws {
		if w.Name == "" || strings.ContainsAny(w.Name, "/ ") || names[w.Name] {
			return h, fmt.Errorf("ingest: provider webhook name %q is empty, repeated or has a slash or space", w.Name)
		}
		names[w.Name] = true
		if w.Secret == "" {
			return h, fmt.Errorf("ingest: provider webhook %s has no secret", w.Name)
		}
		a := hookAccount{tag: w.Kind, secret: []byte(w.Secret)}
		if w.Name != w.Kind {
			a.tag = w.Kind + "/" + w.Name
		}
		switch w.Kind {
		case KindGallabox:
			h.gallabox = append(h.gallabox, a)
		case KindChatApp:
			h.chatapp = append(h.chatapp, a)
		default:
			return h, fmt.Errorf("ingest: provider webhook %s: kind %q is neither %s nor %s", w.Name, w.Kind, KindGallabox, KindChatApp)
		}
	}
	return h, nil
}

// handleGallaboxWebhook takes a Gallabox webhook: the x-gallabox-signature
// must match the body under one account's secret. Events other than the
// delivery statuses (a webhook subscribed to more) are answered 200 and
// not kept. The raw body is durable before the 200, as Meta's.
func (s *Server) handleGallaboxWebhook(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeError(ctx, methodNotAllowed("POST"))
		return
	}
	body := ctx.PostBody()
	sig := ctx.Request.Header.Peek(gallabox.SignatureHeader)
	var acct *hookAccount
	switch {
	case len(s.hooks.gallabox) == 0:
		// Without a secret any body would "verify": refuse them all.
		s.hookRefused(ctx, KindGallabox, "bad_signature", "This gateway has no Gallabox webhook secret configured; webhooks cannot be verified")
		return
	case len(sig) == 0:
		s.hookRefused(ctx, KindGallabox, "unsigned", "Missing x-gallabox-signature header: set a Secret on the Gallabox webhook")
		return
	}
	for i := range s.hooks.gallabox {
		if gallabox.VerifySignature(body, sig, s.hooks.gallabox[i].secret) {
			acct = &s.hooks.gallabox[i]
			break
		}
	}
	if acct == nil {
		s.hookRefused(ctx, KindGallabox, "bad_signature", "x-gallabox-signature does not match the body")
		return
	}
	if !gallabox.StatusEvent(ctx.Request.Header.Peek(gallabox.EventHeader)) {
		s.metrics.webhooks.WithLabelValues(KindGallabox, "ignored").Inc()
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("EVENT_IGNORED")
		return
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		s.metrics.webhooks.WithLabelValues(KindGallabox, "invalid").Inc()
		writeError(ctx, invalidRequest("webhook body is not a JSON object", nil))
		return
	}
	if !s.storeHook(ctx, KindGallabox, acct.tag, body) {
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("EVENT_RECEIVED")
}

// handleChatAppWebhook takes a ChatApp receipt push: the URL's token must
// be one account's. It answers ChatApp's {"code":0} once the raw body is
// durable.
func (s *Server) handleChatAppWebhook(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		writeError(ctx, methodNotAllowed("POST"))
		return
	}
	body := ctx.PostBody()
	token := ctx.QueryArgs().Peek(chatapp.TokenParam)
	var acct *hookAccount
	switch {
	case len(s.hooks.chatapp) == 0:
		s.hookRefused(ctx, KindChatApp, "bad_signature", "This gateway has no ChatApp webhook token configured; webhooks cannot be verified")
		return
	case len(token) == 0:
		s.hookRefused(ctx, KindChatApp, "unsigned", "Missing token query parameter: the ChatApp callback URL must end in ?token=<the account's webhook token>")
		return
	}
	for i := range s.hooks.chatapp {
		if chatapp.VerifyToken(token, s.hooks.chatapp[i].secret) {
			acct = &s.hooks.chatapp[i]
			break
		}
	}
	if acct == nil {
		s.hookRefused(ctx, KindChatApp, "bad_signature", "The callback URL's token is not a ChatApp account's webhook token")
		return
	}
	if b := bytes.TrimSpace(body); len(b) == 0 || (b[0] != '[' && b[0] != '{') || !json.Valid(b) {
		s.metrics.webhooks.WithLabelValues(KindChatApp, "invalid").Inc()
		writeError(ctx, invalidRequest("webhook body is not a JSON array of status reports", nil))
		return
	}
	if !s.storeHook(ctx, KindChatApp, acct.tag, body) {
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(chatapp.Answer)
}

// hookRefused answers 401 for a callback that cannot be verified; nothing
// of it is kept, and neither the secret nor what was sent is repeated.
func (s *Server) hookRefused(ctx *fasthttp.RequestCtx, kind, result, msg string) {
	s.metrics.webhooks.WithLabelValues(kind, result).Inc()
	writeError(ctx, &apiError{Code: message.CodeUnauthorized, Message: msg})
}

// storeHook makes a verified body durable under tag; false when it could
// not be, the answer written (503, so that the provider retries).
func (s *Server) storeHook(ctx *fasthttp.RequestCtx, kind, tag string, body []byte) bool {
	actx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	err := s.store.AppendInbound(actx, tag, body)
	cancel()
	if err != nil {
		s.metrics.webhooks.WithLabelValues(kind, "error").Inc()
		s.log.Warn("store webhook", "provider", kind, "err", err)
		writeError(ctx, unavailable("stored"))
		return false
	}
	s.metrics.webhooks.WithLabelValues(kind, "accepted").Inc()
	return true
}
