package meta

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting the scanner follows, so that a hostile body
// cannot exhaust the stack. Meta's envelopes nest about ten levels.
const maxDepth = 64

// scanner reads one JSON document in place, without building a tree: the
// caller walks the objects it knows and skips the rest. It checks the full
// JSON grammar of everything it reads or skips, so a body it accepts is one
// encoding/json would accept too.
//
// The first error sticks: after it every method returns a zero value, so a
// caller checks err once at the end. Byte slices it returns point into the
// body or into scratch and are valid only until the next call.
type scanner struct {
	b       []byte
	i       int
	depth   int
	err     error
	scratch []byte
}

func (s *scanner) reset(b []byte) {
	s.b = b
	s.i = 0
	s.depth = 0
	s.err = nil
	s.scratch = s.scratch[:0]
}

func (s *scanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, s.i)
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end or after an error.
func (s *scanner) peek() byte {
	if s.err != nil {
		return 0
	}
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end checks that nothing but space follows the document.
func (s *scanner) end() {
	if s.err != nil {
		return
	}
	s.ws()
	if s.i != len(s.b) {
		s.fail("data after the document")
	}
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' {
		s.literal("null")
		return s.err == nil
	}
	return false
}

func (s *scanner) literal(lit string) {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		s.fail("invalid literal")
		return
	}
	s.i += len(lit)
}

func (s *scanner) open(c byte) bool {
	if s.peek() != c {
		s.fail("expected " + string(c))
		return false
	}
	s.i++
	s.depth++
	if s.depth > maxDepth {
		s.fail("nested too deep")
		return false
	}
	return true
}

// object enters an object. It returns false for null (nothing to read) and
// on error. Walk it with key, reading or skipping each value:
//
//	var k []byte
//	if s.object() {
//		for first := true; s.key(&k, first); first = false {
//			switch string(k) { case "id": id = string(s.str()); default: s.skip() }
//		}
//	}
func (s *scanner) object() bool {
	if s.null() {
		return false
	}
	return s.open('{')
}

// key reads the next key of the current object and the colon after it; it
// returns false, having consumed the closing brace, at the object's end.
func (s *scanner) key(k *[]byte, first bool) bool {
	c := s.peek()
	switch {
	case s.err != nil:
		return false
	case c == '}' && first:
		s.i++
		s.depth--
		return false
	case first:
	case c == ',':
		s.i++
	case c == '}':
		s.i++
		s.depth--
		return false
	default:
		s.fail("expected , or }")
		return false
	}
	if s.peek() != '"' {
		s.fail("expected a key")
		return false
	}
	*k = s.str()
	if s.peek() != ':' {
		s.fail("expected :")
		return false
	}
	s.i++
	return s.err == nil
}

// array enters an array; false for null and on error. Walk it with elem.
func (s *scanner) array() bool {
	if s.null() {
		return false
	}
	return s.open('[')
}

// elem reports whether another element follows in the current array,
// consuming the comma before it or the closing bracket after the last.
func (s *scanner) elem(first bool) bool {
	c := s.peek()
	switch {
	case s.err != nil:
		return false
	case c == ']':
		s.i++
		s.depth--
		return false
	case first:
		return true
	case c == ',':
		s.i++
		return true
	}
	s.fail("expected , or ]")
	return false
}

// str reads a string (null reads as empty) and returns its unescaped bytes.
func (s *scanner) str() []byte {
	c := s.peek()
	if c == 'n' {
		s.literal("null")
		return nil
	}
	if c != '"' {
		s.fail("expected a string")
		return nil
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1]
		case c == '\\':
			return s.strEscaped(start)
		case c < 0x20:
			s.fail("control character in string")
			return nil
		}
		s.i++
	}
	s.fail("unterminated string")
	return nil
}

// strEscaped finishes a string that has escapes, unescaping into scratch.
func (s *scanner) strEscaped(start int) []byte {
	out := append(s.scratch[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.scratch = out
			return out
		case c < 0x20:
			s.fail("control character in string")
			return nil
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				s.fail("bad \\u escape")
				return nil
			}
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half becomes U+FFFD as in
				// encoding/json.
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if r2, ok = s.hex4(); !ok {
						s.fail("bad \\u escape")
						return nil
					}
					if utf16.DecodeRune(r, r2) == utf8.RuneError {
						s.i = save
						r2 = -1
					}
				}
				if r2 < 0 {
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			s.fail("bad escape")
			return nil
		}
	}
	s.fail("unterminated string")
	return nil
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// number reads a number and returns its text; integral reports that it has
// neither fraction nor exponent.
func (s *scanner) number() (text []byte, integral bool) {
	if s.peek() == 0 {
		s.fail("expected a number")
		return nil, false
	}
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		s.fail("expected a number")
		return nil, false
	}
	integral = true
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			s.fail("expected a digit")
			return nil, false
		}
		integral = false
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			s.fail("expected a digit")
			return nil, false
		}
		integral = false
	}
	return s.b[start:s.i], integral
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// int reads an integral number (null reads as 0).
func (s *scanner) int() int64 {
	if s.null() {
		return 0
	}
	t, integral := s.number()
	if s.err != nil {
		return 0
	}
	n, ok := parseInt(t)
	if !integral || !ok {
		s.fail("expected an integer")
		return 0
	}
	return n
}

// intOrString reads an integer given as a number or as a string of digits,
// as Meta writes its timestamps. Null and "" read as 0.
func (s *scanner) intOrString() int64 {
	if s.peek() != '"' {
		return s.int()
	}
	t := s.str()
	if len(t) == 0 {
		return 0
	}
	n, ok := parseInt(t)
	if !ok {
		s.fail("expected an integer in a string")
		return 0
	}
	return n
}

func parseInt(t []byte) (int64, bool) {
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// bool reads true or false (null reads as false).
func (s *scanner) bool() bool {
	switch s.peek() {
	case 't':
		s.literal("true")
		return s.err == nil
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	default:
		s.fail("expected a boolean")
	}
	return false
}

// skip reads any value and discards it, checking its grammar.
func (s *scanner) skip() {
	switch s.peek() {
	case '{':
		s.open('{')
		var k []byte
		for first := true; s.key(&k, first); first = false {
			s.skip()
		}
	case '[':
		s.open('[')
		for first := true; s.elem(first); first = false {
			s.skip()
		}
	case '"':
		s.skipStr()
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	case 0:
		s.fail("expected a value")
	default:
		s.number()
	}
}

// skipStr is str without unescaping.
func (s *scanner) skipStr() {
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return
		case c < 0x20:
			s.fail("control character in string")
			return
		case c == '\\':
			if s.i+1 >= len(s.b) {
				s.fail("unterminated string")
				return
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				s.i += 2
				if _, ok := s.hex4(); !ok {
					s.fail("bad \\u escape")
					return
				}
			default:
				s.fail("bad escape")
				return
			}
			continue
		}
		s.i++
	}
	s.fail("unterminated string")
}
