package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"mime"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/wagate/wagate/message"
)

// This file holds wagate's answers to its own OpenAPI document
// (openapi.yaml): (*harness).do passes every answer an ingest test gets
// through checkOpenAPI, so a handler that answers what the document does
// not say, or a document that says what no handler answers, fails the
// tests.

// openapiURL names the document inside the schema compiler; validation
// errors show locations relative to it.
const openapiURL = "https://wagate.invalid/openapi.yaml"

// apiSpec is the embedded document, decoded once for every test.
type apiSpec struct {
	doc   map[string]any
	paths []specPath

	// mu guards c and compiled: the compiler is not safe for concurrent
	// use, and each schema is compiled on first use.
	mu       sync.Mutex
	c        *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// specPath is one path of the document, split for matching.
type specPath struct {
	template string
	item     map[string]any
	segs     []specSeg
	literals int
}

// specSeg is one segment of a path template: a literal, or a parameter
// with the values its schema's enum allows (nil: any non-empty segment).
type specSeg struct {
	literal string
	param   bool
	enum    []string
}

var loadSpec = sync.OnceValues(func() (*apiSpec, error) {
	doc, err := decodeOpenAPI(openapiYAML)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// Times are date-time and URLs uri: a malformed one is a wrong answer.
	c.AssertFormat()
	if err := c.AddResource(openapiURL, doc); err != nil {
		return nil, fmt.Errorf("openapi: add document: %w", err)
	}
	s := &apiSpec{doc: doc, c: c, compiled: map[string]*jsonschema.Schema{}}
	paths, _ := doc["paths"].(map[string]any)
	for tmpl, v := range paths {
		item, _ := v.(map[string]any)
		sp := specPath{template: tmpl, item: item}
		for _, seg := range strings.Split(strings.TrimPrefix(tmpl, "/"), "/") {
			name, ok := strings.CutPrefix(seg, "{")
			if !ok {
				sp.segs = append(sp.segs, specSeg{literal: seg})
				sp.literals++
				continue
			}
			name = strings.TrimSuffix(name, "}")
			sp.segs = append(sp.segs, specSeg{param: true, enum: s.pathEnum(item, name)})
		}
		s.paths = append(s.paths, sp)
	}
	return s, nil
})

// decodeOpenAPI decodes a YAML document as encoding/json would decode its
// JSON form (objects map[string]any, numbers json.Number), which is what
// the schema compiler takes.
func decodeOpenAPI(src []byte) (map[string]any, error) {
	var y any
	if err := yaml.Unmarshal(src, &y); err != nil {
		return nil, fmt.Errorf("openapi: decode: %w", err)
	}
	y, err := jsonable(y)
	if err != nil {
		return nil, fmt.Errorf("openapi: decode: %w", err)
	}
	raw, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("openapi: decode: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("openapi: decode: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("openapi: the document is not a YAML mapping")
	}
	return m, nil
}

// jsonable turns YAML's decoded values into JSON's: mappings with
// non-string keys get string keys; anything JSON has no value for (an
// unquoted timestamp becomes a time.Time) is an error, so that the
// document quotes it.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t[k] = j
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, fmt.Errorf("%v: %w", k, err)
			}
			m[fmt.Sprint(k)] = j
		}
		return m, nil
	case []any:
		for i, e := range t {
			j, err := jsonable(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			t[i] = j
		}
		return t, nil
	case nil, bool, string, int, int64, uint64, float64:
		return t, nil
	}
	return nil, fmt.Errorf("a YAML value JSON has not: %T %v (quote it)", v, v)
}

