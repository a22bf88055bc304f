package ingest

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Settings are a tenant's messaging rules, set by its admins through
// PUT /settings and read by every process (see settingsCache).
type Settings struct {
	// WindowEnforcement refuses a free-form message to a guest outside the
	// 24-hour window before it is queued (403 MESSAGE_WINDOW_EXPIRED)
	// instead of letting the provider fail it later.
	WindowEnforcement bool `json:"window_enforcement"`
	// OptOutKeywords and OptInKeywords: a guest's message that is one of
	// them (case, accents, spaces and punctuation aside) opts the guest
	// out of, or back in to, the number's messages.
	OptOutKeywords []string `json:"opt_out_keywords"`
	OptInKeywords  []string `json:"opt_in_keywords"`
	// OptOutReply and OptInReply are sent to the guest to confirm; "" sends
	// nothing.
	OptOutReply string `json:"opt_out_reply"`
	OptInReply  string `json:"opt_in_reply"`
	// SuggestedTemplates are named in MESSAGE_WINDOW_EXPIRED answers; when
	// empty, the tenant's approved utility templates are.
	SuggestedTemplates []string `json:"suggested_templates"`
	// TemplateLanguageFallback sends a template asked for in a language it
	// has no approved translation in (es_MX) in the nearest one it has:
	// the same language (es, then another region of it), else
	// DefaultTemplateLanguage. Off, such a send answers 404 as before.
	TemplateLanguageFallback bool `json:"template_language_fallback"`
	// DefaultTemplateLanguage is the fallback's last resort ("" none).
	DefaultTemplateLanguage string `json:"default_template_language"`
}

// DefaultSettings are a tenant's settings until its admins change them:
// the window enforced, English and Spanish keywords, and a confirmation of
// either change.
func DefaultSettings() Settings {
	return Settings{
		WindowEnforcement: true,
		OptOutKeywords: []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPT OUT", "OPTOUT",
			"ALTO", "PARAR", "DETENER", "BAJA", "DARME DE BAJA", "CANCELAR", "NO MAS", "NO MÁS"},
		OptInKeywords: []string{"START", "UNSTOP", "SUBSCRIBE", "OPT IN", "OPTIN", "ALTA", "INICIAR", "SUSCRIBIR", "SUSCRIBIRME"},
		// In both languages of the default keywords: the guest may have
		// written either.
		OptOutReply: "You will receive no more WhatsApp messages from us. Reply START to receive them again.\n\n" +
			"No recibirá más mensajes de WhatsApp nuestros. Responda ALTA para volver a recibirlos.",
		OptInReply: "You will receive our WhatsApp messages again. Reply STOP to stop them.\n\n" +
			"Volverá a recibir nuestros mensajes de WhatsApp. Responda BAJA para dejar de recibirlos.",
		TemplateLanguageFallback: true,
	}
}

// settingsPatch is the body of PUT /settings: the fields given replace
// the current ones, the others stay.
type settingsPatch struct {
	WindowEnforcement        *bool     `json:"window_enforcement"`
	OptOutKeywords           *[]string `json:"opt_out_keywords"`
	OptInKeywords            *[]string `json:"opt_in_keywords"`
	OptOutReply              *string   `json:"opt_out_reply"`
	OptInReply               *string   `json:"opt_in_reply"`
	SuggestedTemplates       *[]string `json:"suggested_templates"`
	TemplateLanguageFallback *bool     `json:"template_language_fallback"`
	DefaultTemplateLanguage  *string   `json:"default_template_language"`
}

