package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TemplateCategory is Meta's category of a message template; it decides
// how Meta reviews and prices it.
type TemplateCategory string

// Meta's template categories.
const (
	CategoryMarketing      TemplateCategory = "MARKETING"
	CategoryUtility        TemplateCategory = "UTILITY"
	CategoryAuthentication TemplateCategory = "AUTHENTICATION"
)

// TemplateStatus is where a template is in Meta's review. Only an
// APPROVED template may be sent.
type TemplateStatus string

// The statuses Meta gives templates.
const (
	TemplateApproved        TemplateStatus = "APPROVED"
	TemplatePending         TemplateStatus = "PENDING"
	TemplateRejected        TemplateStatus = "REJECTED"
	TemplatePaused          TemplateStatus = "PAUSED"
	TemplateDisabled        TemplateStatus = "DISABLED"
	TemplateInAppeal        TemplateStatus = "IN_APPEAL"
	TemplatePendingDeletion TemplateStatus = "PENDING_DELETION"
	TemplateDeleted         TemplateStatus = "DELETED"
	TemplateArchived        TemplateStatus = "ARCHIVED"
	TemplateLimitExceeded   TemplateStatus = "LIMIT_EXCEEDED"
)

// TemplateStatuses lists every TemplateStatus, for filters and checks.
var TemplateStatuses = []TemplateStatus{TemplateApproved, TemplatePending, TemplateRejected, TemplatePaused,
	TemplateDisabled, TemplateInAppeal, TemplatePendingDeletion, TemplateDeleted, TemplateArchived, TemplateLimitExceeded}

// TemplateStatusFromMeta maps a template status, or the event of a
// message_template_status_update webhook, to a TemplateStatus. ok is false
// for events that do not change whether the template may be sent (FLAGGED
// is a quality warning, LOCKED/UNLOCKED are about editing) and for ones it
// does not know.
func TemplateStatusFromMeta(s string) (TemplateStatus, bool) {
	up := TemplateStatus(strings.ToUpper(strings.TrimSpace(s)))
	for _, st := range TemplateStatuses {
		if up == st {
			return st, true
		}
	}
	if up == "REINSTATED" {
		// A paused template that Meta let out again.
		return TemplateApproved, true
	}
	return "", false
}

// ParameterFormat says how a template's variables are written: {{1}}
// (POSITIONAL) or {{guest_name}} (NAMED).
type ParameterFormat string

// The two parameter formats.
const (
	FormatPositional ParameterFormat = "POSITIONAL"
	FormatNamed      ParameterFormat = "NAMED"
)

// Component types of a template.
const (
	ComponentHeader  = "HEADER"
	ComponentBody    = "BODY"
	ComponentFooter  = "FOOTER"
	ComponentButtons = "BUTTONS"
)

// Header formats.
const (
	HeaderText     = "TEXT"
	HeaderImage    = "IMAGE"
	HeaderDocument = "DOCUMENT"
	HeaderVideo    = "VIDEO"
	HeaderLocation = "LOCATION"
)

// Button types wagate submits and sends.
const (
	ButtonQuickReply  = "QUICK_REPLY"
	ButtonURL         = "URL"
	ButtonPhoneNumber = "PHONE_NUMBER"
)

// Meta's limits on templates.
const (
	MaxTemplateNameLen     = 512
	MaxTemplateBodyRunes   = 1024
	MaxTemplateHeaderRunes = 60
	MaxTemplateFooterRunes = 60
	MaxTemplateButtons     = 10
	MaxButtonTextRunes     = 25
	MaxURLButtons          = 2
	MaxPhoneButtons        = 1
	MaxButtonURLLen        = 2000
	MaxButtonPhoneLen      = 20
	// MaxTemplateParamRunes bounds one text parameter of a send (Meta's
	// TextParameter.maxLength).
	MaxTemplateParamRunes = 32768
)

// Template is one language of a message template: Meta's definition (the
// JSON names are Meta's, so a create body decodes into it as it is) plus
// what wagate keeps about it.
type Template struct {
	// Name is lowercase letters, digits and underscores, at most 512.
	Name string `json:"name"`
	// Language is Meta's language code: "en", "en_US", "es", "pt_BR".
	Language string           `json:"language"`
	Category TemplateCategory `json:"category"`
	// Group is the hotel's own grouping (guest_journey, guest_services,
	// marketing, service_requests…); Meta never sees it.
	Group string `json:"group,omitempty"`
	// ParameterFormat is the declared format; empty means the one its
	// variables are written in (see Format).
	ParameterFormat ParameterFormat     `json:"parameter_format,omitempty"`
	Components      []TemplateComponent `json:"components"`

	// Status is Meta's review status.
	Status TemplateStatus `json:"status,omitempty"`
	// RejectedReason is Meta's reason for a rejection, pause or disabling.
	RejectedReason string `json:"rejected_reason,omitempty"`
	// ProviderID is Meta's id of the template, once submitted.
	ProviderID string `json:"provider_template_id,omitempty"`
	// StatusAtMS is when the provider reported Status (Unix ms), so that a
	// late repeat of an older webhook does not undo a newer status.
	StatusAtMS int64 `json:"status_at_ms,omitempty"`
	// CreatedMS and UpdatedMS are Unix milliseconds.
	CreatedMS int64 `json:"created_ms,omitempty"`
	UpdatedMS int64 `json:"updated_ms,omitempty"`
}

// TemplateComponent is a HEADER, BODY, FOOTER or BUTTONS component.
type TemplateComponent struct {
	Type string `json:"type"`
	// Format is the header's: TEXT, IMAGE, DOCUMENT, VIDEO or LOCATION.
	Format  string           `json:"format,omitempty"`
	Text    string           `json:"text,omitempty"`
	Buttons []TemplateButton `json:"buttons,omitempty"`
	Example *TemplateExample `json:"example,omitempty"`
}