// ptrEscape escapes one JSON pointer token.
func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolve returns the object at ptr ("#/components/responses/NotFound").
func (s *apiSpec) resolve(ptr string) (map[string]any, bool) {
	var cur any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch t := cur.(type) {
		case map[string]any:
			cur = t[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			cur = t[i]
		default:
			return nil, false
		}
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

// deref follows obj's $ref, if it has one, and returns the object and its
// pointer (at for an object without $ref).
func (s *apiSpec) deref(obj map[string]any, at string) (map[string]any, string) {
	for range 8 {
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj, at
		}
		next, ok := s.resolve(ref)
		if !ok {
			return obj, at
		}
		obj, at = next, ref
	}
	return obj, at
}

// pathEnum returns the enum of the path parameter name of a path item.
func (s *apiSpec) pathEnum(item map[string]any, name string) []string {
	ps, _ := item["parameters"].([]any)
	for _, p := range ps {
		pm, _ := p.(map[string]any)
		pm, _ = s.deref(pm, "")
		if pm["in"] != "path" || pm["name"] != name {
			continue
		}
		sch, _ := pm["schema"].(map[string]any)
		vals, _ := sch["enum"].([]any)
		var out []string
		for _, v := range vals {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	return nil
}

// schema compiles (once) the schema at ptr.
func (s *apiSpec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch, nil
	}
	sch, err := s.c.Compile(openapiURL + ptr)
	if err != nil {
		return nil, err
	}
	s.compiled[ptr] = sch
	return sch, nil
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// match returns the path template a request path fits, for method: among
// the templates that fit, one with the method and the most literal
// segments (an exact segment beats a parameter, as in the router). When
// templates fit but none has the method, it returns "" and pathFits.
func (s *apiSpec) match(method, p string) (tmpl string, pathFits bool) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	best := -1
	for _, sp := range s.paths {
		if !sp.fits(segs) {
			continue
		}
		pathFits = true
		if _, ok := sp.item[strings.ToLower(method)]; ok && sp.literals > best {
			tmpl, best = sp.template, sp.literals
		}
	}
	return tmpl, pathFits
}

func (sp *specPath) fits(segs []string) bool {
	if len(segs) != len(sp.segs) {
		return false
	}
	for i, seg := range sp.segs {
		switch {
		case !seg.param && segs[i] != seg.literal:
			return false
		case seg.param && segs[i] == "":
			return false
		case seg.param && seg.enum != nil && !slices.Contains(seg.enum, segs[i]):
			return false
		}
	}
	return true
}

// requestPath is the path the server routes for target (a path with an
// optional query): percent-decoded, with dot segments and repeated slashes
// resolved, as fasthttp normalizes it.
func requestPath(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	p := path.Clean("/" + u.Path)
	if strings.HasSuffix(u.Path, "/") && p != "/" {
		p += "/"
	}
	return p, nil
}

// checkOpenAPI checks one answer against the document: the operation of
// method and target (a path with an optional query) must document status,
// the answer's Content-Type must be one it documents, and a JSON body must
// fit the schema. An answer to a path or method the document does not
// describe must be its 404 NOT_FOUND or 405 METHOD_NOT_ALLOWED. Bodies
// that are not JSON (metrics, media bytes, this document) are checked by
// their Content-Type only.
func checkOpenAPI(t testing.TB, method, target string, status int, contentType string, body []byte) {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	p, err := requestPath(target)
	if err != nil {
		t.Errorf("openapi: %s %s: %v", method, target, err)
		return
	}
	where := fmt.Sprintf("%s %s answered %d", method, target, status)
	// The unversioned alias is the same API (see apiPrefixUnversioned).
	if rest, ok := strings.CutPrefix(p, apiPrefixUnversioned); ok {
		p = apiPrefix + rest
	}
	tmpl, pathFits := s.match(method, p)
	if tmpl == "" {
		s.checkUndocumented(t, where, method, pathFits, status, contentType, body)
		return
	}
	opPtr := "#/paths/" + ptrEscape(tmpl) + "/" + strings.ToLower(method)
	op, _ := s.resolve(opPtr)
	responses, _ := op["responses"].(map[string]any)
	key := strconv.Itoa(status)
	r, ok := responses[key].(map[string]any)
	if !ok {
		key = "default"
		if r, ok = responses[key].(map[string]any); !ok {
			t.Errorf("openapi: %s, a status %s %s does not document (it documents %s)", where, strings.ToUpper(method), tmpl, keys(responses))
			return
		}
	}
	r, rPtr := s.deref(r, opPtr+"/responses/"+key)
	s.checkContent(t, where, method, r, rPtr, contentType, body)
}

// checkUndocumented checks an answer to a request outside the document's
// operations: it may only be the refusal the document's description
// promises for them.
func (s *apiSpec) checkUndocumented(t testing.TB, where, method string, pathFits bool, status int, contentType string, body []byte) {
	t.Helper()
	var ptr string
	switch {
	case status == 404:
		ptr = "#/components/responses/NotFound"
	case status == 405 && pathFits:
		ptr = "#/components/responses/MethodNotAllowed"
	case pathFits:
		t.Errorf("openapi: %s, but the document does not describe this method on this path (only 405 or 404 are expected)", where)
		return
	default:
		t.Errorf("openapi: %s, but the document describes no such path (only 404 NOT_FOUND is expected)", where)
		return
	}
	r, _ := s.resolve(ptr)
	s.checkContent(t, where, method, r, ptr, contentType, body)
	if method == "HEAD" {
		return // no body to read the code from
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if status == 404 && (json.Unmarshal(body, &e) != nil || e.Error.Code != string(message.CodeNotFound)) {
		t.Errorf("openapi: %s for an undescribed path or method with code %q, want NOT_FOUND: %s", where, e.Error.Code, body)
	}
}

// checkContent checks an answer's Content-Type and body against response
// r (at rPtr).
func (s *apiSpec) checkContent(t testing.TB, where, method string, r map[string]any, rPtr, contentType string, body []byte) {
	t.Helper()
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			t.Errorf("openapi: %s with a body, but %s documents none: %.200s", where, rPtr, body)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Errorf("openapi: %s with Content-Type %q: %v", where, contentType, err)
		return
	}
	key := ""
	major, _, _ := strings.Cut(mt, "/")
	for _, k := range []string{mt, major + "/*", "*/*"} {
		if _, ok := content[k]; ok {
			key = k
			break
		}
	}
	if key == "" {
		t.Errorf("openapi: %s with Content-Type %s, but %s documents %s", where, mt, rPtr, keys(content))
		return
	}
	if method == "HEAD" {
		if len(body) > 0 {
			t.Errorf("openapi: %s with a body to HEAD", where)
		}
		return
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return
	}
	sch, err := s.schema(rPtr + "/content/" + ptrEscape(key) + "/schema")
	if err != nil {
		t.Errorf("openapi: %s: the schema does not compile: %v", where, err)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("openapi: %s with a body that is not JSON (%v): %.200s", where, err, body)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("openapi: %s with a body that does not fit %s:\n%#v\nbody: %.2000s", where, rPtr, err, body)
	}
}

// keys lists m's keys, sorted.
func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// operations lists the document's "METHOD /path" pairs.
func (s *apiSpec) operations() []string {
	var out []string
	for _, sp := range s.paths {
		for _, m := range httpMethods {
			if _, ok := sp.item[m]; ok {
				out = append(out, strings.ToUpper(m)+" "+sp.template)
			}
		}
	}
	sort.Strings(out)
	return out
}

func mustSpec(t *testing.T) *apiSpec {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return s
}

// TestOpenAPIDescribesEveryRoute holds the document's API operations to
// the route table, both ways: a new route without documentation fails, and
// so does documentation of a route that is gone.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	s := mustSpec(t)
	var routes []string
	for _, e := range apiEndpoints() {
		routes = append(routes, e.method+" "+apiPrefix+e.pattern)
	}
	sort.Strings(routes)
	var documented []string
	for _, op := range s.operations() {
		if _, p, _ := strings.Cut(op, " "); strings.HasPrefix(p, apiPrefix) {
			documented = append(documented, op)
		}
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.yaml describes %s, which the router does not serve", d)
		}
	}
	// The paths outside the API, which server.go routes itself.
	for _, op := range []string{"GET /webhooks/meta", "POST /webhooks/meta", "POST /webhooks/gallabox", "POST /webhooks/chatapp", "GET /metrics", "GET /healthz", "GET /openapi.yaml", "HEAD /openapi.yaml"} {
		if !slices.Contains(s.operations(), op) {
			t.Errorf("openapi.yaml does not describe %s", op)
		}
	}
	// Public routes say so, and the others take the bearer token.
	for _, e := range apiEndpoints() {
		op, _ := s.resolve("#/paths/" + ptrEscape(apiPrefix+e.pattern) + "/" + strings.ToLower(e.method))
		sec, _ := op["security"].([]any)
		if e.public != (len(sec) == 0) {
			t.Errorf("%s %s: public is %v but security is %v", e.method, e.pattern, e.public, op["security"])
		}
		responses, _ := op["responses"].(map[string]any)
		want := []string{"500"}
		if !e.public {
			want = append(want, "401")
		}
		if e.admin {
			want = append(want, "403")
		}
		if e.json {
			want = append(want, "413", "415")
		}
		for _, code := range want {
			if _, ok := responses[code]; !ok {
				t.Errorf("%s %s does not document %s, which the router answers for it", e.method, e.pattern, code)
			}
		}
	}
}

