package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// handleMetaVerify answers Meta's subscription handshake:
// GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=X → 200 X.
func (s *Server) handleMetaVerify(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	mode, token, challenge := args.Peek("hub.mode"), args.Peek("hub.verify_token"), args.Peek("hub.challenge")
	if string(mode) != "subscribe" || len(challenge) == 0 || s.cfg.MetaVerifyToken == "" ||
		subtle.ConstantTimeCompare(token, []byte(s.cfg.MetaVerifyToken)) != 1 {
		s.metrics.webhooks.WithLabelValues("meta", "verify_refused").Inc()
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("verification failed")
		return
	}
	s.metrics.webhooks.WithLabelValues("meta", "verified").Inc()
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBody(challenge)
}

// handleMetaWebhook takes a delivery of Meta's: the signature must match the
// app secret, and the raw body is durable in an inbound stream before the
// 200 goes out, so a delivery answered 200 is never lost and one that is not
// is retried by Meta. Parsing and applying happen in the Processor.
func (s *Server) handleMetaWebhook(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	sig := ctx.Request.Header.Peek("X-Hub-Signature-256")
	if len(sig) == 0 {
		s.metrics.webhooks.WithLabelValues("meta", "unsigned").Inc()
		writeError(ctx, &apiError{Code: message.CodeUnauthorized, Message: "Missing X-Hub-Signature-256 header"})
		return
	}
	if len(s.appSecret) == 0 {
		// Without a secret any body would "verify": refuse them all.
		s.metrics.webhooks.WithLabelValues("meta", "bad_signature").Inc()
		writeError(ctx, &apiError{Code: message.CodeUnauthorized, Message: "This gateway has no Meta app secret configured; webhooks cannot be verified"})
		return
	}
	if !s.verifier.Verify(body, sig) {
		s.metrics.webhooks.WithLabelValues("meta", "bad_signature").Inc()
		writeError(ctx, &apiError{Code: message.CodeUnauthorized, Message: "X-Hub-Signature-256 does not match the body"})
		return
	}
	if !json.Valid(body) {
		s.metrics.webhooks.WithLabelValues("meta", "invalid").Inc()
		writeError(ctx, invalidRequest("webhook body is not JSON", nil))
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	err := s.store.AppendInbound(actx, "meta", body)
	cancel()
	if err != nil {
		s.metrics.webhooks.WithLabelValues("meta", "error").Inc()
		s.log.Warn("store webhook", "err", err)
		writeError(ctx, unavailable("stored"))
		return
	}
	s.metrics.webhooks.WithLabelValues("meta", "accepted").Inc()
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("EVENT_RECEIVED")
}
