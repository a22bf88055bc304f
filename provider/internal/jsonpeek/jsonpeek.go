// Package jsonpeek reads single members of small JSON documents in place
// and writes JSON strings, for the provider adapters' hot paths: no
// reflection, no allocation beyond what the caller's buffers need.
package jsonpeek

import (
	"unicode/utf16"
	"unicode/utf8"
)

// The functions below read single members of small JSON objects in place,
// without encoding/json's reflection and allocations: the text of a
// message's content and the id of an answer. They expect a document that
// json.Valid accepted; on anything else they stay within bounds but their
// answer means nothing.

// Member returns the raw value (a string keeps its quotes) of the Member
// named key of the top-level object doc, and whether there is one. As with
// encoding/json the last of repeated names wins; unlike it, the name must
// match exactly, not case-insensitively.
func Member(doc []byte, key string) ([]byte, bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	i++
	var val []byte
	found := false
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != '"' {
			return val, found
		}
		end := valueEnd(doc, i)
		name := doc[i:end]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return val, found
		}
		i = skipSpace(doc, i+1)
		end = valueEnd(doc, i)
		if nameIs(name, key) {
			val, found = doc[i:end], true
		}
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ',' {
			return val, found
		}
		i++
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the value that starts at doc[i].
func valueEnd(doc []byte, i int) int {
	if i >= len(doc) {
		return i
	}
	switch doc[i] {
	case '"':
		for j := i + 1; j < len(doc); j++ {
			switch doc[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(doc)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				j = valueEnd(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(doc)
	}
	for j := i; j < len(doc); j++ {
		switch doc[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(doc)
}

// nameIs reports whether the quoted Member name equals key once unescaped.
func nameIs(name []byte, key string) bool {
	if len(name) < 2 {
		return false
	}
	raw := name[1 : len(name)-1]
	for _, c := range raw {
		if c == '\\' {
			var buf [64]byte
			u, ok := AppendUnquote(buf[:0], name)
			return ok && string(u) == key
		}
	}
	return string(raw) == key
}

// IsString reports whether raw is a JSON string token.
func IsString(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"'
}

// AppendUnquote appends the text of the JSON string token s to dst, as
// encoding/json decodes it: broken surrogates and invalid UTF-8 become
// U+FFFD. It reports false if s is not a well-formed string token.
func AppendUnquote(dst, s []byte) ([]byte, bool) {
	if !IsString(s) {
		return dst, false
	}
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return dst, false
			}
			switch s[i+1] {
			case '"', '\\', '/':
				dst = append(dst, s[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i:])
				if r < 0 {
					return dst, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, hex4(s[i:])); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, false
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst, true
}

// hex4 reads a \uXXXX escape at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
