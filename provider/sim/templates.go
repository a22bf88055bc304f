package sim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
)

// DefaultTemplateReviewDelay is how long a submitted template waits for
// its review.
const DefaultTemplateReviewDelay = 2 * time.Second

// Meta's error subcode for a name and language that exist already.
const subcodeTemplateExists = 2388024

type templateObject struct {
	Name     string `json:"name"`
	Language *struct {
		Code string `json:"code"`
	} `json:"language"`
	Components []sendComponent `json:"components"`
}

// sendComponent is one component of a template send.
type sendComponent struct {
	Type    string `json:"type"`
	SubType string `json:"sub_type"`
	// Index is a string in Meta's examples; a number is taken too.
	Index      json.RawMessage `json:"index"`
	Parameters []sendParam     `json:"parameters"`
}

type sendParam struct {
	Type          string `json:"type"`
	ParameterName string `json:"parameter_name"`
}

// validateTemplate checks a template object's shape.
func validateTemplate(t *templateObject) *apiError {
	switch {
	case t == nil:
		e := errRequired("template")
		return &e
	case t.Name == "":
		e := errRequired("template['name']")
		return &e
	case t.Language == nil || t.Language.Code == "":
		e := errRequired("template['language']['code']")
		return &e
	}
	for i, c := range t.Components {
		switch strings.ToLower(c.Type) {
		case "header", "body", "button":
		default:
			e := errParam("(#100) Invalid parameter", fmt.Sprintf("Param template['components'][%d]['type'] must be one of {HEADER, BODY, BUTTON}.", i))
			return &e
		}
	}
	return nil
}

// simTemplate is one language of a template an account holds.
type simTemplate struct {
	message.Template
	// waba is the account.
	waba string
}

// templateState is what the simulator knows of templates: every account's,
// in creation order for paging. Its zero value is ready.
type templateState struct {
	mu      sync.Mutex
	list    []*simTemplate
	byKey   map[string]*simTemplate // waba + "/" + name + ":" + language
	seq     uint64
	posted  int64
	dropped int64
}

func templateKey(waba, name, lang string) string { return waba + "/" + name + ":" + lang }

// addLocked stores t for waba with an id and returns it.
func (ts *templateState) addLocked(waba string, t message.Template) *simTemplate {
	if ts.byKey == nil {
		ts.byKey = map[string]*simTemplate{}
	}
	if t.ProviderID == "" {
		ts.seq++
		t.ProviderID = strconv.FormatUint(1_000_000_000_000_000+ts.seq, 10)
	}
	st := &simTemplate{Template: t, waba: waba}
	ts.list = append(ts.list, st)
	ts.byKey[templateKey(waba, t.Name, t.Language)] = st
	return st
}

// seedTemplates stores the configured templates, APPROVED unless their
// status says otherwise.
func (s *Server) seedTemplates() {
	s.templates.mu.Lock()
	defer s.templates.mu.Unlock()
	for waba, list := range s.cfg.Templates {
		for _, t := range list {
			t.Normalize()
			if t.Status == "" {
				t.Status = message.TemplateApproved
			}
			s.templates.addLocked(waba, t)
		}
	}
}

// validateTemplates checks the configured templates: known accounts, names
// and languages Meta takes, no name and language twice.
func (c *Config) validateTemplates() error {
	wabas := map[string]bool{}
	for _, n := range c.Numbers {
		wabas[n.WABAID] = true
	}
	for waba, list := range c.Templates {
		if !wabas[waba] {
			return fmt.Errorf("templates of waba %q: no number of that account", waba)
		}
		seen := map[string]bool{}
		for _, t := range list {
			if !message.ValidTemplateName(t.Name) || !message.ValidTemplateLanguage(t.Language) {
				return fmt.Errorf("template %q (%s) of waba %s: not a name and language Meta takes", t.Name, t.Language, waba)
			}
			k := t.Name + ":" + t.Language
			if seen[k] {
				return fmt.Errorf("template %s (%s) of waba %s is given twice", t.Name, t.Language, waba)
			}
			seen[k] = true
		}
	}
	if c.TemplateReviewDelay < 0 {
		return fmt.Errorf("template review delay %v is negative", c.TemplateReviewDelay)
	}
	return nil
}

