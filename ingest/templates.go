package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Limits of what a template send carries besides the template.
const (
	maxTemplateParams = 100
	maxConvMetaKeys   = 50
	maxConvMetaKey    = 64
	maxConvMetaValue  = 1024
)

// templateJSON is a template as the API shows it (seed 001's template
// details: name, category, language, status, components, parameters,
// example).
type templateJSON struct {
	Name            string                      `json:"name"`
	Category        message.TemplateCategory    `json:"category"`
	Group           string                      `json:"group"`
	Language        string                      `json:"language"`
	Status          message.TemplateStatus      `json:"status"`
	RejectedReason  *string                     `json:"rejected_reason"`
	ParameterFormat message.ParameterFormat     `json:"parameter_format"`
	Components      []message.TemplateComponent `json:"components"`
	// Parameters are what a send takes, in order, with where each goes.
	Parameters []message.TemplateParam `json:"parameters"`
	Example    templateExampleJSON     `json:"example"`
	ProviderID *string                 `json:"provider_template_id"`
	CreatedAt  *string                 `json:"created_at"`
	UpdatedAt  *string                 `json:"updated_at"`
	// Languages lists every language of the name with its status (the
	// details call only).
	Languages []templateLanguageJSON `json:"languages,omitempty"`
}

// templateExampleJSON is the template's sample values and the body they
// give.
type templateExampleJSON struct {
	Parameters map[string]string `json:"parameters"`
	Text       string            `json:"text"`
}

