package bench

import (
	"bytes"
	"strconv"
)

// The gateway's answers on the hot path are small flat objects; these read
// one field of them without decoding the whole body, so that judging an
// answer costs the load generator (which shares the machine) next to
// nothing. They find the first occurrence of the key at any depth, which
// is what the answers they are used on need.

// jsonValueAt returns the start of key's value in body, or -1.
func jsonValueAt(body []byte, key string) int {
	var pat [64]byte
	p := append(pat[:0], '"')
	p = append(p, key...)
	p = append(p, '"')
	for off := 0; ; {
		i := bytes.Index(body[off:], p)
		if i < 0 {
			return -1
		}
		j := off + i + len(p)
		for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j++
		}
		if j < len(body) && body[j] == ':' {
			j++
			for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
				j++
			}
			return j
		}
		off = j
	}
}

// jsonStringField returns the string value of key (escapes kept as they
// are: the values read here never hold any), or "" when key is missing or
// not a string.
func jsonStringField(body []byte, key string) string {
	b := jsonStringBytes(body, key)
	if b == nil {
		return ""
	}
	return string(b)
}

// jsonStringBytes is jsonStringField without the copy: the bytes are
// body's.
func jsonStringBytes(body []byte, key string) []byte {
	j := jsonValueAt(body, key)
	if j < 0 || j >= len(body) || body[j] != '"' {
		return nil
	}
	for k := j + 1; k < len(body); k++ {
		switch body[k] {
		case '\\':
			k++
		case '"':
			return body[j+1 : k]
		}
	}
	return nil
}

// jsonIntField returns the integer value of key, and whether there was one.
func jsonIntField(body []byte, key string) (int64, bool) {
	j := jsonValueAt(body, key)
	if j < 0 {
		return 0, false
	}
	k := j
	for k < len(body) && (body[k] == '-' || body[k] >= '0' && body[k] <= '9') {
		k++
	}
	n, err := strconv.ParseInt(string(body[j:k]), 10, 64)
	return n, err == nil
}