// TestOpenAPIDocumentIsValid checks the document itself: what it says is
// OpenAPI 3.1, every $ref resolves, every schema compiles, every operation
// has a summary, a security and documented responses, every path
// parameter is declared, and the error codes are message's, each under
// its HTTP status.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	s := mustSpec(t)
	if s.doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", s.doc["openapi"])
	}
	var refs, schemas []string
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				switch {
				case k == "$ref":
					r, _ := e.(string)
					refs = append(refs, at+" → "+r)
				case k == "schema":
					schemas = append(schemas, at+"/schema")
					walk(e, at+"/schema")
				default:
					walk(e, at+"/"+ptrEscape(k))
				}
			}
		case []any:
			for i, e := range t {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(s.doc, "#")
	for _, r := range refs {
		_, ref, _ := strings.Cut(r, " → ")
		if _, ok := s.resolve(ref); !strings.HasPrefix(ref, "#/") || !ok {
			t.Errorf("$ref at %s does not resolve", r)
		}
	}
	comps, _ := s.doc["components"].(map[string]any)
	named, _ := comps["schemas"].(map[string]any)
	for name := range named {
		schemas = append(schemas, "#/components/schemas/"+ptrEscape(name))
	}
	if len(schemas) < 100 {
		t.Errorf("only %d schemas found: the walk missed some", len(schemas))
	}
	for _, ptr := range schemas {
		if _, err := s.schema(ptr); err != nil {
			t.Errorf("schema %s does not compile: %v", ptr, err)
		}
	}

	for _, sp := range s.paths {
		declared := map[string]bool{}
		addParams := func(v any) {
			ps, _ := v.([]any)
			for _, p := range ps {
				pm, _ := p.(map[string]any)
				pm, _ = s.deref(pm, "")
				if pm["in"] == "path" {
					declared[fmt.Sprint(pm["name"])] = true
					if pm["required"] != true {
						t.Errorf("%s: path parameter %v is not required", sp.template, pm["name"])
					}
				}
			}
		}
		addParams(sp.item["parameters"])
		for _, m := range httpMethods {
			op, ok := sp.item[m].(map[string]any)
			if !ok {
				continue
			}
			addParams(op["parameters"])
			where := strings.ToUpper(m) + " " + sp.template
			if sum, _ := op["summary"].(string); sum == "" {
				t.Errorf("%s has no summary", where)
			}
			if _, ok := op["security"].([]any); !ok {
				t.Errorf("%s does not say its security", where)
			}
			responses, _ := op["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s documents no responses", where)
			}
			for code, r := range responses {
				if n, err := strconv.Atoi(code); (err != nil || n < 100 || n > 599) && code != "default" {
					t.Errorf("%s: response key %q is not a status code", where, code)
				}
				rm, _ := r.(map[string]any)
				if rm, _ = s.deref(rm, ""); rm["description"] == nil {
					t.Errorf("%s %s has no description", where, code)
				}
			}
		}
		for _, seg := range strings.Split(sp.template, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok && !declared[strings.TrimSuffix(name, "}")] {
				t.Errorf("%s: path parameter %s is not declared", sp.template, seg)
			}
		}
	}

	// The error codes: ErrorCode lists message's Code constants, and each
	// ErrorNNN the codes whose HTTPStatus is NNN.
	codes := messageCodes(t)
	errorCode, _ := named["ErrorCode"].(map[string]any)
	var enum []string
	for _, v := range errorCode["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	sort.Strings(enum)
	if !slices.Equal(enum, codes) {
		t.Errorf("ErrorCode enum %v, want message's codes %v", enum, codes)
	}
	byStatus := map[int][]string{}
	for _, c := range codes {
		st := message.Code(c).HTTPStatus()
		byStatus[st] = append(byStatus[st], c)
	}
	for st, want := range byStatus {
		if st == 500 {
			continue // Error500 is checked below: its codes are 500's by default.
		}
		got := narrowedCodes(t, named, st)
		if !slices.Equal(got, want) {
			t.Errorf("Error%d holds codes %v, want %v", st, got, want)
		}
	}
	if got := narrowedCodes(t, named, 500); !slices.Equal(got, byStatus[500]) {
		t.Errorf("Error500 holds codes %v, want %v", got, byStatus[500])
	}
}

