package chatapp

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"slices"
	"strings"
)

// Alibaba Cloud's RPC signature, version 1.0 (HMAC-SHA1):
//
//	CanonicalizedQueryString = the parameters but Signature, sorted by name,
//	                           each percentEncode(name) + "=" + percentEncode(value),
//	                           joined with "&"
//	StringToSign = Method + "&" + percentEncode("/") + "&" + percentEncode(CanonicalizedQueryString)
//	Signature    = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
//
// percentEncode is RFC 3986: A-Z a-z 0-9 - _ . ~ stay, every other byte of
// the UTF-8 text becomes %XY in upper-case hex (so a space is %20, never +).

// Param is one request parameter.
type Param struct {
	Key, Value string
}

// Sign returns the Signature of a request with params (every parameter but
// Signature itself) sent with method ("GET" or "POST"), keyed by the
// AccessKey secret.
func Sign(method string, params []Param, accessKeySecret string) string {
	ps := make([]param, len(params))
	for i, p := range params {
		ps[i] = param{key: p.Key, s: p.Value}
	}
	sortParams(ps)
	s := signer{mac: hmac.New(sha1.New, []byte(accessKeySecret+"&"))}
	return string(s.sign(method, appendCanonical(nil, ps)))
}

// param is one request parameter; its value is s, or b when b is not nil,
// so that values built in buffers need no string.
type param struct {
	key string
	s   string
	b   []byte
}

func sortParams(ps []param) {
	slices.SortFunc(ps, func(a, b param) int { return strings.Compare(a.key, b.key) })
}

// appendCanonical appends the canonicalized query string of ps, which are
// sorted by key. Being percent-encoded, it is also a valid form body.
func appendCanonical(dst []byte, ps []param) []byte {
	for i := range ps {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = appendPercentEncoded(dst, ps[i].key)
		dst = append(dst, '=')
		if ps[i].b != nil {
			dst = appendPercentEncoded(dst, ps[i].b)
		} else {
			dst = appendPercentEncoded(dst, ps[i].s)
		}
	}
	return dst
}

// appendPercentEncoded appends s percent-encoded as Alibaba's signature
// requires.
func appendPercentEncoded[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// signer computes signatures with one key. It is not safe for concurrent
// use; the client keeps one per pooled request.
type signer struct {
	mac hash.Hash
	sts []byte
	sum [sha1.Size]byte
	sig [28]byte // base64 of 20 bytes
}

// sign returns the signature of a canonicalized query string; the slice
// is s's own and valid until the next call.
func (s *signer) sign(method string, canonical []byte) []byte {
	s.sts = append(s.sts[:0], method...)
	s.sts = append(s.sts, "&%2F&"...)
	s.sts = appendPercentEncoded(s.sts, canonical)
	s.mac.Reset()
	s.mac.Write(s.sts)
	base64.StdEncoding.Encode(s.sig[:], s.mac.Sum(s.sum[:0]))
	return s.sig[:]
}