// apply checks p and writes it over st; the error names the field.
func (p *settingsPatch) apply(st *Settings) *apiError {
	if p.WindowEnforcement != nil {
		st.WindowEnforcement = *p.WindowEnforcement
	}
	kw := func(field string, v *[]string, dst *[]string) *apiError {
		if v == nil {
			return nil
		}
		if len(*v) > 50 {
			return invalidRequest(field+" takes at most 50 keywords", map[string]any{"field": field})
		}
		seen := map[string]bool{}
		for i, k := range *v {
			n := normalizeKeyword(k)
			if n == "" || utf8.RuneCountInString(k) > 40 {
				return invalidRequest(field+" holds an empty or over-long keyword (1 to 40 characters)",
					map[string]any{"field": field, "index": i})
			}
			seen[n] = true
		}
		*dst = append([]string(nil), *v...)
		return nil
	}
	if e := kw("opt_out_keywords", p.OptOutKeywords, &st.OptOutKeywords); e != nil {
		return e
	}
	if e := kw("opt_in_keywords", p.OptInKeywords, &st.OptInKeywords); e != nil {
		return e
	}
	for _, k := range st.OptOutKeywords {
		for _, l := range st.OptInKeywords {
			if normalizeKeyword(k) == normalizeKeyword(l) {
				return invalidRequest("A keyword cannot both opt out and opt in: "+quote(k),
					map[string]any{"field": "opt_in_keywords", "keyword": k})
			}
		}
	}
	reply := func(field string, v *string, dst *string) *apiError {
		if v == nil {
			return nil
		}
		if utf8.RuneCountInString(*v) > 1024 {
			return invalidRequest(field+" is longer than 1024 characters", map[string]any{"field": field})
		}
		*dst = *v
		return nil
	}
	if e := reply("opt_out_reply", p.OptOutReply, &st.OptOutReply); e != nil {
		return e
	}
	if e := reply("opt_in_reply", p.OptInReply, &st.OptInReply); e != nil {
		return e
	}
	if p.SuggestedTemplates != nil {
		if len(*p.SuggestedTemplates) > 10 {
			return invalidRequest("suggested_templates takes at most 10 names", map[string]any{"field": "suggested_templates"})
		}
		for i, n := range *p.SuggestedTemplates {
			if !validTemplateName(n) {
				return invalidRequest("suggested_templates holds a name that is not a template name (lower-case letters, digits, '_')",
					map[string]any{"field": "suggested_templates", "index": i})
			}
		}
		st.SuggestedTemplates = append([]string(nil), *p.SuggestedTemplates...)
	}
	if p.TemplateLanguageFallback != nil {
		st.TemplateLanguageFallback = *p.TemplateLanguageFallback
	}
	if p.DefaultTemplateLanguage != nil {
		if *p.DefaultTemplateLanguage != "" && !message.ValidTemplateLanguage(*p.DefaultTemplateLanguage) {
			return invalidRequest("default_template_language must be a language code of WhatsApp's templates (en, es, pt_BR…), or empty",
				map[string]any{"field": "default_template_language"})
		}
		st.DefaultTemplateLanguage = *p.DefaultTemplateLanguage
	}
	return nil
}

// validTemplateName reports whether s can be a WhatsApp template name.
func validTemplateName(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// normalizeKeyword folds a message or keyword for comparison: accents,
// case, punctuation and runs of spaces do not count ("¡Stop!" = "STOP",
// "no más" = "NO MAS").
func normalizeKeyword(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unaccent(unicode.ToUpper(r)))
		default:
			space = true
		}
	}
	return b.String()
}

// accented maps the accented capitals of the Latin alphabets guests write
// keywords in to their base letters.
const accented = "ÀÁÂÃÄÅĀĂĄÇĆČÈÉÊËĒĖĘĚÌÍÎÏĪĮÑŃŇÒÓÔÕÖØŌŐÙÚÛÜŪŮŰŲÝŸŹŻŽ"
const unaccented = "AAAAAAAAACCCEEEEEEEEIIIIIINNNOOOOOOOOUUUUUUUUYYZZZ"

func unaccent(r rune) rune {
	if r < 0xC0 {
		return r
	}
	i := 0
	for _, a := range accented {
		if a == r {
			return rune(unaccented[i])
		}
		i++
	}
	return r
}

