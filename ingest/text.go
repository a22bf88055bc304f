package ingest

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// textOK refuses (400) a JSON body whose text the gateway could not pass
// on as the client wrote it: bytes that are not UTF-8, a NUL (raw or
// \u0000), or a \u escape of half a surrogate pair. JSON decoders would
// otherwise rewrite them silently (to U+FFFD) and a guest would get other
// text than the one accepted.
func textOK(ctx *fasthttp.RequestCtx) bool {
	if e := checkBodyText(ctx.PostBody()); e != nil {
		writeError(ctx, e)
		return false
	}
	return true
}

func checkBodyText(body []byte) *apiError {
	bad := func(why string, at int) *apiError {
		return invalidRequest("The request body "+why+" (at byte "+strconv.Itoa(at)+")", map[string]any{"offset": at})
	}
	if !utf8.Valid(body) {
		at := 0
		for at < len(body) {
			r, n := utf8.DecodeRune(body[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return bad("is not valid UTF-8 text", at)
	}
	if at := bytes.IndexByte(body, 0); at >= 0 {
		return bad("holds a NUL character", at)
	}
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			break
		}
		i += j
		if i+1 >= len(body) || body[i+1] != 'u' {
			i += 2 // \" \\ \n …: their second byte is no escape of its own
			continue
		}
		r, ok := hex4(body[i+2:])
		switch {
		case !ok:
			i += 2 // not JSON: the decoder refuses it
			continue
		case r == 0:
			return bad("holds a NUL character (\\u0000)", i)
		case r >= 0xdc00 && r <= 0xdfff:
			return bad("holds half a surrogate pair (a lone \\u"+string(body[i+2:i+6])+")", i)
		case r >= 0xd800 && r <= 0xdbff:
			lo, ok := rune(0), false
			if i+12 <= len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				lo, ok = hex4(body[i+8:])
			}
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return bad("holds half a surrogate pair (a lone \\u"+string(body[i+2:i+6])+")", i)
			}
			i += 12
			continue
		}
		i += 6
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
