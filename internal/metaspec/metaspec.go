// Package metaspec checks WhatsApp Cloud API requests against Meta's own
// OpenAPI description of them (testdata/meta-business-messaging-api_v23.0.yaml,
// a verbatim copy of Meta's spec, MIT licensed), with the defects of that
// spec patched in code (patches.go).
//
// Only tests use this package: it embeds the 1 MB spec and compiles it
// with a JSON Schema 2020-12 validator, which no running gateway needs.
package metaspec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// specYAML is Meta's spec as published, byte for byte; SpecSHA256 pins it.
//
//go:embed testdata/meta-business-messaging-api_v23.0.yaml
var specYAML []byte

// SpecSHA256 is the SHA-256 of the embedded spec file, as copied from
// ../shared/specs: a test holds the copy to it, so that corrections go
// into patches.go and never into the file.
const SpecSHA256 = "c7148d5e2aeff32f2effc3d3557795d7eddd07abf8b017c9e40e86bb3312c116"

// specURL names the spec inside the validator; violations show schema
// locations relative to it ("#/components/schemas/…").
const specURL = "https://graph.facebook.com/meta-business-messaging-api_v23.0.yaml"

// The schemas this package validates with.
const (
	// sendSchema is the request body of POST /{Version}/{Phone-Number-ID}/messages.
	sendSchema = "#/components/schemas/Message"
	// inboundSchema is one element of a webhook's value.messages.
	inboundSchema = "#/components/schemas/IncomingMessage"
)

// Validator checks bodies against the compiled spec. It is safe for
// concurrent use.
type Validator struct {
	send, inbound *compiled
}

// compiled is a schema with a discriminator, and the schema each value of
// its discriminator maps to, for precise errors.
type compiled struct {
	whole *jsonschema.Schema
	// property is the discriminator's property name ("type").
	property string
	byValue  map[string]*jsonschema.Schema
}

// Load returns a Validator of Meta's spec with every patch of Patches
// applied: the spec as Meta's API actually behaves.
func Load() (*Validator, error) {
	s, err := Decode()
	if err != nil {
		return nil, err
	}
	return s.Validator(Patches()...)
}

// Spec is Meta's spec decoded once, to build validators from: decoding
// the YAML takes most of the time of building one.
type Spec struct {
	doc map[string]any
}

// Decode decodes the embedded spec.
func Decode() (*Spec, error) {
	doc, err := decodeSpec()
	if err != nil {
		return nil, err
	}
	return &Spec{doc: doc}, nil
}

// Validator returns a Validator of the spec with the given patches
// applied, in order, to a copy of it. With none, it validates against the
// spec exactly as Meta published it.
func (s *Spec) Validator(patches ...Patch) (*Validator, error) {
	doc := clone(s.doc).(map[string]any)
	for _, p := range patches {
		if err := p.apply(doc); err != nil {
			return nil, fmt.Errorf("metaspec: patch %s: %w", p.Name, err)
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// 2020-12 makes format an annotation unless asked; a contact's email,
	// URL or birthday not in the spec's format (email, uri, date) is a
	// wrong body. Formats the validator does not know (the spec's "url")
	// stay annotations.
	c.AssertFormat()
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, fmt.Errorf("metaspec: add spec: %w", err)
	}
	v := &Validator{}
	var err error
	if v.send, err = compile(c, doc, sendSchema); err != nil {
		return nil, err
	}
	if v.inbound, err = compile(c, doc, inboundSchema); err != nil {
		return nil, err
	}
	return v, nil
}

// clone returns a deep copy of a decoded JSON value.
func clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = clone(e)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = clone(e)
		}
		return a
	}
	return v
}