type templateLanguageJSON struct {
	Language string                 `json:"language"`
	Status   message.TemplateStatus `json:"status"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(ms int64) *string {
	if ms == 0 {
		return nil
	}
	s := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	return &s
}

func viewTemplate(t *message.Template) templateJSON {
	ex := t.ExampleValues()
	params := t.Parameters()
	if params == nil {
		params = []message.TemplateParam{}
	}
	comps := t.Components
	if comps == nil {
		comps = []message.TemplateComponent{}
	}
	return templateJSON{Name: t.Name, Category: t.Category, Group: t.Group, Language: t.Language, Status: t.Status,
		RejectedReason: optString(t.RejectedReason), ParameterFormat: t.Format(), Components: comps, Parameters: params,
		Example: templateExampleJSON{Parameters: ex, Text: t.Render(ex)}, ProviderID: optString(t.ProviderID),
		CreatedAt: optTime(t.CreatedMS), UpdatedAt: optTime(t.UpdatedMS)}
}

func languagesOf(ts []message.Template) []templateLanguageJSON {
	out := make([]templateLanguageJSON, len(ts))
	for i := range ts {
		out[i] = templateLanguageJSON{Language: ts[i].Language, Status: ts[i].Status}
	}
	return out
}

// handleTemplateList serves GET /api/v1/whatsapp/templates?language=&category=&status=:
// the tenant's templates, category matching Meta's category (any case) or
// the template's group (seed 001 asks for category=guest_services).
func (s *Server) handleTemplateList(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	args := ctx.QueryArgs()
	f := redis.TemplateFilter{Language: string(args.Peek("language")), Category: string(args.Peek("category"))}
	if st := string(args.Peek("status")); st != "" {
		status, ok := message.TemplateStatusFromMeta(st)
		if !ok || !strings.EqualFold(string(status), st) {
			writeError(ctx, invalidRequest("status is not a template status", map[string]any{"field": "status", "value": st, "allowed": message.TemplateStatuses}))
			return
		}
		f.Status = status
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	ts, err := s.store.Templates(rctx, p.Tenant.ID, f)
	cancel()
	if err != nil {
		s.log.Warn("templates", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := struct {
		Templates []templateJSON `json:"templates"`
		Total     int            `json:"total"`
	}{Templates: make([]templateJSON, len(ts)), Total: len(ts)}
	for i := range ts {
		out.Templates[i] = viewTemplate(&ts[i])
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleTemplateGet serves GET /api/v1/whatsapp/templates/{name}[?language=]:
// one language of the template (without language: its only one, else the
// first approved one in alphabetical order, else the first), with every
// language it has.
func (s *Server) handleTemplateGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	name, lang := ps[0], string(ctx.QueryArgs().Peek("language"))
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	var all []message.Template
	var err error
	if message.ValidTemplateName(name) {
		all, err = s.store.Templates(rctx, p.Tenant.ID, redis.TemplateFilter{Name: name})
	}
	cancel()
	if err != nil {
		s.log.Warn("template", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	if len(all) == 0 {
		writeError(ctx, noTemplate(name))
		return
	}
	pick := -1
	for i := range all {
		switch {
		case lang != "":
			if all[i].Language == lang {
				pick = i
			}
		case pick < 0 && all[i].Status == message.TemplateApproved:
			pick = i
		}
	}
	if lang == "" && pick < 0 {
		pick = 0
	}
	if pick < 0 {
		writeError(ctx, noTranslation(name, lang, all))
		return
	}
	v := viewTemplate(&all[pick])
	v.Languages = languagesOf(all)
	writeJSON(ctx, fasthttp.StatusOK, v)
}

func noTemplate(name string) *apiError {
	return &apiError{Code: message.CodeTemplateNotFound, Message: "No template named " + quote(name),
		Details:         map[string]any{"template_name": name},
		RecoveryOptions: []string{"List the templates with GET /api/v1/whatsapp/templates", "Submit the template with POST /api/v1/whatsapp/templates (admin)"}}
}

func noTranslation(name, lang string, all []message.Template) *apiError {
	return &apiError{Code: message.CodeTemplateNotFound, Message: "Template " + quote(name) + " has no " + quote(lang) + " translation",
		Details:         map[string]any{"template_name": name, "language": lang, "languages": languagesOf(all)},
		RecoveryOptions: []string{"Send it in one of the languages listed", "Submit the translation with POST /api/v1/whatsapp/templates (admin)"}}
}

// templateCreateRequest is the body of POST /api/v1/whatsapp/templates
// (seed 001): Meta's template definition plus the hotel's group.
type templateCreateRequest struct {
	Name            string                      `json:"name"`
	Category        string                      `json:"category"`
	Language        string                      `json:"language"`
	Group           string                      `json:"group"`
	ParameterFormat string                      `json:"parameter_format"`
	Components      []message.TemplateComponent `json:"components"`
}

// handleTemplateCreate serves POST /api/v1/whatsapp/templates (admin): a
// template that passes Meta's rules is stored PENDING and queued for
// submission to the provider; 422 lists every reason Meta would reject it.
func (s *Server) handleTemplateCreate(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r templateCreateRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	// What is missing is a bad request, not a template Meta would reject.
	for _, f := range []struct{ name, v string }{{"name", r.Name}, {"language", r.Language}, {"category", r.Category}} {
		if strings.TrimSpace(f.v) == "" {
			writeError(ctx, invalidRequest(f.name+" is required", map[string]any{"field": f.name}))
			return
		}
	}
	if len(r.Components) == 0 {
		writeError(ctx, invalidRequest("components is required (a BODY at least)", map[string]any{"field": "components"}))
		return
	}
	t := &message.Template{Name: r.Name, Language: r.Language, Category: message.TemplateCategory(r.Category), Group: r.Group,
		ParameterFormat: message.ParameterFormat(r.ParameterFormat), Components: r.Components}
	t.Normalize()
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	// A name and language taken already is the answer, whatever the body.
	if message.ValidTemplateName(t.Name) && message.ValidTemplateLanguage(t.Language) {
		prev, err := s.store.Template(rctx, p.Tenant.ID, t.Name, t.Language)
		if err == nil {
			writeError(ctx, templateExists(t, prev))
			return
		}
		if !errors.Is(err, redis.ErrNotFound) {
			s.log.Warn("template", "err", err)
			writeError(ctx, unavailable("stored"))
			return
		}
	}
	if reasons := t.Validate(); len(reasons) > 0 {
		writeError(ctx, &apiError{Code: message.CodeTemplateRejected,
			Message: "Meta would reject this template: " + reasons[0].Component + " " + reasons[0].Field + ": " + reasons[0].Message,
			Details: map[string]any{"name": r.Name, "language": r.Language, "reasons": reasons},
			RecoveryOptions: []string{"Fix every reason listed and submit the template again",
				"Variables are {{1}}, {{2}}… or {{guest_name}}; keep words around them and give sample values (example) for all or none"}})
		return
	}
	err := s.store.CreateTemplate(rctx, p.Tenant.ID, t)
	if errors.Is(err, redis.ErrTemplateExists) {
		prev, _ := s.store.Template(rctx, p.Tenant.ID, t.Name, t.Language)
		writeError(ctx, templateExists(t, prev))
		return
	}
	if err != nil {
		s.log.Warn("create template", "err", err)
		writeError(ctx, unavailable("stored"))
		return
	}
	ctx.Response.Header.Set("Location", apiPrefix+"templates/"+t.Name+"?language="+t.Language)
	v := viewTemplate(t)
	v.Languages = []templateLanguageJSON{{Language: t.Language, Status: t.Status}}
	writeJSON(ctx, fasthttp.StatusCreated, v)
}

// templateExists is the answer to a template whose name and language the
// tenant has already (prev, when it could be read).
func templateExists(t, prev *message.Template) *apiError {
	d := map[string]any{"name": t.Name, "language": t.Language}
	if prev != nil {
		d["status"] = prev.Status
	}
	return &apiError{Code: message.CodeTemplateExists,
		Message: "Template " + quote(t.Name) + " exists already in " + quote(t.Language), Details: d,
		RecoveryOptions: []string{"Submit it under a new name, or in another language"}}
}

// templateSendRequest is the body of POST /api/v1/whatsapp/templates/send
// (seed 001) plus the references and delivery options every send takes.
type templateSendRequest struct {
	GuestPhone   string `json:"guest_phone"`
	TemplateName string `json:"template_name"`
	Language     string `json:"language"`
	// Parameters: {"guest_name": "John"} by name (or {"1": "John"}), or
	// ["John", …] for the body's {{1}}, {{2}}…; see message.Template.Parameters.
	Parameters           json.RawMessage `json:"parameters"`
	ConversationMetadata json.RawMessage `json:"conversation_metadata"`
	ConversationID       string          `json:"conversation_id"`
	StaffMemberID        string          `json:"staff_member_id"`
	From                 string          `json:"from"`
	delivery
}

// handleTemplateSend serves POST /api/v1/whatsapp/templates/send: an
// approved template, its parameters mapped onto Meta's components, queued
// as a template message (which needs no open window).
func (s *Server) handleTemplateSend(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r templateSendRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if e := checkGuestPhone(r.GuestPhone); e != nil {
		writeError(ctx, e)
		return
	}
	values, e := decodeTemplateParams(r.Parameters, "parameters")
	if e != nil {
		writeError(ctx, e)
		return
	}
	convMeta, e := decodeConvMeta(r.ConversationMetadata)
	if e != nil {
		writeError(ctx, e)
		return
	}
	tr := s.templateResolver(p)
	t, e := tr.resolve(r.TemplateName, r.Language)
	if e != nil {
		writeError(ctx, e)
		return
	}
	if e := tr.headerMedia(t, values, "parameters"); e != nil {
		writeError(ctx, e)
		return
	}
	content, preview, e := buildTemplateSend(t, values, "parameters")
	if e != nil {
		writeError(ctx, e)
		return
	}
	o := &outbound{GuestPhone: r.GuestPhone, From: r.From, Type: message.TypeTemplate, Content: content,
		ConversationID: r.ConversationID, StaffMemberID: r.StaffMemberID, Template: t.Name, Preview: preview,
		ConversationMeta: convMeta, Delivery: &r.delivery}
	if r.Language != "" && t.Language != r.Language {
		o.Language, o.RequestedLanguage = t.Language, r.Language
	}
	var a redis.EnqueueArgs
	s.enqueue(ctx, p, o, &a, make([]byte, 0, 128))
}

// decodeTemplateParams reads a send's parameters: an object of strings (or
// numbers) by key, or an array of strings for the body's {{1}}, {{2}}….
// field names the parameters in errors ("parameters", "messages[3].parameters").
func decodeTemplateParams(raw json.RawMessage, field string) (map[string]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	values := map[string]string{}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return values, nil
	}
	scalar := func(v json.RawMessage, name string) (string, *apiError) {
		v = bytes.TrimSpace(v)
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if json.Unmarshal(v, &s) != nil {
				return "", invalidRequest(name+" is not a valid string", map[string]any{"field": name})
			}
			return s, nil
		case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
			var n json.Number
			if json.Unmarshal(v, &n) != nil {
				return "", invalidRequest(name+" is not a valid number", map[string]any{"field": name})
			}
			return n.String(), nil
		}
		return "", invalidRequest(name+" must be a string", map[string]any{"field": name})
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, invalidRequest(field+" must be an object of strings", map[string]any{"field": field})
		}
		if len(m) > maxTemplateParams {
			return nil, invalidRequest(field+" holds too many values", map[string]any{"field": field, "max": maxTemplateParams})
		}
		for k, v := range m {
			s, e := scalar(v, field+"."+k)
			if e != nil {
				return nil, e
			}
			values[k] = s
		}
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, invalidRequest(field+" must be an array of strings", map[string]any{"field": field})
		}
		if len(list) > maxTemplateParams {
			return nil, invalidRequest(field+" holds too many values", map[string]any{"field": field, "max": maxTemplateParams})
		}
		for i, v := range list {
			s, e := scalar(v, field+"["+strconv.Itoa(i)+"]")
			if e != nil {
				return nil, e
			}
			values[strconv.Itoa(i+1)] = s
		}
	default:
		return nil, invalidRequest(field+" must be an object ({\"guest_name\": \"John\"}) or an array of strings", map[string]any{"field": field})
	}
	return values, nil
}

// decodeConvMeta reads conversation_metadata: an object of strings (numbers
// and booleans are taken as their text), merged into the conversation.
func decodeConvMeta(raw json.RawMessage) (map[string]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, invalidRequest("conversation_metadata must be an object of strings", map[string]any{"field": "conversation_metadata"})
	}
	if len(m) > maxConvMetaKeys {
		return nil, invalidRequest("conversation_metadata holds too many keys", map[string]any{"field": "conversation_metadata", "max": maxConvMetaKeys})
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		field := "conversation_metadata." + k
		if k == "" || len(k) > maxConvMetaKey || !utf8.ValidString(k) {
			return nil, invalidRequest("conversation_metadata keys are 1 to 64 characters", map[string]any{"field": "conversation_metadata", "max_length": maxConvMetaKey})
		}
		v = bytes.TrimSpace(v)
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if json.Unmarshal(v, &s) != nil {
				return nil, invalidRequest(field+" is not a valid string", map[string]any{"field": field})
			}
		case bytes.Equal(v, []byte("true")) || bytes.Equal(v, []byte("false")):
			s = string(v)
		case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
			var n json.Number
			if json.Unmarshal(v, &n) != nil {
				return nil, invalidRequest(field+" is not a valid number", map[string]any{"field": field})
			}
			s = n.String()
		default:
			return nil, invalidRequest(field+" must be a string", map[string]any{"field": field})
		}
		if utf8.RuneCountInString(s) > maxConvMetaValue {
			return nil, invalidRequest(field+" is too long", map[string]any{"field": field, "max_length": maxConvMetaValue})
		}
		out[k] = s
	}
	return out, nil
}

// buildTemplateSend maps values onto t; parameter errors answer 400 and
// name each parameter under field.
func buildTemplateSend(t *message.Template, values map[string]string, field string) ([]byte, string, *apiError) {
	content, preview, err := t.BuildSend(values)
	if err == nil {
		return content, preview, nil
	}
	var pe message.ParamErrors
	if !errors.As(err, &pe) || len(pe) == 0 {
		return nil, "", &apiError{Code: message.CodeInternal, Message: "The template could not be built"}
	}
	expected := []string{}
	for _, p := range t.Parameters() {
		expected = append(expected, p.Key)
	}
	first := field + "." + pe[0].Param
	return nil, "", &apiError{Code: message.CodeInvalidRequest, Message: first + " " + pe[0].Problem,
		Details:         map[string]any{"field": first, "errors": pe, "template_name": t.Name, "language": t.Language, "parameters": expected},
		RecoveryOptions: []string{"Give every parameter the template lists (GET /api/v1/whatsapp/templates/" + t.Name + "), each once, none empty"}}
}

// templateResolver finds the approved templates of one request's tenant,
// each name and language once.
type templateResolver struct {
	s      *Server
	tenant string
	seen   map[string]resolved
}

type resolved struct {
	t *message.Template
	e *apiError
}

// nearest is the approved translation of all (one template's) nearest to
// lang when the tenant's settings allow it (template_language_fallback):
// the language itself without a region (es for es_MX), then another
// region of it (the first by code), then the tenant's default language;
// nil when none is approved.
func (tr *templateResolver) nearest(ctx context.Context, all []message.Template, lang string) *message.Template {
	st, err := tr.s.settings.Get(ctx, tr.tenant)
	if err != nil || !st.TemplateLanguageFallback {
		return nil
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b message.Template) int { return strings.Compare(a.Language, b.Language) })
	pick := func(ok func(string) bool) *message.Template {
		for i := range sorted {
			if sorted[i].Language != lang && sorted[i].Sendable() && ok(sorted[i].Language) {
				return &sorted[i]
			}
		}
		return nil
	}
	base, _, _ := strings.Cut(lang, "_")
	if t := pick(func(l string) bool { return l == base }); t != nil {
		return t
	}
	if t := pick(func(l string) bool { b, _, _ := strings.Cut(l, "_"); return b == base }); t != nil {
		return t
	}
	if d := st.DefaultTemplateLanguage; d != "" {
		return pick(func(l string) bool { return l == d })
	}
	return nil
}

func (s *Server) templateResolver(p Principal) *templateResolver {
	return &templateResolver{s: s, tenant: p.Tenant.ID, seen: map[string]resolved{}}
}

// resolve returns the approved template name in lang, or the answer why
// there is none: 404 TEMPLATE_NOT_FOUND for a missing template, a missing
// translation (with the languages it has) or one not approved (with its
// status). Without lang, the template's only language is taken.
func (tr *templateResolver) resolve(name, lang string) (*message.Template, *apiError) {
	k := name + "\x00" + lang
	if r, ok := tr.seen[k]; ok {
		return r.t, r.e
	}
	t, e := tr.lookup(name, lang)
	tr.seen[k] = resolved{t, e}
	return t, e
}

func (tr *templateResolver) lookup(name, lang string) (*message.Template, *apiError) {
	if name == "" {
		return nil, invalidRequest("template_name is required", map[string]any{"field": "template_name"})
	}
	if !message.ValidTemplateName(name) {
		return nil, noTemplate(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tr.s.cfg.EnqueueTimeout)
	defer cancel()
	all, err := tr.s.store.Templates(ctx, tr.tenant, redis.TemplateFilter{Name: name})
	if err != nil {
		tr.s.log.Warn("template", "err", err)
		return nil, unavailable("queued")
	}
	if len(all) == 0 {
		return nil, noTemplate(name)
	}
	var t *message.Template
	switch {
	case lang == "" && len(all) == 1:
		t = &all[0]
	case lang == "":
		langs := languagesOf(all)
		sort.Slice(langs, func(i, j int) bool { return langs[i].Language < langs[j].Language })
		return nil, invalidRequest("language is required: template "+quote(name)+" exists in several languages",
			map[string]any{"field": "language", "languages": langs})
	default:
		for i := range all {
			if all[i].Language == lang {
				t = &all[i]
			}
		}
		if t == nil || !t.Sendable() {
			if near := tr.nearest(ctx, all, lang); near != nil {
				return near, nil
			}
		}
		if t == nil {
			return nil, noTranslation(name, lang, all)
		}
	}
	if !t.Sendable() {
		d := map[string]any{"template_name": name, "language": t.Language, "status": t.Status}
		if t.RejectedReason != "" {
			d["rejected_reason"] = t.RejectedReason
		}
		return nil, &apiError{Code: message.CodeTemplateNotFound,
			Message: "Template " + quote(name) + " (" + t.Language + ") is not approved: its status is " + string(t.Status),
			Details: d, RecoveryOptions: []string{"Wait for Meta's review (PENDING), or fix and submit it again (REJECTED)", "Send another approved template"}}
	}
	return t, nil
}

// isBatchTemplate reports whether message m of batch r is a template
// message: it names a template or gives parameters, or the batch names one
// and m has no content.
func isBatchTemplate(r *batchRequest, m *batchMessage) bool {
	return m.TemplateName != "" || len(bytes.TrimSpace(m.Parameters)) > 0 || m.MessageType == string(message.TypeTemplate) ||
		r.TemplateName != "" && len(bytes.TrimSpace(m.Content)) == 0
}

// batchTemplate builds message i of batch r as a template message, checked
// as templates/send checks it; errors name the message's fields.
func batchTemplate(tr *templateResolver, r *batchRequest, m *batchMessage, i int) ([]byte, string, *apiError) {
	field := "messages[" + strconv.Itoa(i) + "]"
	switch {
	case len(bytes.TrimSpace(m.Content)) > 0:
		return nil, "", invalidRequest(field+": give content or a template, not both", map[string]any{"field": field + ".content"})
	case m.MessageType != "" && m.MessageType != string(message.TypeTemplate):
		return nil, "", invalidRequest(field+".message_type must be template for a template message", map[string]any{"field": field + ".message_type"})
	}
	name, lang := m.TemplateName, m.Language
	if name == "" {
		name = r.TemplateName
	}
	if lang == "" && m.TemplateName == "" {
		lang = r.Language
	}
	if name == "" {
		return nil, "", invalidRequest(field+".template_name is required", map[string]any{"field": field + ".template_name"})
	}
	values, e := decodeTemplateParams(m.Parameters, field+".parameters")
	if e != nil {
		return nil, "", e
	}
	t, e := tr.resolve(name, lang)
	if e != nil {
		ce := *e // the resolver keeps e for the next message
		ce.Message = field + ": " + e.Message
		return nil, "", &ce
	}
	if e := tr.headerMedia(t, values, field+".parameters"); e != nil {
		return nil, "", e
	}
	return buildTemplateSend(t, values, field+".parameters")
}

// headerMedia checks a header_media_id that names one of wagate's uploads
// ("med_…"): it must be the tenant's and of the header's type, as in
// send-media; a document header without header_media_filename takes the
// upload's name. Other ids are the provider's own and pass as they are.
func (tr *templateResolver) headerMedia(t *message.Template, values map[string]string, field string) *apiError {
	id := values[message.ParamHeaderMediaID]
	if !strings.HasPrefix(id, mediakit.IDPrefix) {
		return nil
	}
	name := field + "." + message.ParamHeaderMediaID
	rec, e := tr.s.tenantMedia(tr.tenant, id, name)
	if e != nil {
		return e
	}
	var format string
	for _, c := range t.Components {
		if strings.EqualFold(c.Type, message.ComponentHeader) {
			format = strings.ToLower(c.Format)
		}
	}
	if format != "" && rec.Type != format {
		return invalidRequest(name+" is "+article(rec.Type)+" "+rec.Type+" ("+rec.MIME+"), and the template's header is "+article(format)+" "+format,
			map[string]any{"field": name, "media_type": rec.Type, "header_format": format})
	}
	if format == "document" && values[message.ParamHeaderMediaFilename] == "" && rec.Filename != "" {
		values[message.ParamHeaderMediaFilename] = rec.Filename
	}
	return nil
}