// Templates returns copies of the templates account waba holds, in
// creation order.
func (s *Server) Templates(waba string) []message.Template {
	s.templates.mu.Lock()
	defer s.templates.mu.Unlock()
	var out []message.Template
	for _, t := range s.templates.list {
		if t.waba == waba {
			c := t.Template
			c.Components = append([]message.TemplateComponent(nil), t.Components...)
			out = append(out, c)
		}
	}
	return out
}

// SetTemplateStatus changes the status of account waba's template, as
// Meta does when it pauses or disables one, and posts the
// message_template_status_update webhook. It reports whether the template
// exists.
func (s *Server) SetTemplateStatus(waba, name, language string, status message.TemplateStatus, reason string) bool {
	s.templates.mu.Lock()
	t := s.templates.byKey[templateKey(waba, name, language)]
	if t != nil {
		t.Status, t.RejectedReason = status, reason
	}
	s.templates.mu.Unlock()
	if t == nil {
		return false
	}
	s.goPostTemplateStatus(appendTemplateStatusBody(nil, waba, t.ProviderID, name, language, string(status), reason, time.Now()))
	return true
}

// TemplateWebhooks counts the template status webhooks posted and those
// given up on.
func (s *Server) TemplateWebhooks() (posted, dropped int64) {
	s.templates.mu.Lock()
	defer s.templates.mu.Unlock()
	return s.templates.posted, s.templates.dropped
}

func errTemplateMissing(name, lang string) *apiError {
	return &apiError{status: 404, typ: "OAuthException", code: 132001,
		message: "(#132001) Template name does not exist in the translation",
		details: "template name (" + name + ") does not exist in " + lang}
}

func errParamCount(what string, got, want int) *apiError {
	return &apiError{status: 400, typ: "OAuthException", code: 132000,
		message: "(#132000) Number of parameters does not match the expected number of params",
		details: fmt.Sprintf("%s: number of localizable_params (%d) does not match the expected number of params (%d)", what, got, want)}
}

func errParamFormat(details string) *apiError {
	return &apiError{status: 400, typ: "OAuthException", code: 132012,
		message: "(#132012) Parameter format does not match format in the created template", details: details}
}

// checkTemplate checks a template send against this server's templates:
// an APPROVED template of that name in that language, with the parameters
// its header, body and buttons expect.
func (s *Server) checkTemplate(t *templateObject) (message.TemplateCategory, *apiError) {
	lang := t.Language.Code
	s.templates.mu.Lock()
	var found *simTemplate
	for _, st := range s.templates.list {
		if st.Name == t.Name && st.Language == lang && (found == nil || st.Status == message.TemplateApproved) {
			found = st
		}
	}
	var tpl message.Template
	if found != nil {
		tpl = found.Template
	}
	s.templates.mu.Unlock()
	switch {
	case found == nil:
		return "", errTemplateMissing(t.Name, lang)
	case tpl.Status == message.TemplatePaused:
		return "", &apiError{status: 400, typ: "OAuthException", code: 132015, message: "(#132015) Template is Paused",
			details: "Template " + t.Name + " is paused because of low quality."}
	case tpl.Status == message.TemplateDisabled:
		return "", &apiError{status: 400, typ: "OAuthException", code: 132016, message: "(#132016) Template is disabled",
			details: "Template " + t.Name + " is disabled and can no longer be sent."}
	case tpl.Status != message.TemplateApproved:
		// Meta knows no translation that may be sent until it is approved.
		return "", errTemplateMissing(t.Name, lang)
	}
	return tpl.Category, checkParams(&tpl, t)
}

