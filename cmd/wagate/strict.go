package main

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// unknownFields returns an error for every key of the decoded JSON doc
// that type t has no field for, naming the key and where it is
// ("tenants[0]"): encoding/json would drop it silently, and a typo
// ("rate" for "rates") would start the gateway on defaults. Keys match
// fields as encoding/json matches them (case-insensitively).
func unknownFields(doc any, t reflect.Type) error {
	var errs []error
	walkFields(doc, t, "", &errs)
	return errors.Join(errs...)
}

func walkFields(v any, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that decodes itself takes whatever it accepts.
	if pt := reflect.PointerTo(t); pt.Implements(reflect.TypeFor[json.Unmarshaler]()) || pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type mismatch, which json.Unmarshal reports
		}
		fields := jsonFieldsOf(t)
		for _, k := range sortedKeys(obj) {
			f, ok := fieldNamed(fields, k)
			if !ok {
				*errs = append(*errs, fmt.Errorf("config: unknown field %q at %s%s", k, where(path), suggest(k, fields)))
				continue
			}
			walkFields(obj[k], f.typ, joinPath(path, f.name), errs)
		}
	case reflect.Slice, reflect.Array:
		arr, _ := v.([]any)
		for i, e := range arr {
			walkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range sortedKeys(obj) {
			walkFields(obj[k], t.Elem(), fmt.Sprintf("%s[%q]", path, k), errs)
		}
	}
}

// jsonField is a struct field as encoding/json names it.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFieldsOf lists the fields encoding/json decodes into t, those of
// embedded structs included.
func jsonFieldsOf(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFieldsOf(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type})
	}
	return out
}

// fieldNamed finds key's field: the exact name first, then, as
// encoding/json does, one that differs only in case.
func fieldNamed(fields []jsonField, key string) (jsonField, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return jsonField{}, false
}

func where(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// suggest names the known field closest to a misspelt key, if one is
// close enough to be what was meant.
func suggest(key string, fields []jsonField) string {
	best, bestD := "", 3 // at most two edits away
	for _, f := range fields {
		if d := editDistance(strings.ToLower(key), strings.ToLower(f.name)); d < bestD {
			best, bestD = f.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
