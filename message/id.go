package message

import (
	"errors"
	"math/rand/v2"
	"strconv"
)

// IDPrefix starts every message id, BatchPrefix every batch id and
// ConversationPrefix every conversation id wagate makes.
const (
	IDPrefix           = "msg_"
	BatchPrefix        = "bat_"
	ConversationPrefix = "conv_"
)

// ErrBadID says a string is not a message id of this gateway.
var ErrBadID = errors.New("not a wagate message id")

// crockford is Crockford's base32 alphabet in lower case: no i, l, o, u, so
// ids read aloud and copied by hand survive.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// AppendID appends a new message id for shard to dst and returns the result.
//
// The id is "msg_" + 10 base32 characters of the Unix millisecond time (so ids
// sort by creation time) + 13 of 64 random bits + "_" + the shard number, so
// that any process finds a message's keys from its id alone.
func AppendID(dst []byte, shard int, nowMS int64) []byte {
	return appendID(dst, IDPrefix, shard, nowMS, rand.Uint64())
}

// appendID appends prefix, the time, 64 bits r and the shard.
func appendID(dst []byte, prefix string, shard int, nowMS int64, r uint64) []byte {
	dst = append(dst, prefix...)
	t := uint64(nowMS)
	for i := 9; i >= 0; i-- {
		dst = append(dst, crockford[(t>>(uint(i)*5))&31])
	}
	for i := 12; i >= 0; i-- {
		dst = append(dst, crockford[(r>>(uint(i)*5))&31])
	}
	dst = append(dst, '_')
	return strconv.AppendInt(dst, int64(shard), 10)
}

// BatchIndexBits are the low bits of a batch id's random part that are
// zero in the batch's id and hold a message's position in its messages'
// ids: a batch takes at most 1 << BatchIndexBits messages.
const BatchIndexBits = 14

// NewBatchID returns a new batch id for shard: like a message id, with
// BatchPrefix, and the low BatchIndexBits of its random part zero.
func NewBatchID(shard int, nowMS int64) string {
	var b [40]byte
	return string(appendID(b[:0], BatchPrefix, shard, nowMS, rand.Uint64()&^(1<<BatchIndexBits-1)))
}

// BatchMessageID is the id of message index of a batch: the batch's time,
// random part and shard, with index in the random part's low bits. So a
// batch needs no list of its messages' ids, queueing a batch again (a retry
// with the same Idempotency-Key) finds the messages it queued the first
// time, and BatchOf finds a message's batch and position from its id alone
// (a message not yet materialised from its batch's packed record is
// answered from that record).
func BatchMessageID(batchID string, index int) string {
	shard, _ := shardOf(BatchPrefix, batchID)
	r := randomPart(batchID, BatchPrefix) | uint64(index)&(1<<BatchIndexBits-1)
	var b [40]byte
	return string(appendID(b[:0], IDPrefix, shard, IDTimeMS(batchID), r))
}

// BatchOf returns the batch id and position that message id would have if
// it were a batch's message. Any valid message id has an answer: whether
// that batch exists, and holds that position, is the store's to say.
func BatchOf(id string) (string, int, error) {
	shard, err := ShardOf(id)
	if err != nil {
		return "", 0, err
	}
	r := randomPart(id, IDPrefix)
	var b [40]byte
	return string(appendID(b[:0], BatchPrefix, shard, IDTimeMS(id), r&^(1<<BatchIndexBits-1))), int(r & (1<<BatchIndexBits - 1)), nil
}

// randomPart decodes the 64 random bits of a valid id with prefix.
func randomPart(id, prefix string) uint64 {
	var r uint64
	for i := len(prefix) + 10; i < len(prefix)+idBodyLen && i < len(id); i++ {
		r = r<<5 | uint64(crockfordValue(id[i]))
	}
	return r
}

// BatchShardOf returns the shard encoded in a batch id, or ErrBadID.
func BatchShardOf(id string) (int, error) { return shardOf(BatchPrefix, id) }

// NewID returns a new message id for shard.
func NewID(shard int, nowMS int64) string {
	var b [40]byte
	return string(AppendID(b[:0], shard, nowMS))
}

// idBodyLen is the length of the time and random part of an id.
const idBodyLen = 10 + 13

// ShardOf returns the shard encoded in id, or ErrBadID when id is not one of
// ours. It checks the whole shape so that a foreign id never reaches Redis.
func ShardOf(id string) (int, error) { return shardOf(IDPrefix, id) }

func shardOf(prefix, id string) (int, error) {
	if len(id) < len(prefix)+idBodyLen+2 || id[:len(prefix)] != prefix {
		return 0, ErrBadID
	}
	body := id[len(prefix) : len(prefix)+idBodyLen]
	for i := 0; i < len(body); i++ {
		if !isCrockford(body[i]) {
			return 0, ErrBadID
		}
	}
	rest := id[len(prefix)+idBodyLen:]
	if rest[0] != '_' || len(rest) > 5 {
		return 0, ErrBadID
	}
	n := 0
	for i := 1; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' || (i == 1 && c == '0' && len(rest) > 2) {
			return 0, ErrBadID
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// NewConversationID returns a new conversation id for shard, shaped like a
// message id with ConversationPrefix.
func NewConversationID(shard int, nowMS int64) string {
	var b [40]byte
	return string(appendID(b[:0], ConversationPrefix, shard, nowMS, rand.Uint64()))
}

// ConversationShardOf returns the shard encoded in a conversation id wagate
// made, or ErrBadID (for an id a caller chose, such as "conv_abc123").
func ConversationShardOf(id string) (int, error) { return shardOf(ConversationPrefix, id) }

// IDTimeMS returns the creation time encoded in a valid message or batch id.
func IDTimeMS(id string) int64 {
	var t int64
	for i := len(IDPrefix); i < len(IDPrefix)+10 && i < len(id); i++ {
		t = t<<5 | int64(crockfordValue(id[i]))
	}
	return t
}

func isCrockford(c byte) bool { return crockfordValue(c) >= 0 }

func crockfordValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		for i := 10; i < len(crockford); i++ {
			if crockford[i] == c {
				return i
			}
		}
	}
	return -1
}