// checkParams compares a send's components with what tpl expects.
func checkParams(tpl *message.Template, t *templateObject) *apiError {
	named := tpl.Format() == message.FormatNamed
	given := map[string][]sendParam{}
	buttons := map[int]*sendComponent{}
	for i := range t.Components {
		c := &t.Components[i]
		typ := strings.ToLower(c.Type)
		if typ == "button" {
			idx, err := strconv.Atoi(strings.Trim(string(c.Index), `"`))
			if err != nil || idx < 0 || idx > 9 {
				e := errParam("(#100) Invalid parameter", fmt.Sprintf("Param template['components'][%d]['index'] must be a button index from 0 to 9.", i))
				return &e
			}
			buttons[idx] = c
			continue
		}
		given[typ] = append(given[typ], c.Parameters...)
	}
	// Header: one value per variable of a TEXT header, one media or
	// location object otherwise.
	want, mediaType := 0, ""
	var headerNames []string
	if h := tpl.Component(message.ComponentHeader); h != nil {
		switch h.Format {
		case message.HeaderText:
			vars, _ := message.ParseVariables(h.Text)
			headerNames = distinctNames(vars)
			want = len(headerNames)
		case message.HeaderImage, message.HeaderDocument, message.HeaderVideo, message.HeaderLocation:
			want, mediaType = 1, strings.ToLower(h.Format)
		}
	}
	if got := len(given["header"]); got != want {
		return errParamCount("header", got, want)
	}
	if mediaType != "" && given["header"][0].Type != mediaType {
		return errParamFormat("header: expected a parameter of type " + mediaType + ", got " + given["header"][0].Type)
	}
	if e := checkNames("header", given["header"], headerNames, named && mediaType == ""); e != nil {
		return e
	}
	var bodyNames []string
	if b := tpl.Component(message.ComponentBody); b != nil {
		vars, _ := message.ParseVariables(b.Text)
		bodyNames = distinctNames(vars)
	}
	if got := len(given["body"]); got != len(bodyNames) {
		return errParamCount("body", got, len(bodyNames))
	}
	if e := checkNames("body", given["body"], bodyNames, named); e != nil {
		return e
	}
	var tb []message.TemplateButton
	if bs := tpl.Component(message.ComponentButtons); bs != nil {
		tb = bs.Buttons
	}
	for idx := range buttons {
		if idx >= len(tb) {
			e := errParam("(#100) Invalid parameter", fmt.Sprintf("Button at index %d does not exist in template %s.", idx, tpl.Name))
			return &e
		}
	}
	for i, b := range tb {
		c := buttons[i]
		if b.Type != message.ButtonURL {
			continue
		}
		vars, _ := message.ParseVariables(b.URL)
		got := 0
		if c != nil {
			got = len(c.Parameters)
		}
		if got != len(vars) {
			return errParamCount(fmt.Sprintf("button at index %d of type Url", i), got, len(vars))
		}
	}
	return nil
}

func distinctNames(vars []message.Variable) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vars {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v.Name)
		}
	}
	return out
}

// checkNames checks the parameter_name of each text parameter: every one
// of a NAMED template's names, none for a POSITIONAL one.
func checkNames(what string, ps []sendParam, names []string, named bool) *apiError {
	have := map[string]bool{}
	for _, p := range ps {
		switch {
		case named && p.ParameterName == "":
			return errParamFormat(what + ": the template's parameters are named; parameter_name is required")
		case !named && p.ParameterName != "":
			return errParamFormat(what + ": the template's parameters are positional; parameter_name is not expected")
		}
		have[p.ParameterName] = true
	}
	if !named {
		return nil
	}
	for _, n := range names {
		if !have[n] {
			return errParamFormat(what + ": no parameter named " + n)
		}
	}
	return nil
}

// listedTemplate is one template of a listing, in Meta's shape.
type listedTemplate struct {
	Name            string                      `json:"name"`
	ParameterFormat message.ParameterFormat     `json:"parameter_format"`
	Components      []message.TemplateComponent `json:"components"`
	Language        string                      `json:"language"`
	Status          message.TemplateStatus      `json:"status"`
	Category        message.TemplateCategory    `json:"category"`
	ID              string                      `json:"id"`
	RejectedReason  string                      `json:"rejected_reason,omitempty"`
}

// templateRequest is the body of a template submission.
type templateRequest struct {
	Name                string                      `json:"name"`
	Language            string                      `json:"language"`
	Category            string                      `json:"category"`
	ParameterFormat     string                      `json:"parameter_format"`
	AllowCategoryChange bool                        `json:"allow_category_change"`
	Components          []message.TemplateComponent `json:"components"`
}

