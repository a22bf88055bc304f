package redis

import (
	"encoding/binary"
	"errors"

	"github.com/wagate/wagate/message"
)

// A batch is stored in chunks of up to ChunkSize messages, each one packed
// record (one Redis string) instead of a state hash, queue entry and event
// per message: the API writes O(1) per chunk, and the dispatcher makes each
// message's state when it takes it to send (begin.lua), at the number's
// rate. Only Go reads and writes the records; Lua passes them through.
//
// A record is chunkVersion, then per message four fields (recipient, type,
// content, preview), each an unsigned varint length and that many bytes.

// ChunkSize is how many messages of a batch one packed record holds.
const ChunkSize = 1000

// chunkVersion starts every packed record, so that its layout may change.
const chunkVersion = 1

// errBadChunk says a packed record is not one this code wrote.
var errBadChunk = errors.New("packed batch record is malformed")

// appendChunk appends the packed record of items to dst.
func appendChunk(dst []byte, items []BatchItem) []byte {
	dst = append(dst, chunkVersion)
	for i := range items {
		it := &items[i]
		dst = appendField(dst, it.Recipient)
		dst = appendField(dst, string(it.Type))
		dst = binary.AppendUvarint(dst, uint64(len(it.Content)))
		dst = append(dst, it.Content...)
		dst = appendField(dst, it.Preview)
	}
	return dst
}

func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeChunk reads a packed record. The items' contents share b's memory.
func decodeChunk(b []byte) ([]BatchItem, error) {
	if len(b) == 0 || b[0] != chunkVersion {
		return nil, errBadChunk
	}
	b = b[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(n) : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	var out []BatchItem
	for len(b) > 0 {
		r, ok1 := field()
		ty, ok2 := field()
		c, ok3 := field()
		p, ok4 := field()
		if !ok1 || !ok2 || !ok3 || !ok4 || len(out) == ChunkSize {
			return nil, errBadChunk
		}
		out = append(out, BatchItem{Recipient: string(r), Type: message.Type(ty), Content: c, Preview: string(p)})
	}
	return out, nil
}