// decodeSpec returns the embedded spec decoded as encoding/json would
// decode its JSON form (objects map[string]any, numbers json.Number),
// which is what the validator and the patches work on.
func decodeSpec() (map[string]any, error) {
	var y any
	if err := yaml.Unmarshal(specYAML, &y); err != nil {
		return nil, fmt.Errorf("metaspec: decode spec: %w", err)
	}
	y, err := jsonable(y)
	if err != nil {
		return nil, fmt.Errorf("metaspec: decode spec: %w", err)
	}
	raw, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("metaspec: decode spec: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("metaspec: decode spec: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("metaspec: the spec is not a YAML mapping")
	}
	return m, nil
}

// jsonable turns YAML's decoded values into ones encoding/json can write:
// mappings with non-string keys (response codes such as 200) get string
// keys.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[k] = j
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = j
		}
		return m, nil
	case []any:
		for i, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[i] = j
		}
		return t, nil
	case nil, bool, string, int, int64, uint64, float64:
		return t, nil
	}
	return nil, fmt.Errorf("unexpected YAML value %T", v)
}

// compile compiles the schema at ptr and, if it has an OpenAPI
// discriminator, each schema its mapping names.
func compile(c *jsonschema.Compiler, doc map[string]any, ptr string) (*compiled, error) {
	whole, err := c.Compile(specURL + ptr)
	if err != nil {
		return nil, fmt.Errorf("metaspec: compile %s: %w", ptr, err)
	}
	out := &compiled{whole: whole, byValue: map[string]*jsonschema.Schema{}}
	s, err := lookup(doc, ptr)
	if err != nil {
		return nil, err
	}
	d, _ := s["discriminator"].(map[string]any)
	if d == nil {
		return out, nil
	}
	out.property, _ = d["propertyName"].(string)
	mapping, _ := d["mapping"].(map[string]any)
	for value, ref := range mapping {
		r, _ := ref.(string)
		if out.byValue[value], err = c.Compile(specURL + r); err != nil {
			return nil, fmt.Errorf("metaspec: compile %s (%s %q): %w", r, ptr, value, err)
		}
	}
	return out, nil
}

// ValidateSendBody checks body, a request body of Meta's send endpoint
// (POST /{Version}/{Phone-Number-ID}/messages), against the spec. It
// returns nil, or an *Error listing every violation with its JSON path.
func (v *Validator) ValidateSendBody(body []byte) error { return v.send.validate(body) }

// ValidateInboundMessage checks msg, one element of a webhook's
// entry[].changes[].value.messages, against the spec.
func (v *Validator) ValidateInboundMessage(msg []byte) error { return v.inbound.validate(msg) }

// validate checks raw against the whole schema: that verdict is the
// spec's. When it fails, the errors come from the schema the
// discriminator picks, as OpenAPI means the discriminator to be used:
// otherwise a text message's one mistake would come with why it is not
// an image, a video and eight other types.
func (c *compiled) validate(raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &Error{Violations: []Violation{{Message: "not one JSON value: " + err.Error()}}}
	}
	err = c.whole.Validate(inst)
	if err == nil {
		return nil
	}
	if c.property != "" {
		obj, _ := inst.(map[string]any)
		value, isString := obj[c.property].(string)
		switch sch := c.byValue[value]; {
		case obj == nil:
		case !isString || sch == nil:
			return &Error{Violations: []Violation{{Path: "/" + c.property, Keyword: c.location() + "/discriminator",
				Message: fmt.Sprintf("%s must be one of %s; got %s", c.property, strings.Join(c.values(), ", "), jsonText(obj[c.property]))}}}
		default:
			if e := sch.Validate(inst); e != nil {
				err = e
			}
		}
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &Error{Violations: []Violation{{Message: err.Error()}}}
	}
	out := &Error{}
	collect(ve, &out.Violations)
	return out
}

// location returns where c's whole schema is in the spec.
func (c *compiled) location() string { return strings.TrimPrefix(c.whole.Location, specURL) }

// values returns the discriminator's values, sorted.
func (c *compiled) values() []string {
	vs := make([]string, 0, len(c.byValue))
	for k := range c.byValue {
		vs = append(vs, k)
	}
	slices.Sort(vs)
	return vs
}

