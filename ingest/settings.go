package ingest

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/settings"
	"github.com/wagate/wagate/store/redis"
)

// invalidSettings is the 400 of a settings patch that cannot apply.
func invalidSettings(err error) *apiError {
	var inv *settings.InvalidError
	if errors.As(err, &inv) {
		return invalidRequest(inv.Message, inv.Details)
	}
	return invalidRequest(err.Error(), nil)
}

// handleSettingsGet serves GET /api/v1/whatsapp/settings (admin): the
// tenant's settings in force, defaults included.
func (s *Server) handleSettingsGet(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	st, err := settings.Load(rctx, s.store, p.Tenant.ID)
	if err != nil {
		s.log.Warn("settings", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, settingsAnswer(p, st))
}

// handleSettingsPut serves PUT /api/v1/whatsapp/settings (admin): the
// fields given replace the tenant's current ones.
func (s *Server) handleSettingsPut(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var patch settings.Patch
	if e := decodeJSON(ctx.PostBody(), &patch); e != nil {
		writeError(ctx, e)
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	// What is stored is the tenant's own choices on top of the previous
	// ones, so that later default changes reach fields never set.
	var stored settings.Patch
	if doc, err := s.store.TenantDoc(rctx, p.Tenant.ID, redis.DocSettings); err != nil {
		s.log.Warn("settings", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	} else if doc != nil {
		_ = json.Unmarshal(doc, &stored) // written by this handler
	}
	st := settings.Default()
	stored.Apply(&st) //nolint:errcheck // checked when stored
	if err := patch.Apply(&st); err != nil {
		writeError(ctx, invalidSettings(err))
		return
	}
	settings.Merge(&stored, &patch)
	doc, _ := json.Marshal(&stored)
	if err := s.store.PutTenantDoc(rctx, p.Tenant.ID, redis.DocSettings, doc); err != nil {
		s.log.Warn("settings", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	s.settings.Forget(p.Tenant.ID)
	writeJSON(ctx, fasthttp.StatusOK, settingsAnswer(p, st))
}

func settingsAnswer(p Principal, st settings.Settings) map[string]any {
	if st.SuggestedTemplates == nil {
		st.SuggestedTemplates = []string{}
	}
	return map[string]any{
		"tenant_id": p.Tenant.ID, "senders": p.Tenant.Senders,
		"window_enforcement": st.WindowEnforcement,
		"opt_out_keywords":   st.OptOutKeywords, "opt_in_keywords": st.OptInKeywords,
		"opt_out_reply": st.OptOutReply, "opt_in_reply": st.OptInReply,
		"suggested_templates":        st.SuggestedTemplates,
		"template_language_fallback": st.TemplateLanguageFallback,
		"default_template_language":  st.DefaultTemplateLanguage,
	}
}