// handleTemplates serves /{version}/{waba-id}/message_templates: GET lists
// the account's templates, POST submits one for review.
func (s *Server) handleTemplates(ctx *fasthttp.RequestCtx, wabaID []byte) {
	if !s.authorized(ctx) {
		s.answerError(ctx, &errBadToken)
		return
	}
	waba := string(wabaID)
	known := false
	for _, n := range s.numList {
		if n.WABAID == waba {
			known = true
			break
		}
	}
	if !known {
		e := errUnknownObject(wabaID)
		s.answerError(ctx, &e)
		return
	}
	switch {
	case ctx.IsGet():
		s.listTemplates(ctx, waba)
	case ctx.IsPost():
		s.createTemplate(ctx, waba)
	default:
		s.unsupported(ctx, wabaID)
	}
}

// pageLimit is Meta's default page size of a listing.
const pageLimit = 25

func (s *Server) listTemplates(ctx *fasthttp.RequestCtx, waba string) {
	args := ctx.QueryArgs()
	limit := pageLimit
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			e := errParam("(#100) Param limit must be a positive integer", "Param limit must be a positive integer.")
			s.answerError(ctx, &e)
			return
		}
		limit = min(n, 1000)
	}
	start := 0
	if v := args.Peek("after"); len(v) > 0 {
		raw, err := base64.StdEncoding.DecodeString(string(v))
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			e := errParam("(#100) Invalid parameter", "The after cursor is not valid.")
			s.answerError(ctx, &e)
			return
		}
		start = n
	}
	name, status, lang := string(args.Peek("name")), strings.ToUpper(string(args.Peek("status"))), string(args.Peek("language"))
	s.templates.mu.Lock()
	var match []listedTemplate
	for _, t := range s.templates.list {
		if t.waba != waba || name != "" && !strings.Contains(t.Name, name) || status != "" && string(t.Status) != status || lang != "" && t.Language != lang {
			continue
		}
		match = append(match, listedTemplate{Name: t.Name, ParameterFormat: t.Format(), Components: t.Components, Language: t.Language,
			Status: t.Status, Category: t.Category, ID: t.ProviderID, RejectedReason: t.RejectedReason})
	}
	s.templates.mu.Unlock()
	start = min(start, len(match))
	end := min(start+limit, len(match))
	cursor := func(i int) string { return base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(i))) }
	type cursors struct {
		Before string `json:"before"`
		After  string `json:"after"`
	}
	ans := struct {
		Data   []listedTemplate `json:"data"`
		Paging *struct {
			Cursors cursors `json:"cursors"`
			Next    string  `json:"next,omitempty"`
		} `json:"paging,omitempty"`
	}{Data: match[start:end]}
	if ans.Data == nil {
		ans.Data = []listedTemplate{}
	}
	if end > start {
		ans.Paging = &struct {
			Cursors cursors `json:"cursors"`
			Next    string  `json:"next,omitempty"`
		}{Cursors: cursors{Before: cursor(start), After: cursor(end)}}
		if end < len(match) {
			ans.Paging.Next = s.URL() + string(ctx.Path()) + "?limit=" + strconv.Itoa(limit) + "&after=" + cursor(end)
		}
	}
	body, _ := json.Marshal(ans)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func (s *Server) createTemplate(ctx *fasthttp.RequestCtx, waba string) {
	var req templateRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		s.answerError(ctx, &errNotJSON)
		return
	}
	for _, f := range []struct{ name, v string }{{"name", req.Name}, {"language", req.Language}, {"category", req.Category}} {
		if f.v == "" {
			e := errRequired(f.name)
			s.answerError(ctx, &e)
			return
		}
	}
	if len(req.Components) == 0 {
		e := errRequired("components")
		s.answerError(ctx, &e)
		return
	}
	t := message.Template{Name: req.Name, Language: req.Language, Category: message.TemplateCategory(req.Category),
		ParameterFormat: message.ParameterFormat(req.ParameterFormat), Components: req.Components}
	t.Normalize()
	// The create call refuses what is malformed; the review rejects the
	// rest later.
	var review []message.Reason
	for _, r := range t.Validate() {
		if r.Review() {
			review = append(review, r)
			continue
		}
		e := errParam("(#100) Invalid parameter", fmt.Sprintf("%s %s: %s", r.Component, r.Field, r.Message))
		s.answerError(ctx, &e)
		return
	}
	t.Status = message.TemplatePending
	s.templates.mu.Lock()
	if s.templates.byKey[templateKey(waba, t.Name, t.Language)] != nil {
		s.templates.mu.Unlock()
		s.answerError(ctx, &apiError{status: 400, typ: "OAuthException", code: 100, subcode: subcodeTemplateExists,
			message: "(#100) Invalid parameter",
			details: "Content in this language already exists: there is already " + t.Language + " content for " + t.Name + "."})
		return
	}
	st := s.templates.addLocked(waba, t)
	id := st.ProviderID
	s.templates.mu.Unlock()
	s.scheduleReview(waba, t.Name, t.Language, review)

	out := append(make([]byte, 0, 96), `{"id":"`...)
	out = append(out, id...)
	out = append(out, `","status":"PENDING","category":`...)
	out = message.AppendJSONString(out, string(t.Category))
	out = append(out, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// scheduleReview approves the template after the review delay, or rejects
// it when review found problems, and posts the status webhook.
func (s *Server) scheduleReview(waba, name, lang string, problems []message.Reason) {
	if s.state.Load() != stateRunning {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(s.cfg.TemplateReviewDelay)
		defer t.Stop()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		status, reason := message.TemplateApproved, ""
		if len(problems) > 0 {
			// Meta's reason for a format the reviewers do not take.
			status, reason = message.TemplateRejected, "INVALID_FORMAT"
		}
		s.templates.mu.Lock()
		st := s.templates.byKey[templateKey(waba, name, lang)]
		id := ""
		if st != nil && st.Status == message.TemplatePending {
			st.Status, st.RejectedReason, id = status, reason, st.ProviderID
		}
		s.templates.mu.Unlock()
		if id == "" {
			return
		}
		s.postTemplateStatus(appendTemplateStatusBody(nil, waba, id, name, lang, string(status), reason, time.Now()))
	}()
}

// goPostTemplateStatus posts body from a goroutine of its own.
func (s *Server) goPostTemplateStatus(body []byte) {
	if s.state.Load() != stateRunning {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.postTemplateStatus(body)
	}()
}

// appendTemplateStatusBody writes Meta's message_template_status_update
// delivery.
func appendTemplateStatusBody(b []byte, waba, id, name, lang, event, reason string, at time.Time) []byte {
	if reason == "" {
		reason = "NONE"
	}
	b = append(b, `{"object":"whatsapp_business_account","entry":[{"id":`...)
	b = message.AppendJSONString(b, waba)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, at.Unix(), 10)
	b = append(b, `,"changes":[{"value":{"event":`...)
	b = message.AppendJSONString(b, event)
	b = append(b, `,"message_template_id":`...)
	b = append(b, id...) // digits: Meta writes the id as a number
	b = append(b, `,"message_template_name":`...)
	b = message.AppendJSONString(b, name)
	b = append(b, `,"message_template_language":`...)
	b = message.AppendJSONString(b, lang)
	b = append(b, `,"reason":`...)
	b = message.AppendJSONString(b, reason)
	return append(b, `},"field":"message_template_status_update"}]}]}`...)
}

// postTemplateStatus posts a signed template status webhook, retrying
// with the status webhooks' backoff until it is taken, the retry time
// runs out or the server stops.
func (s *Server) postTemplateStatus(body []byte) {
	if s.cfg.WebhookURL == "" {
		return
	}
	sig := meta.AppendSignature(nil, body, []byte(s.cfg.AppSecret))
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	first := time.Now()
	for attempt := 1; ; attempt++ {
		req.Reset()
		req.SetRequestURI(s.cfg.WebhookURL)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentTypeBytes(contentTypeJSON)
		req.Header.SetBytesKV(headerSignature, sig)
		req.SetBody(body)
		err := s.client.DoTimeout(req, resp, s.cfg.WebhookTimeout)
		if err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
			s.templates.mu.Lock()
			s.templates.posted++
			s.templates.mu.Unlock()
			return
		}
		if s.cfg.WebhookMaxAttempts > 0 && attempt >= s.cfg.WebhookMaxAttempts || time.Since(first) >= s.cfg.WebhookRetryFor {
			s.templates.mu.Lock()
			s.templates.dropped++
			s.templates.mu.Unlock()
			return
		}
		t := time.NewTimer(s.backoff(attempt))
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
