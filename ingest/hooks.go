package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// webhookRequest is the body of POST /webhooks/configure (seed 001).
type webhookRequest struct {
	WebhookURL  string   `json:"webhook_url"`
	Events      []string `json:"events"`
	VerifyToken string   `json:"verify_token"`
	RetryConfig *struct {
		MaxRetries *int   `json:"max_retries"`
		RetryDelay *int64 `json:"retry_delay"`
	} `json:"retry_config"`
	// Secret keys the deliveries' signatures; without it one is made (or
	// the current one kept).
	Secret string `json:"secret"`
}

// checkWebhookURL refuses what a gateway must not post to: not absolute
// http(s), plain http anywhere but this machine, or a host that is (or
// resolves to) an internal address the operator did not allow. Every
// delivery checks the address again when it connects (the guard dials).
func (s *Server) checkWebhookURL(ctx context.Context, raw string) *apiError {
	u, err := url.Parse(raw)
	bad := func(why string) *apiError {
		return invalidRequest("webhook_url "+why, map[string]any{"field": "webhook_url", "value": raw})
	}
	switch {
	case raw == "":
		return invalidRequest("webhook_url is required", map[string]any{"field": "webhook_url"})
	case len(raw) > 2048:
		return bad("is longer than 2048 characters")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return bad("must be an absolute https URL")
	case u.User != nil:
		return bad("must not carry a user name or password: use verify_token and the signature")
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return bad("must use https (plain http is taken only for this machine: localhost, 127.0.0.1, ::1)")
	}
	if err := s.guard.CheckHost(ctx, u.Hostname()); err != nil {
		return bad("reaches an internal address (loopback, private, link-local or metadata), " +
			"which the gateway does not post to unless its operator allows that network")
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// handleWebhookConfigure serves POST /api/v1/whatsapp/webhooks/configure
// (admin): where wagate posts the tenant's events, which ones, and how it
// retries. The answer shows the signing secret.
func (s *Server) handleWebhookConfigure(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r webhookRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	uctx, ucancel := s.apiCtx()
	e := s.checkWebhookURL(uctx, r.WebhookURL)
	ucancel()
	if e != nil {
		writeError(ctx, e)
		return
	}
	all := message.WebhookEvents()
	if len(r.Events) == 0 {
		writeError(ctx, invalidRequest("events is required: the events to receive", map[string]any{"field": "events", "allowed": all}))
		return
	}
	var events []string
	for i, ev := range r.Events {
		if !slices.Contains(all, ev) {
			writeError(ctx, invalidRequest("events holds an unknown event "+quote(ev),
				map[string]any{"field": "events[" + strconv.Itoa(i) + "]", "allowed": all}))
			return
		}
		if !slices.Contains(events, ev) {
			events = append(events, ev)
		}
	}
	if len(r.VerifyToken) > maxRefLen || strings.IndexFunc(r.VerifyToken, func(c rune) bool { return c < '!' || c > '~' }) >= 0 {
		writeError(ctx, invalidRequest("verify_token may hold up to 255 visible ASCII characters", map[string]any{"field": "verify_token"}))
		return
	}
	cfg := message.WebhookConfig{URL: r.WebhookURL, Events: events, VerifyToken: r.VerifyToken,
		MaxRetries: 3, RetryDelayMS: 5000, UpdatedMS: time.Now().UnixMilli()}
	if rc := r.RetryConfig; rc != nil {
		if rc.MaxRetries != nil {
			if *rc.MaxRetries < 0 || *rc.MaxRetries > 10 {
				writeError(ctx, invalidRequest("retry_config.max_retries must be from 0 to 10", map[string]any{"field": "retry_config.max_retries"}))
				return
			}
			cfg.MaxRetries = *rc.MaxRetries
		}
		if rc.RetryDelay != nil {
			if *rc.RetryDelay < 100 || *rc.RetryDelay > 3_600_000 {
				writeError(ctx, invalidRequest("retry_config.retry_delay must be from 100 to 3600000 milliseconds",
					map[string]any{"field": "retry_config.retry_delay"}))
				return
			}
			cfg.RetryDelayMS = *rc.RetryDelay
		}
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	prev, err := s.webhookConfig(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	switch {
	case r.Secret != "":
		if len(r.Secret) < 16 || len(r.Secret) > 256 {
			writeError(ctx, invalidRequest("secret must be 16 to 256 characters", map[string]any{"field": "secret"}))
			return
		}
		cfg.Secret = r.Secret
	case prev != nil:
		cfg.Secret = prev.Secret
	default:
		var b [32]byte
		rand.Read(b[:])
		cfg.Secret = hex.EncodeToString(b[:])
	}
	doc, _ := json.Marshal(&cfg)
	if err := s.store.PutTenantDoc(rctx, p.Tenant.ID, redis.DocWebhook, doc); err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, webhookAnswer(&cfg, true))
}

// webhookConfig reads tenant's webhook, nil when none is configured.
func (s *Server) webhookConfig(rctx context.Context, tenant string) (*message.WebhookConfig, error) {
	doc, err := s.store.TenantDoc(rctx, tenant, redis.DocWebhook)
	if err != nil || doc == nil {
		return nil, err
	}
	var c message.WebhookConfig
	if err := json.Unmarshal(doc, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// webhookAnswer shows a webhook; the secret in full only when it was just
// set, else its last four characters.
func webhookAnswer(c *message.WebhookConfig, withSecret bool) map[string]any {
	secret := c.Secret
	if !withSecret && len(secret) > 4 {
		secret = "…" + secret[len(secret)-4:]
	}
	return map[string]any{
		"webhook_url": c.URL, "events": c.Events, "verify_token": c.VerifyToken,
		"retry_config":     map[string]any{"max_retries": c.MaxRetries, "retry_delay": c.RetryDelayMS},
		"signing_secret":   secret,
		"signature_header": message.HeaderWebhookSignature,
		"status":           "active", "updated_at": rfc3339(c.UpdatedMS),
	}
}

// handleWebhookGet serves GET /api/v1/whatsapp/webhooks (admin): the
// tenant's webhook and how its deliveries went.
func (s *Server) handleWebhookGet(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	c, err := s.webhookConfig(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	if c == nil {
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No webhook is configured",
			RecoveryOptions: []string{"POST /api/v1/whatsapp/webhooks/configure"}})
		return
	}
	st, err := s.store.HookStats(rctx, p.Tenant.ID, 20)
	if err != nil {
		s.log.Warn("webhook stats", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	dead := make([]json.RawMessage, 0, len(st.DeadLetters))
	for _, d := range st.DeadLetters {
		if json.Valid([]byte(d)) {
			dead = append(dead, json.RawMessage(d))
		}
	}
	out := webhookAnswer(c, false)
	out["deliveries"] = map[string]any{
		"delivered": st.Delivered, "failed_attempts": st.Failed, "retried": st.Retried, "dead_lettered": st.DeadLettered,
		"last_success_at": timeOrNil(st.LastSuccessMS), "last_failure_at": timeOrNil(st.LastFailureMS),
		"last_error": orNull(st.LastError), "dead_letters": dead,
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleWebhookDelete serves DELETE /api/v1/whatsapp/webhooks (admin): no
// more deliveries.
func (s *Server) handleWebhookDelete(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	if err := s.store.PutTenantDoc(rctx, p.Tenant.ID, redis.DocWebhook, nil); err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// handleWebhookTest serves POST /api/v1/whatsapp/webhooks/test (admin): a
// signed webhook_test event posted now, answered with what the endpoint
// said; 500 WEBHOOK_DELIVERY_FAILED when it did not take it.
func (s *Server) handleWebhookTest(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	c, err := s.webhookConfig(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("sent"))
		return
	}
	if c == nil {
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No webhook is configured",
			RecoveryOptions: []string{"POST /api/v1/whatsapp/webhooks/configure"}})
		return
	}
	var idb [8]byte
	rand.Read(idb[:])
	id := "test_" + hex.EncodeToString(idb[:])
	now := time.Now()
	body, _ := json.Marshal(map[string]any{"event": message.EventWebhookTest, "event_id": id, "tenant_id": p.Tenant.ID,
		"created_at": rfc3339(now.UnixMilli()), "data": map[string]any{"message": "wagate webhook test"}})
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.URL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set(message.HeaderWebhookEvent, message.EventWebhookTest)
	req.Header.Set(message.HeaderWebhookDelivery, id)
	req.Header.Set(message.HeaderWebhookSignature, message.SignWebhook(c.Secret, body, time.Now()))
	if c.VerifyToken != "" {
		req.Header.Set(message.HeaderWebhookVerifyToken, c.VerifyToken)
	}
	req.SetBody(body)
	err = s.hookClient.DoTimeout(req, resp, 10*time.Second)
	took := time.Since(now).Milliseconds()
	if err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"delivered": true, "event_id": id, "status_code": resp.StatusCode(), "duration_ms": took})
		return
	}
	d := map[string]any{"webhook_url": c.URL, "event_id": id, "status_code": nil, "duration_ms": took}
	if err != nil {
		d["reason"] = err.Error()
	} else {
		d["status_code"] = resp.StatusCode()
		d["reason"] = "the endpoint answered HTTP " + strconv.Itoa(resp.StatusCode())
		if b := bytes.TrimSpace(resp.Body()); len(b) > 0 {
			d["response_body"] = string(b[:min(len(b), 512)])
		}
	}
	writeError(ctx, &apiError{Code: message.CodeWebhookDeliveryFailed, Message: "The webhook endpoint did not accept the delivery",
		Details: d, RecoveryOptions: []string{
			"Check that webhook_url is reachable from the gateway and answers 2xx within 10 s",
			"Check the endpoint verifies X-Wagate-Signature-256 with the signing secret",
		}})
}

// handleWebhookRedeliver serves POST
// /api/v1/whatsapp/webhooks/dead-letters/{id}/redeliver and
// .../dead-letters/redeliver (every one kept) (admin): dead deliveries
// get a new round of attempts now, signed when they are made, and leave
// the dead letters. 202 with the event ids scheduled; 404 when the id is
// not among the dead letters.
func (s *Server) handleWebhookRedeliver(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	c, err := s.webhookConfig(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("webhook config", "err", err)
		writeError(ctx, unavailable("scheduled"))
		return
	}
	if c == nil {
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No webhook is configured",
			RecoveryOptions: []string{"POST /api/v1/whatsapp/webhooks/configure"}})
		return
	}
	var ids []string
	if id := ps[0]; id != "" {
		ids = []string{id}
	}
	done, err := s.store.RedeliverHooks(rctx, p.Tenant.ID, ids)
	if err != nil {
		s.log.Warn("redeliver webhooks", "err", err)
		writeError(ctx, unavailable("scheduled"))
		return
	}
	if len(ids) > 0 && len(done) == 0 {
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No dead letter has this event id",
			Details: map[string]any{"event_id": ids[0]}, RecoveryOptions: []string{"GET /api/v1/whatsapp/webhooks lists the dead letters"}})
		return
	}
	if done == nil {
		done = []string{}
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string]any{"scheduled": len(done), "event_ids": done})
}
