package redis

import (
	"strconv"
	"strings"
)

// A file entry (the shard's file stream, one field "e") is packed like an
// event: the version '1', then "<length>:<bytes>" values in fileSlots'
// order. Go lays out all but the last two (pre); the function that decides
// the conversation appends its id and whether the message made it. The
// filer reads and groups the entries in Go and hands Redis only what each
// conversation needs (file.lua), so Redis never parses them. A send record
// (reccodec.go) is also its message's file entry.
const fileVersion = '1'

// fileSlots are a file entry's values, in order.
var fileSlots = [...]string{"k", "t", "f", "g", "at", "p", "e", "li", "nm", "md", "c", "nw"}

// fileEntry is one decoded file entry.
type fileEntry struct {
	id string // its stream id
	// kind is "o" (outbound: accepted) or "i" (inbound: received).
	kind, tenant, sender, guest string
	at                          int64
	preview, entry              string
	// li and nm are an inbound message's guest time (ms) and name; md an
	// outbound one's conversation metadata (JSON object, "" none).
	li        int64
	nm, md    string
	conv      string
	newlyMade bool
}

// appendFilePre lays out a file entry's values up to the conversation id.
func appendFilePre(dst []byte, kind, tenant, sender, guest string, at int64, preview string, entry []byte, li int64, nm, md string) []byte {
	dst = append(dst, fileVersion)
	dst = appendPacked(dst, kind)
	dst = appendPacked(dst, tenant)
	dst = appendPacked(dst, sender)
	dst = appendPacked(dst, guest)
	dst = appendPackedInt(dst, at)
	dst = appendPacked(dst, preview)
	dst = strconv.AppendInt(dst, int64(len(entry)), 10)
	dst = append(append(dst, ':'), entry...)
	if li == 0 {
		dst = append(dst, "0:"...)
	} else {
		dst = appendPackedInt(dst, li)
	}
	dst = appendPacked(dst, nm)
	return appendPacked(dst, md)
}

// appendPackedInt appends n as a packed value.
func appendPackedInt(dst []byte, n int64) []byte {
	var t [20]byte
	v := strconv.AppendInt(t[:0], n, 10)
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	return append(append(dst, ':'), v...)
}

// unpack reads the packed values of s (after its version byte) into v;
// false when s is not exactly len(v) of them.
func unpack(s string, v []string) bool {
	rest, ok := unpackPrefix(s, v)
	return ok && rest == ""
}

// unpackPrefix is unpack of the values at the start of s; it returns what
// follows them.
func unpackPrefix(s string, v []string) (string, bool) {
	for i := range v {
		colon := strings.IndexByte(s, ':')
		if colon <= 0 || colon > 10 {
			return "", false
		}
		n, err := strconv.Atoi(s[:colon])
		if err != nil || n < 0 || n > len(s)-colon-1 {
			return "", false
		}
		v[i] = s[colon+1 : colon+1+n]
		s = s[colon+1+n:]
	}
	return s, true
}

// appendFileEntries appends the packed file entries of stream entry id's
// value s: one, or several a function gathered one after another. What
// follows the last readable one is not ours and dropped.
func appendFileEntries(dst []fileEntry, id, s string) []fileEntry {
	for len(s) > 0 && s[0] == recordVersion {
		// A send record is its message's file entry (reccodec.go).
		r, rest, ok := decodeRecordPrefix(s)
		if !ok {
			return dst
		}
		dst = append(dst, r.fileEntry(id))
		s = rest
	}
	for len(s) > 0 && s[0] == fileVersion {
		var v [len(fileSlots)]string
		rest, ok := unpackPrefix(s[1:], v[:])
		if !ok {
			break
		}
		at, _ := strconv.ParseInt(v[4], 10, 64)
		li, _ := strconv.ParseInt(v[7], 10, 64)
		dst = append(dst, fileEntry{id: id, kind: v[0], tenant: v[1], sender: v[2], guest: v[3], at: at, preview: v[5],
			entry: v[6], li: li, nm: v[8], md: v[9], conv: v[10], newlyMade: v[11] == "1"})
		s = rest
	}
	return dst
}