// TemplateButton is one button of a BUTTONS component.
type TemplateButton struct {
	Type string `json:"type"`
	Text string `json:"text"`
	// URL of a URL button; it may end with the variable {{1}}, the suffix
	// a send gives.
	URL string `json:"url,omitempty"`
	// PhoneNumber of a PHONE_NUMBER button.
	PhoneNumber string `json:"phone_number,omitempty"`
	// Example is a URL button's sample suffix.
	Example []string `json:"example,omitempty"`
}

// TemplateExample holds the sample values Meta's reviewers read, in Meta's
// shapes: positional values in order, named ones by name.
type TemplateExample struct {
	HeaderText      []string       `json:"header_text,omitempty"`
	HeaderTextNamed []NamedExample `json:"header_text_named_params,omitempty"`
	// HeaderHandle is an uploaded sample of a media header.
	HeaderHandle  []string       `json:"header_handle,omitempty"`
	BodyText      [][]string     `json:"body_text,omitempty"`
	BodyTextNamed []NamedExample `json:"body_text_named_params,omitempty"`
}

// NamedExample is the sample value of one named variable.
type NamedExample struct {
	ParamName string `json:"param_name"`
	Example   string `json:"example"`
}

// Normalize upper-cases what Meta spells in capitals (category, parameter
// format, component types, header formats, button types), so that "body"
// and "BODY" mean the same.
func (t *Template) Normalize() {
	t.Category = TemplateCategory(strings.ToUpper(string(t.Category)))
	t.ParameterFormat = ParameterFormat(strings.ToUpper(string(t.ParameterFormat)))
	for i := range t.Components {
		c := &t.Components[i]
		c.Type = strings.ToUpper(c.Type)
		c.Format = strings.ToUpper(c.Format)
		for j := range c.Buttons {
			c.Buttons[j].Type = strings.ToUpper(c.Buttons[j].Type)
		}
	}
}

// Component returns the template's component of type typ, or nil.
func (t *Template) Component(typ string) *TemplateComponent {
	for i := range t.Components {
		if t.Components[i].Type == typ {
			return &t.Components[i]
		}
	}
	return nil
}

// Format is the declared parameter format, or the one the header and body
// variables are written in (POSITIONAL when there are none).
func (t *Template) Format() ParameterFormat {
	if t.ParameterFormat != "" {
		return t.ParameterFormat
	}
	for _, typ := range [...]string{ComponentHeader, ComponentBody} {
		c := t.Component(typ)
		if c == nil {
			continue
		}
		vars, _ := ParseVariables(c.Text)
		for _, v := range vars {
			if !v.Positional() {
				return FormatNamed
			}
		}
	}
	return FormatPositional
}

// Variable is one {{…}} placeholder of a template text.
type Variable struct {
	// Name is what stands between the braces: "1" or "guest_name".
	Name string
	// Start and End are its byte offsets in the text, braces included.
	Start, End int
}

// Positional reports whether v is a numbered variable ({{1}}).
func (v Variable) Positional() bool { return v.Name != "" && v.Name[0] >= '0' && v.Name[0] <= '9' }

// VariableError is a placeholder that is not one.
type VariableError struct {
	// Fragment is the offending text, Offset its byte offset.
	Fragment string
	Offset   int
	Problem  string
}

func (e *VariableError) Error() string {
	return fmt.Sprintf("variable %q at %d: %s", e.Fragment, e.Offset, e.Problem)
}

// ParseVariables returns the placeholders of text in order. A "{{" without
// a closing "}}", or braces around anything but a number from 1 (no
// leading zero) or a name of lowercase letters and underscores starting
// with a letter, is a *VariableError.
func ParseVariables(text string) ([]Variable, error) {
	var vars []Variable
	for i := 0; ; {
		open := strings.Index(text[i:], "{{")
		if open < 0 {
			return vars, nil
		}
		open += i
		end := strings.Index(text[open+2:], "}}")
		if end < 0 {
			return vars, &VariableError{Fragment: clip(text[open:]), Offset: open, Problem: "no closing }}"}
		}
		end += open + 2
		name := text[open+2 : end]
		if !validVariableName(name) {
			return vars, &VariableError{Fragment: clip(text[open : end+2]), Offset: open,
				Problem: "a variable is {{1}}, {{2}}… or a name of lowercase letters and underscores like {{guest_name}}"}
		}
		vars = append(vars, Variable{Name: name, Start: open, End: end + 2})
		i = end + 2
	}
}

func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	n := 40
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func validVariableName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		if s[0] == '0' {
			return false
		}
		for i := 1; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return len(s) <= 3
	}
	if s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// distinct returns the variable names in order of first appearance.
func distinct(vars []Variable) []string {
	var out []string
	for _, v := range vars {
		seen := false
		for _, n := range out {
			if n == v.Name {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, v.Name)
		}
	}
	return out
}