// optKeyword says whether text is one of st's opt-out ("out") or opt-in
// ("in") keywords.
func (st *Settings) optKeyword(text string) string {
	if len(text) > 64 {
		return ""
	}
	n := normalizeKeyword(text)
	if n == "" {
		return ""
	}
	for _, k := range st.OptOutKeywords {
		if normalizeKeyword(k) == n {
			return "out"
		}
	}
	for _, k := range st.OptInKeywords {
		if normalizeKeyword(k) == n {
			return "in"
		}
	}
	return ""
}

// settingsCache keeps tenants' settings (tenantCache): with nothing read
// yet and Redis failing, it answers the defaults with the error (callers on
// the send path then refuse with 503: the defaults may refuse what the
// tenant allowed).
type settingsCache = tenantCache[Settings]

func newSettingsCache(store *redis.Store, ttl time.Duration) *settingsCache {
	return newTenantCache(ttl, func(ctx context.Context, tenant string) (Settings, error) {
		return loadSettings(ctx, store, tenant)
	})
}

// loadSettings reads tenant's settings: the defaults overlaid with what
// its admins set.
func loadSettings(ctx context.Context, store *redis.Store, tenant string) (Settings, error) {
	st := DefaultSettings()
	doc, err := store.TenantDoc(ctx, tenant, redis.DocSettings)
	if err != nil || doc == nil {
		return st, err
	}
	var p settingsPatch
	if err := json.Unmarshal(doc, &p); err != nil {
		return st, err
	}
	p.apply(&st) //nolint:errcheck // stored only after the same checks passed
	return st, nil
}

// handleSettingsGet serves GET /api/v1/whatsapp/settings (admin): the
// tenant's settings in force, defaults included.
func (s *Server) handleSettingsGet(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	st, err := loadSettings(rctx, s.store, p.Tenant.ID)
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
	var patch settingsPatch
	if e := decodeJSON(ctx.PostBody(), &patch); e != nil {
		writeError(ctx, e)
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	// What is stored is the tenant's own choices on top of the previous
	// ones, so that later default changes reach fields never set.
	var stored settingsPatch
	if doc, err := s.store.TenantDoc(rctx, p.Tenant.ID, redis.DocSettings); err != nil {
		s.log.Warn("settings", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	} else if doc != nil {
		_ = json.Unmarshal(doc, &stored) // written by this handler
	}
	st := DefaultSettings()
	stored.apply(&st) //nolint:errcheck // checked when stored
	if e := patch.apply(&st); e != nil {
		writeError(ctx, e)
		return
	}
	merge(&stored, &patch)
	doc, _ := json.Marshal(&stored)
	if err := s.store.PutTenantDoc(rctx, p.Tenant.ID, redis.DocSettings, doc); err != nil {
		s.log.Warn("settings", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	s.settings.forget(p.Tenant.ID)
	writeJSON(ctx, fasthttp.StatusOK, settingsAnswer(p, st))
}

// merge writes the fields set in p over dst.
func merge(dst, p *settingsPatch) {
	if p.WindowEnforcement != nil {
		dst.WindowEnforcement = p.WindowEnforcement
	}
	if p.OptOutKeywords != nil {
		dst.OptOutKeywords = p.OptOutKeywords
	}
	if p.OptInKeywords != nil {
		dst.OptInKeywords = p.OptInKeywords
	}
	if p.OptOutReply != nil {
		dst.OptOutReply = p.OptOutReply
	}
	if p.OptInReply != nil {
		dst.OptInReply = p.OptInReply
	}
	if p.SuggestedTemplates != nil {
		dst.SuggestedTemplates = p.SuggestedTemplates
	}
	if p.TemplateLanguageFallback != nil {
		dst.TemplateLanguageFallback = p.TemplateLanguageFallback
	}
	if p.DefaultTemplateLanguage != nil {
		dst.DefaultTemplateLanguage = p.DefaultTemplateLanguage
	}
}

func settingsAnswer(p Principal, st Settings) map[string]any {
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
