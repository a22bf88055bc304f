package redis

import (
	"strconv"

	"github.com/wagate/wagate/message"
)

// A packed event is one stream field "e": the version '1', then the
// event's packedSlots values, each "<length>:<bytes>", in eventSlots' order
// (an older wagate wrote the first 19: no pricing model and type, campaign,
// template). Every event is written packed, one short XADD instead of two
// dozen arguments: the accept path's "queued" ones laid out by Go around the
// conversation id the function decides, the others by lib.lua's emit_with.
// decodeEvent also reads the field-per-slot events of older wagates.
const packedVersion = '1'

// packedSlots is how many of eventSlots a packed event holds: all of them,
// or the first 19 in one an older wagate wrote.
const (
	packedSlots    = len(eventSlots)
	packedSlotsOld = 19
)

// eventSlots is the order of a packed event's values.
var eventSlots = [...]string{"m", "t", "f", "r", "s", "ts", "ty", "l", "c", "sm", "a",
	"ch", "p", "pid", "ec", "et", "pc", "b", "pcv", "pm", "pt", "cp", "tn"}

// appendPacked appends one value of a packed event.
func appendPacked(dst []byte, v string) []byte {
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	dst = append(dst, ':')
	return append(dst, v...)
}

// appendQueuedEvent lays out the "queued" (or "scheduled") event of an
// accepted message in two parts: the values before the conversation id and
// those after it (the function puts "<length>:<id>" between).
func appendQueuedEvent(pre, post []byte, id string, a *EnqueueArgs, lane message.Lane, status message.Status, now int64) ([]byte, []byte) {
	pre = append(pre, packedVersion)
	pre = appendPacked(pre, id)
	pre = appendPacked(pre, a.TenantID)
	pre = appendPacked(pre, a.Sender)
	pre = appendPacked(pre, a.Recipient)
	pre = appendPacked(pre, string(status))
	var t [20]byte
	ts := strconv.AppendInt(t[:0], now, 10)
	pre = strconv.AppendInt(pre, int64(len(ts)), 10)
	pre = append(append(pre, ':'), ts...)
	pre = appendPacked(pre, string(a.Type))
	pre = appendPacked(pre, string(lane))
	post = appendPacked(post, a.StaffMemberID)
	post = appendPacked(post, "0")
	post = appendPacked(post, "whatsapp")
	for range 9 { // p pid ec et pc b pcv pm pt: none before a provider
		post = append(post, "0:"...)
	}
	post = appendPacked(post, a.Campaign)
	post = appendPacked(post, a.Template)
	return pre, post
}

// decodePacked reads a packed event's values into v; false when it is
// not one this code wrote.
func decodePacked(s string, v *[len(eventSlots)]string) bool {
	if len(s) == 0 || s[0] != packedVersion {
		return false
	}
	return unpack(s[1:], v[:packedSlots]) || unpack(s[1:], v[:packedSlotsOld])
}