// Violation is one rule of the spec a body breaks.
type Violation struct {
	// Path is the JSON pointer of the offending value in the body: ""
	// for the body itself, "/interactive/action/buttons" for its buttons.
	Path string
	// Keyword is the rule's location in the spec, e.g.
	// "#/components/schemas/ActionObject/oneOf/1/properties/buttons/maxItems".
	Keyword string
	// Message says what is wrong.
	Message string
}

// String formats v as "at /path: message [keyword]".
func (v Violation) String() string {
	p := v.Path
	if p == "" {
		p = "(body)"
	}
	return "at " + p + ": " + v.Message + " [" + v.Keyword + "]"
}

// Error is every violation of one body.
type Error struct {
	Violations []Violation
}

// Error lists the violations, one a line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d violation(s) of Meta's spec:", len(e.Violations))
	for _, v := range e.Violations {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}

// Has reports whether e has a violation at path whose keyword location
// ends with keyword ("maxItems", "required").
func (e *Error) Has(path, keyword string) bool {
	for _, v := range e.Violations {
		if v.Path == path && strings.HasSuffix(v.Keyword, "/"+keyword) {
			return true
		}
	}
	return false
}

// printer writes the validator's messages; it is only read.
var printer = message.NewPrinter(language.English)

// collect appends the leaves of ve's tree. Of a oneOf or anyOf that no
// branch satisfies, it keeps the branches that got past the value itself
// and failed deeper inside it, when there are any: those are the shapes
// the value was meant to have (the reply-button branch of a message with
// four buttons), the others only say it lacks their required fields.
func collect(ve *jsonschema.ValidationError, out *[]Violation) {
	causes := ve.Causes
	switch ve.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		depth := len(ve.InstanceLocation)
		var deeper []*jsonschema.ValidationError
		for _, c := range causes {
			if maxDepth(c) > depth {
				deeper = append(deeper, c)
			}
		}
		if len(deeper) > 0 {
			causes = deeper
		}
	}
	if len(causes) == 0 {
		*out = append(*out, Violation{
			Path:    pointer(ve.InstanceLocation),
			Keyword: keywordLocation(ve),
			Message: ve.ErrorKind.LocalizedString(printer),
		})
		return
	}
	for _, c := range causes {
		collect(c, out)
	}
}

// maxDepth is the deepest instance location among ve's leaves.
func maxDepth(ve *jsonschema.ValidationError) int {
	if len(ve.Causes) == 0 {
		return len(ve.InstanceLocation)
	}
	d := 0
	for _, c := range ve.Causes {
		d = max(d, maxDepth(c))
	}
	return d
}

// keywordLocation is ve's rule as a location in the spec.
func keywordLocation(ve *jsonschema.ValidationError) string {
	loc := strings.TrimPrefix(ve.SchemaURL, specURL)
	if ref, ok := ve.ErrorKind.(*kind.Reference); ok {
		return strings.TrimPrefix(ref.URL, specURL)
	}
	for _, k := range ve.ErrorKind.KeywordPath() {
		loc += "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
	}
	return loc
}

// pointer writes an instance location as a JSON pointer.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// jsonText writes v as JSON, or "nothing" for a missing value.
func jsonText(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return strconv.Quote(fmt.Sprint(v))
	}
	return string(b)
}

// lookup returns the object at ptr ("#/components/schemas/Message",
// "#/components/schemas/TextMessage/allOf/1") in doc.
func lookup(doc map[string]any, ptr string) (map[string]any, error) {
	var cur any = doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch t := cur.(type) {
		case map[string]any:
			cur = t[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(t) {
				return nil, fmt.Errorf("metaspec: the spec has no object at %s", ptr)
			}
			cur = t[i]
		default:
			cur = nil
		}
	}
	obj, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metaspec: the spec has no object at %s", ptr)
	}
	return obj, nil
}