// Reason is one thing Meta would refuse or reject about a template.
type Reason struct {
	// Component is "TEMPLATE" for the template's own fields, else the
	// component type (HEADER, BODY, FOOTER, BUTTONS).
	Component string `json:"component"`
	// Field names the field: "name", "text", "example", "buttons[1].url".
	Field string `json:"field"`
	// Rule is a stable code of the rule broken, e.g. "variable_at_start".
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Review reports whether Meta's reviewers, rather than the create call,
// find this problem: the template is accepted as PENDING and REJECTED
// afterwards.
func (r Reason) Review() bool {
	switch r.Rule {
	case "variable_at_start", "variable_at_end", "adjacent_variables", "too_many_variables":
		return true
	}
	return false
}

// Validate returns every reason Meta would refuse or reject t (none when
// it would pass). Call Normalize first. Examples may be left out
// altogether, as seed 001's call does; once a template gives any, every
// variable needs one.
func (t *Template) Validate() []Reason {
	v := validator{t: t}
	v.template()
	return v.reasons
}

type validator struct {
	t       *Template
	reasons []Reason
	// named and positional count the variable kinds seen in header and body.
	named, positional bool
}

func (v *validator) add(component, field, rule, format string, args ...any) {
	v.reasons = append(v.reasons, Reason{Component: component, Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

const tpl = "TEMPLATE"

func (v *validator) template() {
	t := v.t
	switch {
	case t.Name == "":
		v.add(tpl, "name", "name_required", "name is required")
	case len(t.Name) > MaxTemplateNameLen:
		v.add(tpl, "name", "name_too_long", "name is %d characters long; Meta allows %d", len(t.Name), MaxTemplateNameLen)
	case !ValidTemplateName(t.Name):
		v.add(tpl, "name", "name_invalid", "name may hold only lowercase letters, digits and underscores")
	}
	switch {
	case t.Language == "":
		v.add(tpl, "language", "language_required", "language is required (a code such as en, en_US, es)")
	case !ValidTemplateLanguage(t.Language):
		v.add(tpl, "language", "language_invalid", "language %q is not one of Meta's language codes (en, en_US, es, pt_BR…)", clip(t.Language))
	}
	switch t.Category {
	case CategoryMarketing, CategoryUtility:
	case CategoryAuthentication:
		v.add(tpl, "category", "category_unsupported",
			"AUTHENTICATION templates have Meta's preset body and a one-time-password button, which wagate does not submit; use UTILITY or create them in WhatsApp Manager")
	case "":
		v.add(tpl, "category", "category_required", "category is required: MARKETING, UTILITY or AUTHENTICATION")
	default:
		v.add(tpl, "category", "category_invalid", "category must be MARKETING, UTILITY or AUTHENTICATION")
	}
	if t.Group != "" && !validGroup(t.Group) {
		v.add(tpl, "group", "group_invalid", "group may hold lowercase letters, digits and underscores, at most 64")
	}
	switch t.ParameterFormat {
	case "", FormatPositional, FormatNamed:
	default:
		v.add(tpl, "parameter_format", "parameter_format_invalid", "parameter_format must be POSITIONAL or NAMED")
	}
	seen := map[string]bool{}
	for i := range t.Components {
		c := &t.Components[i]
		switch c.Type {
		case ComponentHeader, ComponentBody, ComponentFooter, ComponentButtons:
			if seen[c.Type] {
				v.add(c.Type, "type", "component_repeated", "a template has at most one %s component", c.Type)
				continue
			}
			seen[c.Type] = true
		default:
			v.add(tpl, fmt.Sprintf("components[%d].type", i), "component_invalid", "component type must be HEADER, BODY, FOOTER or BUTTONS, not %q", clip(c.Type))
		}
	}
	if !seen[ComponentBody] {
		v.add(ComponentBody, "text", "body_required", "a BODY component is required")
	}
	hasExamples := t.hasExamples()
	if c := t.Component(ComponentHeader); c != nil {
		v.header(c, hasExamples)
	}
	if c := t.Component(ComponentBody); c != nil {
		v.body(c, hasExamples)
	}
	if c := t.Component(ComponentFooter); c != nil {
		v.footer(c)
	}
	if c := t.Component(ComponentButtons); c != nil {
		v.buttons(c, hasExamples)
	}
	if v.named && v.positional {
		v.add(tpl, "parameter_format", "mixed_variables", "variables are either all numbered ({{1}}) or all named ({{guest_name}}), not both")
	}
	switch {
	case t.ParameterFormat == FormatNamed && v.positional:
		v.add(tpl, "parameter_format", "parameter_format_mismatch", "parameter_format is NAMED but the text has numbered variables")
	case t.ParameterFormat == FormatPositional && v.named:
		v.add(tpl, "parameter_format", "parameter_format_mismatch", "parameter_format is POSITIONAL but the text has named variables")
	}
}

// hasExamples reports whether t gives any sample values.
func (t *Template) hasExamples() bool {
	for _, c := range t.Components {
		if e := c.Example; e != nil && (len(e.HeaderText) > 0 || len(e.HeaderTextNamed) > 0 || len(e.BodyText) > 0 || len(e.BodyTextNamed) > 0) {
			return true
		}
		for _, b := range c.Buttons {
			if len(b.Example) > 0 {
				return true
			}
		}
	}
	return false
}

// textVariables parses c's text and records the kinds it uses.
func (v *validator) textVariables(c *TemplateComponent) ([]Variable, bool) {
	vars, err := ParseVariables(c.Text)
	if err != nil {
		v.add(c.Type, "text", "variable_invalid", "%v", err)
		return nil, false
	}
	for _, x := range vars {
		if x.Positional() {
			v.positional = true
		} else {
			v.named = true
		}
	}
	return vars, true
}

func (v *validator) header(c *TemplateComponent, hasExamples bool) {
	switch c.Format {
	case HeaderText:
		if strings.TrimSpace(c.Text) == "" {
			v.add(c.Type, "text", "header_text_required", "a TEXT header needs its text")
			return
		}
		if n := utf8.RuneCountInString(c.Text); n > MaxTemplateHeaderRunes {
			v.add(c.Type, "text", "header_too_long", "header text is %d characters long; Meta allows %d", n, MaxTemplateHeaderRunes)
		}
		if strings.ContainsAny(c.Text, "\n\r") {
			v.add(c.Type, "text", "header_newline", "header text may not hold line breaks")
		}
		vars, ok := v.textVariables(c)
		if !ok {
			return
		}
		if len(vars) > 1 {
			v.add(c.Type, "text", "header_variables", "header text may hold at most one variable, it has %d", len(vars))
			return
		}
		if len(vars) == 1 && vars[0].Positional() && vars[0].Name != "1" {
			v.add(c.Type, "text", "variable_sequence", "the header's variable must be {{1}}, not {{%s}}", vars[0].Name)
		}
		v.examples(c, vars, hasExamples)
	case HeaderImage, HeaderDocument, HeaderVideo, HeaderLocation:
		if c.Text != "" {
			v.add(c.Type, "text", "header_media_text", "a %s header has no text", c.Format)
		}
	case "":
		v.add(c.Type, "format", "header_format_required", "a header needs a format: TEXT, IMAGE, DOCUMENT, VIDEO or LOCATION")
	default:
		v.add(c.Type, "format", "header_format_invalid", "header format must be TEXT, IMAGE, DOCUMENT, VIDEO or LOCATION, not %q", clip(c.Format))
	}
}

func (v *validator) body(c *TemplateComponent, hasExamples bool) {
	text := c.Text
	if strings.TrimSpace(text) == "" {
		v.add(c.Type, "text", "body_required", "the body text is required")
		return
	}
	if n := utf8.RuneCountInString(text); n > MaxTemplateBodyRunes {
		v.add(c.Type, "text", "body_too_long", "the body is %d characters long; Meta allows %d", n, MaxTemplateBodyRunes)
	}
	vars, ok := v.textVariables(c)
	if !ok || len(vars) == 0 {
		v.examples(c, vars, hasExamples)
		return
	}
	if vars[0].Positional() {
		v.sequence(c, vars)
	}
	trimmed := strings.TrimSpace(text)
	lead := len(text) - len(strings.TrimLeftFunc(text, unicode.IsSpace))
	if vars[0].Start == lead {
		v.add(c.Type, "text", "variable_at_start", "the body may not start with a variable ({{%s}})", vars[0].Name)
	}
	if last := vars[len(vars)-1]; last.End == lead+len(trimmed) {
		v.add(c.Type, "text", "variable_at_end", "the body may not end with a variable ({{%s}}); add text after it", last.Name)
	}
	for i := 1; i < len(vars); i++ {
		if strings.TrimSpace(text[vars[i-1].End:vars[i].Start]) == "" {
			v.add(c.Type, "text", "adjacent_variables", "{{%s}} and {{%s}} are next to each other; put words between them", vars[i-1].Name, vars[i].Name)
		}
	}
	if words, need := countWords(text, vars), 2*len(vars)+1; words < need {
		v.add(c.Type, "text", "too_many_variables",
			"too many variables for the length of the text: %d variables need at least %d other words, the body has %d", len(vars), need, words)
	}
	v.examples(c, vars, hasExamples)
}

// sequence checks that numbered variables are {{1}}…{{n}} without gaps.
func (v *validator) sequence(c *TemplateComponent, vars []Variable) {
	var names []string
	for _, n := range distinct(vars) {
		if n[0] >= '0' && n[0] <= '9' { // named ones are mixed_variables' business
			names = append(names, n)
		}
	}
	have := map[int]bool{}
	for _, n := range names {
		i, _ := strconv.Atoi(n)
		have[i] = true
	}
	for i := 1; i <= len(names); i++ {
		if !have[i] {
			v.add(c.Type, "text", "variable_sequence", "numbered variables must run {{1}} to {{%d}} without gaps; {{%d}} is missing", len(names), i)
			return
		}
	}
}

// countWords counts the words of text outside its variables: runs of
// non-space characters holding a letter or a digit.
func countWords(text string, vars []Variable) int {
	var b strings.Builder
	prev := 0
	for _, x := range vars {
		b.WriteString(text[prev:x.Start])
		b.WriteByte(' ')
		prev = x.End
	}
	b.WriteString(text[prev:])
	n := 0
	for _, w := range strings.Fields(b.String()) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			n++
		}
	}
	return n
}

// examples checks c's sample values against its variables.
func (v *validator) examples(c *TemplateComponent, vars []Variable, hasExamples bool) {
	names := distinct(vars)
	e := c.Example
	var pos []string
	var named []NamedExample
	posField, namedField := "example.body_text", "example.body_text_named_params"
	if c.Type == ComponentHeader {
		posField, namedField = "example.header_text", "example.header_text_named_params"
	}
	if e != nil {
		if c.Type == ComponentHeader {
			pos, named = e.HeaderText, e.HeaderTextNamed
		} else {
			named = e.BodyTextNamed
			switch len(e.BodyText) {
			case 0:
			case 1:
				pos = e.BodyText[0]
			default:
				v.add(c.Type, posField, "example_mismatch", "%s holds one list of sample values, not %d", posField, len(e.BodyText))
				return
			}
		}
	}
	if len(names) == 0 {
		if len(pos) > 0 || len(named) > 0 {
			v.add(c.Type, "example", "example_mismatch", "sample values are given but the %s text has no variables", strings.ToLower(c.Type))
		}
		return
	}
	if len(pos) == 0 && len(named) == 0 {
		if hasExamples {
			v.add(c.Type, "example", "example_missing", "every variable needs a sample value: %s has none for %s", strings.ToLower(c.Type), braces(names))
		}
		return
	}
	if vars[0].Positional() {
		if len(named) > 0 {
			v.add(c.Type, namedField, "example_mismatch", "numbered variables take their samples in %s", posField)
			return
		}
		if len(pos) != len(names) {
			v.add(c.Type, posField, "example_mismatch", "%s gives %d sample values for %d variables", posField, len(pos), len(names))
			return
		}
		for i, s := range pos {
			if strings.TrimSpace(s) == "" {
				v.add(c.Type, posField, "example_empty", "the sample value of {{%d}} is empty", i+1)
			}
		}
		return
	}
	if len(pos) > 0 {
		v.add(c.Type, posField, "example_mismatch", "named variables take their samples in %s", namedField)
		return
	}
	given := map[string]int{}
	for _, ne := range named {
		given[ne.ParamName]++
		if strings.TrimSpace(ne.Example) == "" {
			v.add(c.Type, namedField, "example_empty", "the sample value of {{%s}} is empty", ne.ParamName)
		}
	}
	for _, n := range names {
		switch given[n] {
		case 0:
			v.add(c.Type, namedField, "example_missing", "{{%s}} has no sample value", n)
		case 1:
		default:
			v.add(c.Type, namedField, "example_repeated", "{{%s}} has %d sample values", n, given[n])
		}
		delete(given, n)
	}
	for n := range given {
		v.add(c.Type, namedField, "example_mismatch", "a sample value is given for %q, which the text does not use", clip(n))
	}
}

func braces(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "{{" + n + "}}"
	}
	return strings.Join(out, ", ")
}

func (v *validator) footer(c *TemplateComponent) {
	if strings.TrimSpace(c.Text) == "" {
		v.add(c.Type, "text", "footer_text_required", "a footer needs its text")
		return
	}
	if n := utf8.RuneCountInString(c.Text); n > MaxTemplateFooterRunes {
		v.add(c.Type, "text", "footer_too_long", "footer text is %d characters long; Meta allows %d", n, MaxTemplateFooterRunes)
	}
	if strings.Contains(c.Text, "{{") {
		v.add(c.Type, "text", "footer_variables", "a footer may not hold variables")
	}
}

func (v *validator) buttons(c *TemplateComponent, hasExamples bool) {
	if c.Text != "" {
		v.add(c.Type, "text", "buttons_text", "a BUTTONS component has no text of its own")
	}
	switch n := len(c.Buttons); {
	case n == 0:
		v.add(c.Type, "buttons", "buttons_required", "a BUTTONS component needs at least one button")
		return
	case n > MaxTemplateButtons:
		v.add(c.Type, "buttons", "too_many_buttons", "a template has at most %d buttons, this one %d", MaxTemplateButtons, n)
	}
	urls, phones := 0, 0
	// Quick replies come in one group, before or after the others.
	groups, last := 0, ""
	for i := range c.Buttons {
		b := &c.Buttons[i]
		f := func(name string) string { return fmt.Sprintf("buttons[%d].%s", i, name) }
		kind := "cta"
		if b.Type == ButtonQuickReply {
			kind = "quick"
		}
		if kind != last {
			groups++
			last = kind
		}
		switch tx := strings.TrimSpace(b.Text); {
		case tx == "":
			v.add(c.Type, f("text"), "button_text_required", "button %d needs its text", i)
		case utf8.RuneCountInString(b.Text) > MaxButtonTextRunes:
			v.add(c.Type, f("text"), "button_text_too_long", "button %d's text is %d characters long; Meta allows %d", i, utf8.RuneCountInString(b.Text), MaxButtonTextRunes)
		case strings.Contains(b.Text, "{{"):
			v.add(c.Type, f("text"), "button_text_variables", "button %d's text may not hold variables", i)
		}
		switch b.Type {
		case ButtonQuickReply:
			if b.URL != "" || b.PhoneNumber != "" || len(b.Example) > 0 {
				v.add(c.Type, f("type"), "button_fields", "a QUICK_REPLY button has only a text")
			}
		case ButtonURL:
			urls++
			v.urlButton(c, b, i, hasExamples)
		case ButtonPhoneNumber:
			phones++
			if !validButtonPhone(b.PhoneNumber) {
				v.add(c.Type, f("phone_number"), "button_phone_invalid", "button %d needs a phone_number of digits with its country code (at most %d characters)", i, MaxButtonPhoneLen)
			}
			if b.URL != "" || len(b.Example) > 0 {
				v.add(c.Type, f("type"), "button_fields", "a PHONE_NUMBER button has a text and a phone_number only")
			}
		case "":
			v.add(c.Type, f("type"), "button_type_required", "button %d needs a type: QUICK_REPLY, URL or PHONE_NUMBER", i)
		default:
			v.add(c.Type, f("type"), "button_type_unsupported", "button type %q is not one wagate submits: QUICK_REPLY, URL or PHONE_NUMBER", clip(b.Type))
		}
	}
	if urls > MaxURLButtons {
		v.add(c.Type, "buttons", "too_many_url_buttons", "a template has at most %d URL buttons, this one %d", MaxURLButtons, urls)
	}
	if phones > MaxPhoneButtons {
		v.add(c.Type, "buttons", "too_many_phone_buttons", "a template has at most %d PHONE_NUMBER button, this one %d", MaxPhoneButtons, phones)
	}
	if groups > 2 {
		v.add(c.Type, "buttons", "buttons_interleaved", "quick reply buttons must be grouped together, before or after the other buttons")
	}
}

func (v *validator) urlButton(c *TemplateComponent, b *TemplateButton, i int, hasExamples bool) {
	field := fmt.Sprintf("buttons[%d].url", i)
	if len(b.URL) > MaxButtonURLLen {
		v.add(c.Type, field, "button_url_too_long", "button %d's url is longer than %d characters", i, MaxButtonURLLen)
	}
	vars, err := ParseVariables(b.URL)
	if err != nil {
		v.add(c.Type, field, "variable_invalid", "%v", err)
		return
	}
	base := b.URL
	switch {
	case len(vars) > 1:
		v.add(c.Type, field, "button_url_variables", "a URL button has at most one variable, {{1}} at the end")
		return
	case len(vars) == 1:
		if vars[0].Name != "1" || vars[0].End != len(b.URL) {
			v.add(c.Type, field, "button_url_variables", "a URL button's variable must be {{1}}, at the very end of the url")
			return
		}
		base = b.URL[:vars[0].Start]
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(c.Type, field, "button_url_invalid", "button %d needs an http(s) url", i)
	}
	ef := fmt.Sprintf("buttons[%d].example", i)
	switch {
	case len(vars) == 0 && len(b.Example) > 0:
		v.add(c.Type, ef, "example_mismatch", "button %d has a sample value but its url has no variable", i)
	case len(vars) == 1 && len(b.Example) == 0 && hasExamples:
		v.add(c.Type, ef, "example_missing", "every variable needs a sample value: button %d has none for its url's {{1}}", i)
	case len(vars) == 1 && len(b.Example) > 1:
		v.add(c.Type, ef, "example_mismatch", "button %d gives %d sample values for one variable", i, len(b.Example))
	case len(vars) == 1 && len(b.Example) == 1 && strings.TrimSpace(b.Example[0]) == "":
		v.add(c.Type, ef, "example_empty", "button %d's sample value is empty", i)
	}
}

// ValidTemplateName reports whether s is a template name Meta takes:
// lowercase letters, digits and underscores, at most 512.
func ValidTemplateName(s string) bool {
	if s == "" || len(s) > MaxTemplateNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func validGroup(s string) bool { return len(s) <= 64 && ValidTemplateName(s) }

// validButtonPhone reports whether s is a phone number with its country
// code: an optional "+" and 7 to 15 digits.
func validButtonPhone(s string) bool {
	if len(s) > MaxButtonPhoneLen {
		return false
	}
	s = strings.TrimPrefix(s, "+")
	if len(s) < 7 || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// templateLanguages are the base languages Meta's templates support; a
// code is one of them, optionally with a region ("en_US", "es_MX").
var templateLanguages = map[string]bool{
	"af": true, "sq": true, "ar": true, "az": true, "bn": true, "bg": true, "ca": true, "zh": true, "hr": true,
	"cs": true, "da": true, "nl": true, "en": true, "et": true, "fil": true, "fi": true, "fr": true, "ka": true,
	"de": true, "el": true, "gu": true, "ha": true, "he": true, "hi": true, "hu": true, "id": true, "ga": true,
	"it": true, "ja": true, "kn": true, "kk": true, "rw": true, "ko": true, "ky": true, "lo": true, "lv": true,
	"lt": true, "mk": true, "ms": true, "ml": true, "mr": true, "nb": true, "fa": true, "pl": true, "pt": true,
	"pa": true, "ro": true, "ru": true, "sr": true, "sk": true, "sl": true, "es": true, "sw": true, "sv": true,
	"ta": true, "te": true, "th": true, "tr": true, "uk": true, "ur": true, "uz": true, "vi": true, "zu": true,
}

// ValidTemplateLanguage reports whether s is a language code of Meta's
// templates: a supported language, optionally with "_" and a region in
// capitals.
func ValidTemplateLanguage(s string) bool {
	base, region, hasRegion := strings.Cut(s, "_")
	if !templateLanguages[base] {
		return false
	}
	if !hasRegion {
		return true
	}
	if len(region) != 2 {
		return false
	}
	for i := 0; i < len(region); i++ {
		if region[i] < 'A' || region[i] > 'Z' {
			return false
		}
	}
	return true
}

// Parameter keys of a send that are not variable names.
const (
	// ParamHeaderMediaURL and ParamHeaderMediaID give an IMAGE, DOCUMENT
	// or VIDEO header's media, by link or by uploaded media id (one of the
	// two); ParamHeaderMediaFilename names a DOCUMENT header's file.
	ParamHeaderMediaURL      = "header_media_url"
	ParamHeaderMediaID       = "header_media_id"
	ParamHeaderMediaFilename = "header_media_filename"
	// ParamHeaderLatitude and ParamHeaderLongitude place a LOCATION
	// header; its name and address are optional.
	ParamHeaderLatitude        = "header_latitude"
	ParamHeaderLongitude       = "header_longitude"
	ParamHeaderLocationName    = "header_location_name"
	ParamHeaderLocationAddress = "header_location_address"
	// ParamHeaderPositional is the key of a numbered header variable, so
	// that it is not taken for the body's {{1}}.
	ParamHeaderPositional = "header_1"
	// ParamButtonPrefix + the button's index ("button_0") is a URL
	// button's suffix or a quick reply's payload.
	ParamButtonPrefix = "button_"
)

// TemplateParam is one value a send of the template takes.
type TemplateParam struct {
	// Key is its name in a send's parameters.
	Key string `json:"name"`
	// Component is where it goes: HEADER, BODY or BUTTONS.
	Component string `json:"component"`
	// Index is the button's position, for BUTTONS.
	Index *int `json:"index,omitempty"`
	// Type is Meta's parameter type: text, image, document, video,
	// location, payload.
	Type     string `json:"type"`
	Required bool   `json:"required"`
	// Alternatives may be given instead of Key (header_media_id for
	// header_media_url).
	Alternatives []string `json:"alternatives,omitempty"`
	// Example is the template's sample value, when it has one.
	Example string `json:"example,omitempty"`
}

// Parameters lists what a send of t takes, in order: the header's, the
// body's variables as they first appear (numbered ones in number order),
// then the buttons'.
func (t *Template) Parameters() []TemplateParam {
	var out []TemplateParam
	ex := t.ExampleValues()
	named := t.Format() == FormatNamed
	if h := t.Component(ComponentHeader); h != nil {
		switch h.Format {
		case HeaderText:
			vars, _ := ParseVariables(h.Text)
			for _, n := range distinct(vars) {
				key := n
				if !named {
					key = ParamHeaderPositional
				}
				out = append(out, TemplateParam{Key: key, Component: ComponentHeader, Type: "text", Required: true, Example: ex[key]})
			}
		case HeaderImage, HeaderDocument, HeaderVideo:
			out = append(out, TemplateParam{Key: ParamHeaderMediaURL, Component: ComponentHeader, Type: strings.ToLower(h.Format),
				Required: true, Alternatives: []string{ParamHeaderMediaID}})
			if h.Format == HeaderDocument {
				out = append(out, TemplateParam{Key: ParamHeaderMediaFilename, Component: ComponentHeader, Type: "document"})
			}
		case HeaderLocation:
			out = append(out,
				TemplateParam{Key: ParamHeaderLatitude, Component: ComponentHeader, Type: "location", Required: true},
				TemplateParam{Key: ParamHeaderLongitude, Component: ComponentHeader, Type: "location", Required: true},
				TemplateParam{Key: ParamHeaderLocationName, Component: ComponentHeader, Type: "location"},
				TemplateParam{Key: ParamHeaderLocationAddress, Component: ComponentHeader, Type: "location"})
		}
	}
	if b := t.Component(ComponentBody); b != nil {
		for _, n := range t.bodyNames() {
			if named && out != nil && hasKey(out, n) {
				continue // the header's value serves the body too
			}
			out = append(out, TemplateParam{Key: n, Component: ComponentBody, Type: "text", Required: true, Example: ex[n]})
		}
	}
	if bs := t.Component(ComponentButtons); bs != nil {
		for i, b := range bs.Buttons {
			key := ParamButtonPrefix + strconv.Itoa(i)
			switch b.Type {
			case ButtonURL:
				if vars, _ := ParseVariables(b.URL); len(vars) == 1 {
					out = append(out, TemplateParam{Key: key, Component: ComponentButtons, Index: ptr(i), Type: "text", Required: true, Example: ex[key]})
				}
			case ButtonQuickReply:
				out = append(out, TemplateParam{Key: key, Component: ComponentButtons, Index: ptr(i), Type: "payload"})
			}
		}
	}
	return out
}

func ptr(i int) *int { return &i }

func hasKey(ps []TemplateParam, key string) bool {
	for _, p := range ps {
		if p.Key == key {
			return true
		}
	}
	return false
}

// bodyNames returns the body's variable names: named ones as they first
// appear, numbered ones from 1 up.
func (t *Template) bodyNames() []string {
	b := t.Component(ComponentBody)
	if b == nil {
		return nil
	}
	vars, _ := ParseVariables(b.Text)
	names := distinct(vars)
	if len(names) > 0 && vars[0].Positional() {
		for i := range names {
			names[i] = strconv.Itoa(i + 1)
		}
	}
	return names
}

// ExampleValues returns the template's sample values by parameter key,
// for a send that shows what the template looks like.
func (t *Template) ExampleValues() map[string]string {
	out := map[string]string{}
	named := t.Format() == FormatNamed
	if h := t.Component(ComponentHeader); h != nil && h.Example != nil {
		if len(h.Example.HeaderText) > 0 && !named {
			out[ParamHeaderPositional] = h.Example.HeaderText[0]
		}
		for _, ne := range h.Example.HeaderTextNamed {
			out[ne.ParamName] = ne.Example
		}
	}
	if b := t.Component(ComponentBody); b != nil && b.Example != nil {
		if len(b.Example.BodyText) > 0 {
			for i, s := range b.Example.BodyText[0] {
				out[strconv.Itoa(i+1)] = s
			}
		}
		for _, ne := range b.Example.BodyTextNamed {
			out[ne.ParamName] = ne.Example
		}
	}
	if bs := t.Component(ComponentButtons); bs != nil {
		for i, b := range bs.Buttons {
			if b.Type == ButtonURL && len(b.Example) > 0 {
				out[ParamButtonPrefix+strconv.Itoa(i)] = b.Example[0]
			}
		}
	}
	return out
}

// ParamError is one problem of a send's parameters.
type ParamError struct {
	// Param is the parameter's key.
	Param   string `json:"parameter"`
	Problem string `json:"problem"`
}

// ParamErrors are every problem of a send's parameters, in a stable
// order: the template's parameters first, then unknown ones by name.
type ParamErrors []ParamError

func (e ParamErrors) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = "parameter " + p.Param + " " + p.Problem
	}
	return strings.Join(parts, "; ")
}

// Meta's send objects, in its field order.
type (
	sendTemplate struct {
		Name       string          `json:"name"`
		Language   sendLanguage    `json:"language"`
		Components []sendComponent `json:"components,omitempty"`
	}
	sendLanguage struct {
		Code string `json:"code"`
	}
	sendComponent struct {
		Type       string      `json:"type"`
		SubType    string      `json:"sub_type,omitempty"`
		Index      string      `json:"index,omitempty"`
		Parameters []sendParam `json:"parameters"`
	}
	sendParam struct {
		Type          string        `json:"type"`
		ParameterName string        `json:"parameter_name,omitempty"`
		Text          string        `json:"text,omitempty"`
		Payload       string        `json:"payload,omitempty"`
		Image         *sendMedia    `json:"image,omitempty"`
		Document      *sendMedia    `json:"document,omitempty"`
		Video         *sendMedia    `json:"video,omitempty"`
		Location      *sendLocation `json:"location,omitempty"`
	}
	sendMedia struct {
		ID       string `json:"id,omitempty"`
		Link     string `json:"link,omitempty"`
		Filename string `json:"filename,omitempty"`
	}
	sendLocation struct {
		Latitude  json.Number `json:"latitude"`
		Longitude json.Number `json:"longitude"`
		Name      string      `json:"name,omitempty"`
		Address   string      `json:"address,omitempty"`
	}
)

// BuildSend checks values, a send's parameters by key (see Parameters),
// against t and returns Meta's template object for the send,
//
//	{"name","language":{"code"},"components":[{"type":"header"|"body"|"button","sub_type","index","parameters":[…]}]}
//
// with "parameter_name" on the text parameters of a NAMED template, and the
// body rendered with the values, for the inbox. Missing, unknown, empty or
// malformed values come back as ParamErrors naming each parameter.
func (t *Template) BuildSend(values map[string]string) ([]byte, string, error) {
	params := t.Parameters()
	var errs ParamErrors
	known := map[string]bool{}
	for _, p := range params {
		known[p.Key] = true
		for _, a := range p.Alternatives {
			known[a] = true
		}
	}
	for _, p := range params {
		val, ok := values[p.Key]
		alt := ""
		for _, a := range p.Alternatives {
			if _, has := values[a]; has {
				alt = a
			}
		}
		switch {
		case ok && alt != "":
			errs = append(errs, ParamError{p.Key, "and " + alt + " are alternatives: give one of them"})
			continue
		case !ok && alt != "":
			val, ok = values[alt], true
		case !ok && p.Required:
			errs = append(errs, ParamError{p.Key, "is missing"})
			continue
		case !ok:
			continue
		}
		key := p.Key
		if alt != "" {
			key = alt
		}
		if strings.TrimSpace(val) == "" {
			errs = append(errs, ParamError{key, "is empty"})
			continue
		}
		if problem := checkParam(key, p.Type, val); problem != "" {
			errs = append(errs, ParamError{key, problem})
		}
	}
	var unknown []string
	for k := range values {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sortStrings(unknown)
	for _, k := range unknown {
		errs = append(errs, ParamError{clip(k), "is not a parameter of template " + t.Name + " (" + t.Language + ")"})
	}
	if len(errs) > 0 {
		return nil, "", errs
	}
	obj, preview, err := t.assemble(values)
	if err != nil {
		return nil, "", err
	}
	return obj, preview, nil
}

// checkParam checks one value given for key, of Meta's type typ.
func checkParam(key, typ, val string) string {
	switch typ {
	case "text":
		if utf8.RuneCountInString(val) > MaxTemplateParamRunes {
			return fmt.Sprintf("is longer than %d characters", MaxTemplateParamRunes)
		}
		if strings.ContainsAny(val, "\n\r\t") || strings.Contains(val, "     ") {
			// Meta refuses these in a text parameter (error 100).
			return "may not hold line breaks, tabs or more than 4 spaces in a row"
		}
	case "image", "document", "video":
		if key == ParamHeaderMediaID {
			if !mediaIDChars(val) {
				return "is not a media id (letters, digits, '.', '_', '-')"
			}
			return ""
		}
		if key == ParamHeaderMediaFilename {
			if len(val) > 240 || strings.ContainsAny(val, "/\\\n\r") {
				return "is not a file name"
			}
			return ""
		}
		if u, err := url.Parse(val); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "is not an http(s) URL"
		}
	case "location":
		switch key {
		case ParamHeaderLatitude, ParamHeaderLongitude:
			f, err := strconv.ParseFloat(val, 64)
			limit := 90.0
			if key == ParamHeaderLongitude {
				limit = 180
			}
			if err != nil || f < -limit || f > limit {
				return fmt.Sprintf("must be a number from -%v to %v", limit, limit)
			}
		default:
			if utf8.RuneCountInString(val) > 1000 {
				return "is longer than 1000 characters"
			}
		}
	case "payload":
		if len(val) > 256 {
			return "is longer than 256 bytes"
		}
	}
	return ""
}

func mediaIDChars(s string) bool {
	if len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// assemble builds the send object from checked values.
func (t *Template) assemble(values map[string]string) ([]byte, string, error) {
	named := t.Format() == FormatNamed
	obj := sendTemplate{Name: t.Name, Language: sendLanguage{Code: t.Language}}
	text := func(name, key string) sendParam {
		p := sendParam{Type: "text", Text: values[key]}
		if named {
			p.ParameterName = name
		}
		return p
	}
	if h := t.Component(ComponentHeader); h != nil {
		var ps []sendParam
		switch h.Format {
		case HeaderText:
			vars, _ := ParseVariables(h.Text)
			for _, n := range distinct(vars) {
				key := n
				if !named {
					key = ParamHeaderPositional
				}
				ps = append(ps, text(n, key))
			}
			if rendered := render(h.Text, vars, func(n string) string { return values[headerKey(n, named)] }); len(vars) > 0 && utf8.RuneCountInString(rendered) > MaxTemplateHeaderRunes {
				return nil, "", ParamErrors{{headerKey(vars[0].Name, named), fmt.Sprintf("makes the header longer than %d characters", MaxTemplateHeaderRunes)}}
			}
		case HeaderImage, HeaderDocument, HeaderVideo:
			m := &sendMedia{ID: values[ParamHeaderMediaID], Link: values[ParamHeaderMediaURL]}
			p := sendParam{Type: strings.ToLower(h.Format)}
			switch h.Format {
			case HeaderImage:
				p.Image = m
			case HeaderVideo:
				p.Video = m
			default:
				m.Filename = values[ParamHeaderMediaFilename]
				p.Document = m
			}
			ps = append(ps, p)
		case HeaderLocation:
			ps = append(ps, sendParam{Type: "location", Location: &sendLocation{
				Latitude: json.Number(normalizeNumber(values[ParamHeaderLatitude])), Longitude: json.Number(normalizeNumber(values[ParamHeaderLongitude])),
				Name: values[ParamHeaderLocationName], Address: values[ParamHeaderLocationAddress]}})
		}
		if len(ps) > 0 {
			obj.Components = append(obj.Components, sendComponent{Type: "header", Parameters: ps})
		}
	}
	preview := ""
	if b := t.Component(ComponentBody); b != nil {
		vars, _ := ParseVariables(b.Text)
		var ps []sendParam
		for _, n := range t.bodyNames() {
			ps = append(ps, text(n, n))
		}
		if len(ps) > 0 {
			obj.Components = append(obj.Components, sendComponent{Type: "body", Parameters: ps})
		}
		preview = render(b.Text, vars, func(n string) string { return values[n] })
		if utf8.RuneCountInString(preview) > MaxTemplateBodyRunes {
			return nil, "", ParamErrors{{"parameters", fmt.Sprintf("make the body longer than %d characters", MaxTemplateBodyRunes)}}
		}
	}
	if bs := t.Component(ComponentButtons); bs != nil {
		for i, b := range bs.Buttons {
			key := ParamButtonPrefix + strconv.Itoa(i)
			val, ok := values[key]
			switch {
			case b.Type == ButtonURL && ok:
				obj.Components = append(obj.Components, sendComponent{Type: "button", SubType: "url", Index: strconv.Itoa(i),
					Parameters: []sendParam{{Type: "text", Text: val}}})
			case b.Type == ButtonQuickReply && ok:
				obj.Components = append(obj.Components, sendComponent{Type: "button", SubType: "quick_reply", Index: strconv.Itoa(i),
					Parameters: []sendParam{{Type: "payload", Payload: val}}})
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, "", fmt.Errorf("template %s: encode send: %w", t.Name, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), preview, nil
}

func headerKey(name string, named bool) string {
	if named {
		return name
	}
	return ParamHeaderPositional
}

// normalizeNumber returns a checked coordinate as a JSON number.
func normalizeNumber(s string) string {
	f, _ := strconv.ParseFloat(s, 64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// render replaces vars in text with value(name).
func render(text string, vars []Variable, value func(string) string) string {
	var b strings.Builder
	prev := 0
	for _, v := range vars {
		b.WriteString(text[prev:v.Start])
		b.WriteString(value(v.Name))
		prev = v.End
	}
	b.WriteString(text[prev:])
	return b.String()
}

// Render returns the body text with values put in for its variables (keys
// as in BuildSend); a variable without a value stays as it is.
func (t *Template) Render(values map[string]string) string {
	b := t.Component(ComponentBody)
	if b == nil {
		return ""
	}
	vars, err := ParseVariables(b.Text)
	if err != nil {
		return b.Text
	}
	return render(b.Text, vars, func(n string) string {
		if v, ok := values[n]; ok {
			return v
		}
		return "{{" + n + "}}"
	})
}

// Sendable reports whether t may be sent: Meta approved it.
func (t *Template) Sendable() bool { return t.Status == TemplateApproved }
