// Package settings holds a tenant's messaging rules (PUT /settings): the
// window rule, the opt-out and opt-in keywords and their confirmations,
// the templates suggested outside the window and the template language
// fallback. The API changes and applies them; the inbound role reads the
// keywords of guests' messages.
package settings

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wagate/wagate/internal/tenantcache"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Settings are a tenant's messaging rules, set by its admins through
// PUT /settings and read by every process (see NewCache).
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

// Default are a tenant's settings until its admins change them: the
// window enforced, English and Spanish keywords, and a confirmation of
// either change.
func Default() Settings {
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

// Patch is the body of PUT /settings, and what is stored of a tenant's
// choices: the fields given replace the current ones, the others stay.
type Patch struct {
	WindowEnforcement        *bool     `json:"window_enforcement"`
	OptOutKeywords           *[]string `json:"opt_out_keywords"`
	OptInKeywords            *[]string `json:"opt_in_keywords"`
	OptOutReply              *string   `json:"opt_out_reply"`
	OptInReply               *string   `json:"opt_in_reply"`
	SuggestedTemplates       *[]string `json:"suggested_templates"`
	TemplateLanguageFallback *bool     `json:"template_language_fallback"`
	DefaultTemplateLanguage  *string   `json:"default_template_language"`
}

// InvalidError is a patch that cannot be applied: Message says why for
// the caller, Details name the field (and the index or keyword at fault),
// as the API's INVALID_REQUEST answers show them.
type InvalidError struct {
	Message string
	Details map[string]any
}

func (e *InvalidError) Error() string { return "settings: " + e.Message }

func invalid(msg string, details map[string]any) *InvalidError {
	return &InvalidError{Message: msg, Details: details}
}

// Apply checks p and writes it over st; the error, an *InvalidError,
// names the field.
func (p *Patch) Apply(st *Settings) error {
	if p.WindowEnforcement != nil {
		st.WindowEnforcement = *p.WindowEnforcement
	}
	kw := func(field string, v *[]string, dst *[]string) error {
		if v == nil {
			return nil
		}
		if len(*v) > 50 {
			return invalid(field+" takes at most 50 keywords", map[string]any{"field": field})
		}
		for i, k := range *v {
			if NormalizeKeyword(k) == "" || utf8.RuneCountInString(k) > 40 {
				return invalid(field+" holds an empty or over-long keyword (1 to 40 characters)",
					map[string]any{"field": field, "index": i})
			}
		}
		*dst = append([]string(nil), *v...)
		return nil
	}
	if err := kw("opt_out_keywords", p.OptOutKeywords, &st.OptOutKeywords); err != nil {
		return err
	}
	if err := kw("opt_in_keywords", p.OptInKeywords, &st.OptInKeywords); err != nil {
		return err
	}
	for _, k := range st.OptOutKeywords {
		for _, l := range st.OptInKeywords {
			if NormalizeKeyword(k) == NormalizeKeyword(l) {
				return invalid("A keyword cannot both opt out and opt in: "+quote(k),
					map[string]any{"field": "opt_in_keywords", "keyword": k})
			}
		}
	}
	reply := func(field string, v *string, dst *string) error {
		if v == nil {
			return nil
		}
		if utf8.RuneCountInString(*v) > 1024 {
			return invalid(field+" is longer than 1024 characters", map[string]any{"field": field})
		}
		*dst = *v
		return nil
	}
	if err := reply("opt_out_reply", p.OptOutReply, &st.OptOutReply); err != nil {
		return err
	}
	if err := reply("opt_in_reply", p.OptInReply, &st.OptInReply); err != nil {
		return err
	}
	if p.SuggestedTemplates != nil {
		if len(*p.SuggestedTemplates) > 10 {
			return invalid("suggested_templates takes at most 10 names", map[string]any{"field": "suggested_templates"})
		}
		for i, n := range *p.SuggestedTemplates {
			if !validTemplateName(n) {
				return invalid("suggested_templates holds a name that is not a template name (lower-case letters, digits, '_')",
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
			return invalid("default_template_language must be a language code of WhatsApp's templates (en, es, pt_BR…), or empty",
				map[string]any{"field": "default_template_language"})
		}
		st.DefaultTemplateLanguage = *p.DefaultTemplateLanguage
	}
	return nil
}

// Merge writes the fields set in p over dst: what is stored is the
// tenant's own choices on top of the previous ones, so that later default
// changes reach fields never set.
func Merge(dst, p *Patch) {
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

// quote shows a caller's value in a message, cut at 40 bytes.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + s + `"`
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

// NormalizeKeyword folds a message or keyword for comparison: accents,
// case, punctuation and runs of spaces do not count ("¡Stop!" = "STOP",
// "no más" = "NO MAS").
func NormalizeKeyword(s string) string {
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

// OptKeyword says whether text is one of st's opt-out ("out") or opt-in
// ("in") keywords; "" when it is neither.
func (st *Settings) OptKeyword(text string) string {
	if len(text) > 64 {
		return ""
	}
	n := NormalizeKeyword(text)
	if n == "" {
		return ""
	}
	for _, k := range st.OptOutKeywords {
		if NormalizeKeyword(k) == n {
			return "out"
		}
	}
	for _, k := range st.OptInKeywords {
		if NormalizeKeyword(k) == n {
			return "in"
		}
	}
	return ""
}

// DocReader reads a tenant's stored documents (store/redis's *Store).
type DocReader interface {
	TenantDoc(ctx context.Context, tenant, name string) ([]byte, error)
}

// Load reads tenant's settings: the defaults overlaid with what its
// admins set.
func Load(ctx context.Context, store DocReader, tenant string) (Settings, error) {
	st := Default()
	doc, err := store.TenantDoc(ctx, tenant, redis.DocSettings)
	if err != nil || doc == nil {
		return st, err
	}
	var p Patch
	if err := json.Unmarshal(doc, &p); err != nil {
		return st, err
	}
	p.Apply(&st) //nolint:errcheck // stored only after the same checks passed
	return st, nil
}

// NewCache returns a cache of tenants' settings read from store, each
// kept ttl: with nothing read yet and Redis failing, it answers the
// defaults with the error (callers on the send path then refuse with 503:
// the defaults may refuse what the tenant allowed).
func NewCache(store DocReader, ttl time.Duration) *tenantcache.Cache[Settings] {
	return tenantcache.New(ttl, func(ctx context.Context, tenant string) (Settings, error) {
		return Load(ctx, store, tenant)
	})
}
