package ingest

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// The send and batch bodies are read with fastjson, without encoding/json's
// reflection: a parser per request (pooled with the request's scratch)
// and a walk over each object's fields that refuses unknown ones and wrong
// types with the same answers as decodeJSON.

// parseObject parses body, which must be one JSON object.
func parseObject(p *fastjson.Parser, body []byte) (*fastjson.Object, *apiError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, invalidRequest("The request body must be a JSON object", nil)
	}
	v, err := p.ParseBytes(body)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected tail") {
			return nil, invalidRequest("The request body holds more than one JSON value", nil)
		}
		return nil, invalidRequest("The request body is not valid JSON", map[string]any{"reason": err.Error()})
	}
	return v.GetObject(), nil
}

// fieldReader walks one object's fields, keeping the first error.
type fieldReader struct {
	err *apiError
}

// visit calls f for each field of o whose value is not null; a field f
// does not know (false) is refused.
func (fr *fieldReader) visit(o *fastjson.Object, path string, f func(key string, v *fastjson.Value) bool) *apiError {
	o.Visit(func(k []byte, v *fastjson.Value) {
		if fr.err != nil || v.Type() == fastjson.TypeNull {
			return
		}
		if !f(string(k), v) && fr.err == nil {
			name := join(path, string(k))
			fr.err = invalidRequest("Unknown field "+name, map[string]any{"field": name})
		}
	})
	return fr.err
}

// str reads a string field into dst.
func (fr *fieldReader) str(dst *string, v *fastjson.Value, path string) {
	b, err := v.StringBytes()
	switch {
	case err != nil:
		fr.fail(path, "a string", v)
	case !utf8.Valid(b):
		fr.set(invalidRequest(path+" is not valid UTF-8 text", map[string]any{"field": path}))
	default:
		*dst = string(b)
	}
}

// int reads a whole number field into dst.
func (fr *fieldReader) int(dst *int64, v *fastjson.Value, path string) {
	n, err := v.Int64()
	if err != nil {
		fr.fail(path, "a whole number", v)
		return
	}
	*dst = n
}

// float reads a number field into dst.
func (fr *fieldReader) float(dst *float64, v *fastjson.Value, path string) {
	n, err := v.Float64()
	if err != nil {
		fr.fail(path, "a number", v)
		return
	}
	*dst = n
}

// bool reads a true-or-false field into dst.
func (fr *fieldReader) bool(dst *bool, v *fastjson.Value, path string) {
	b, err := v.Bool()
	if err != nil {
		fr.fail(path, "true or false", v)
		return
	}
	*dst = b
}

// object returns an object field, or fails.
func (fr *fieldReader) object(v *fastjson.Value, path string) *fastjson.Object {
	o, err := v.Object()
	if err != nil {
		fr.fail(path, "an object", v)
		return nil
	}
	return o
}

// raw appends the field's JSON to *buf and returns it (a sub-slice).
func (fr *fieldReader) raw(buf *[]byte, v *fastjson.Value) []byte {
	start := len(*buf)
	*buf = v.MarshalTo(*buf)
	return (*buf)[start:len(*buf):len(*buf)]
}

func (fr *fieldReader) fail(path, want string, v *fastjson.Value) {
	fr.set(invalidRequest(path+" must be "+want, map[string]any{"field": path, "got": jsonTypeName(v)}))
}

func (fr *fieldReader) set(e *apiError) {
	if fr.err == nil {
		fr.err = e
	}
}

// jsonTypeName names a value's type as encoding/json's errors do.
func jsonTypeName(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeObject:
		return "object"
	case fastjson.TypeArray:
		return "array"
	case fastjson.TypeString:
		return "string"
	case fastjson.TypeNumber:
		return "number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "bool"
	}
	return "null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// deliveryField reads one of the delivery fields every send takes; false
// when key is not one of them.
func (fr *fieldReader) deliveryField(d *delivery, key string, v *fastjson.Value) bool {
	switch key {
	case "priority":
		fr.str(&d.Priority, v, key)
	case "campaign_id":
		fr.str(&d.CampaignID, v, key)
	case "send_at":
		fr.str(&d.SendAt, v, key)
	case "expires_at":
		fr.str(&d.ExpiresAt, v, key)
	case "ttl_seconds":
		var n int64
		fr.int(&n, v, key)
		d.TTLSeconds = &n
	case "fallback_text":
		fr.str(&d.FallbackText, v, key)
	case "fallback_after_seconds":
		fr.int(&d.FallbackAfterSeconds, v, key)
	default:
		return false
	}
	return true
}