// narrowedCodes returns the codes schema ErrorNNN allows, sorted.
func narrowedCodes(t *testing.T, named map[string]any, status int) []string {
	t.Helper()
	sch, ok := named["Error"+strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Errorf("no schema Error%d", status)
		return nil
	}
	all, _ := sch["allOf"].([]any)
	var out []string
	for _, part := range all {
		pm, _ := part.(map[string]any)
		props, _ := pm["properties"].(map[string]any)
		e, _ := props["error"].(map[string]any)
		eprops, _ := e["properties"].(map[string]any)
		code, _ := eprops["code"].(map[string]any)
		if c, ok := code["const"].(string); ok {
			out = append(out, c)
		}
		enum, _ := code["enum"].([]any)
		for _, v := range enum {
			out = append(out, v.(string))
		}
	}
	sort.Strings(out)
	return out
}

// messageCodes returns the values of message's Code constants, read from
// its source so that a new code without documentation fails.
func messageCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../message/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found %d Code constants in message/errors.go: the parse missed them", len(out))
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIIsServed fetches the document as a client generator would.
func TestOpenAPIIsServed(t *testing.T) {
	h := newHarness(t)
	code, v, hdr := h.do("GET", "/openapi.yaml", "", "")
	raw, _ := v["_raw"].(string)
	if code != 200 || hdr.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET: %d %s", code, hdr.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string         `yaml:"openapi"`
		Paths   map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("the served document is not YAML: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Paths[apiPrefix+"messages/send"] == nil {
		t.Fatalf("served openapi %q with %d paths, want 3.1.0 with messages/send", doc.OpenAPI, len(doc.Paths))
	}
	if raw != string(openapiYAML) {
		t.Fatal("the served document is not the embedded openapi.yaml")
	}

	code, v, hdr = h.do("HEAD", "/openapi.yaml", "", "")
	if code != 200 || v["_raw"] != "" || hdr.Get("Content-Length") != strconv.Itoa(len(openapiYAML)) {
		t.Fatalf("HEAD: %d, body %q, Content-Length %s, want 200, none, %d", code, v["_raw"], hdr.Get("Content-Length"), len(openapiYAML))
	}

	code, v, hdr = h.do("POST", "/openapi.yaml", "", "{}")
	if code != 405 || errCode(t, v) != "METHOD_NOT_ALLOWED" || hdr.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v Allow %q", code, v, hdr.Get("Allow"))
	}
}

// errRecorder collects what checkOpenAPI reports, to test the checker.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestOpenAPICheckerRefusesWrongAnswers shows that the check every test
// runs can fail: answers a client generated from the document would trip
// on are reported, and right ones are not.
func TestOpenAPICheckerRefusesWrongAnswers(t *testing.T) {
	f := func(name string, wantErr bool, method, target string, status int, contentType, body string) {
		t.Run(name, func(t *testing.T) {
			r := &errRecorder{TB: t}
			checkOpenAPI(r, method, target, status, contentType, []byte(body))
			if got := len(r.errs) > 0; got != wantErr {
				t.Fatalf("reported %v, want an error: %v", r.errs, wantErr)
			}
		})
	}
	send := apiPrefix + "messages/send"
	notFound := `{"error":{"code":"NOT_FOUND","message":"No such endpoint","details":{},"recovery_options":[]}}`
	f("accepted", false, "POST", send, 202, "application/json", `{"message_id":"msg_1","status":"queued","conversation_id":"conv_1"}`)
	f("a new field", false, "POST", send, 202, "application/json", `{"message_id":"msg_1","status":"queued","eta":"soon"}`)
	f("no message_id", true, "POST", send, 202, "application/json", `{"status":"queued"}`)
	f("unknown status", true, "POST", send, 202, "application/json", `{"message_id":"msg_1","status":"posted"}`)
	f("undocumented status", true, "POST", send, 418, "application/json", notFound)
	f("text instead of JSON", true, "POST", send, 202, "text/plain; charset=utf-8", `{"message_id":"msg_1","status":"queued"}`)
	f("not JSON", true, "POST", send, 202, "application/json", `msg_1 queued`)
	f("code of another status", true, "POST", send, 400, "application/json",
		`{"error":{"code":"GUEST_OPTED_OUT","message":"x","details":{},"recovery_options":[]}}`)
	f("details null", true, "POST", send, 400, "application/json",
		`{"error":{"code":"INVALID_REQUEST","message":"x","details":null,"recovery_options":[]}}`)
	f("a time that is not one", true, "GET", apiPrefix+"messages/msg_1/status?x=1", 200, "application/json",
		`{"message_id":"msg_1","status":"queued","guest_phone":"+1234567890","from":"+15550001000","message_type":"text","conversation_id":null,`+
			`"staff_member_id":null,"created_at":"yesterday","sent_at":null,"delivered_at":null,"read_at":null,"failed_at":null,"failure_reason":null,`+
			`"error_code":null,"attempts":0,"provider_message_id":null,"priority":"transactional","campaign_id":null,"send_at":null,"expires_at":null,`+
			`"expired_at":null,"fallback":null}`)
	f("unknown path 404", false, "GET", apiPrefix+"nope", 404, "application/json", notFound)
	f("unknown path 200", true, "GET", apiPrefix+"nope", 200, "application/json", `{}`)
	f("unknown action 200", true, "POST", apiPrefix+"conversations/c1/delete", 200, "application/json", `{}`)
	f("undocumented method 405", false, "PUT", send, 405, "application/json",
		`{"error":{"code":"METHOD_NOT_ALLOWED","message":"x","details":{"allow":"POST"},"recovery_options":[]}}`)
	f("undocumented method 200", true, "PUT", send, 200, "application/json", `{"message_id":"msg_1","status":"queued"}`)
	f("metrics", false, "GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8", "# HELP x\n")
	f("metrics as JSON", true, "GET", "/metrics", 200, "application/json", "{}")
	f("media bytes", false, "GET", apiPrefix+"media/med_1?expires=1&signature=x", 200, "image/png", "\x89PNG")
	f("media without signature is not a 401", true, "GET", apiPrefix+"media/med_1", 401, "application/json",
		`{"error":{"code":"UNAUTHORIZED","message":"x","details":{},"recovery_options":[]}}`)
	f("HEAD of a GET-only path", false, "HEAD", apiPrefix+"templates", 405, "application/json", "")
	f("204 with a body", true, "DELETE", apiPrefix+"webhooks", 204, "application/json", `{}`)
}
