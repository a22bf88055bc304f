package redis

import (
	"strconv"

	"github.com/wagate/wagate/message"
)

// A packed event is one stream field "e", in one of two layouts.
//
// Version '2' (written now): the values that change from event to event
// first, then the message's static part as its state keeps it (fields
// "ev" and "ev2", each short enough for Redis's compact hash encoding), so
// that a function emits an event by concatenating a few strings instead of
// packing two dozen values:
//
//	'2' m s ts a ch p pid ec et pc b pcv pm pt | t f r ty l | c sm cp tn
//
// Version '1' (older wagates): eventSlots' order, the first 19 in one an
// older still (no pricing model and type, campaign, template).
//
// A send record (reccodec.go, version '3') is read as its message's
// "queued" event.
//
// Each value is "<length>:<bytes>". One field may hold several version '2'
// (or '3') events one after another: the functions that record many messages a call
// write all of a call's events as one entry (lib.lua's gathered).
// appendEvents also reads the field-per-slot events of older wagates.
const (
	packedVersion   = '1'
	packedVersionV2 = '2'
)

// packedSlots is how many of eventSlots a packed event holds: all of them,
// or the first 19 in one an older wagate wrote.
const (
	packedSlots    = len(eventSlots)
	packedSlotsOld = 19
)

// eventSlots is the order of a version '1' event's values, and of what
// decodePacked fills.
var eventSlots = [...]string{"m", "t", "f", "r", "s", "ts", "ty", "l", "c", "sm", "a",
	"ch", "p", "pid", "ec", "et", "pc", "b", "pcv", "pm", "pt", "cp", "tn"}

// v2Slots maps a version '2' event's values, in order, to eventSlots.
var v2Slots = [len(eventSlots)]int{0, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 1, 2, 3, 6, 7, 8, 9, 21, 22}

// emptyProviderPart is a packed event's ch (whatsapp) and nine empty
// provider values: the part of an event before a provider has answered.
const emptyProviderPart = "8:whatsapp0:0:0:0:0:0:0:0:0:"

// appendPacked appends one value of a packed event.
func appendPacked(dst []byte, v string) []byte {
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	dst = append(dst, ':')
	return append(dst, v...)
}

// appendQueuedEvent lays out the "queued" (or "scheduled") event of an
// accepted message in three parts: its head (version to the provider
// values), and its static part before the conversation id (the state's
// "ev") and after it (with "<length>:<id>" put before it by the function,
// the state's "ev2").
func appendQueuedEvent(head, pre, post []byte, id string, a *EnqueueArgs, lane message.Lane, status message.Status, now int64) ([]byte, []byte, []byte) {
	head = append(head, packedVersionV2)
	head = appendPacked(head, id)
	head = appendPacked(head, string(status))
	head = appendPackedInt(head, now)
	head = append(head, "1:0"...)
	head = append(head, emptyProviderPart...)
	pre, post = appendStaticParts(pre, post, a, lane)
	return head, pre, post
}

// appendStaticParts appends the static part of a's message's events: the
// values before its conversation id (tenant, sender, recipient, type,
// lane: the state's "ev") to pre, those after it (staff member, campaign,
// template: "ev2" without the id) to post. A queued event and a send
// record both carry them.
func appendStaticParts(pre, post []byte, a *EnqueueArgs, lane message.Lane) ([]byte, []byte) {
	pre = appendPacked(pre, a.TenantID)
	pre = appendPacked(pre, a.Sender)
	pre = appendPacked(pre, a.Recipient)
	pre = appendPacked(pre, string(a.Type))
	pre = appendPacked(pre, string(lane))
	post = appendPacked(post, a.StaffMemberID)
	post = appendPacked(post, a.Campaign)
	return pre, appendPacked(post, a.Template)
}

// decodePacked reads a packed event's values into v; false when it is
// not one this code wrote.
func decodePacked(s string, v *[len(eventSlots)]string) bool {
	rest, ok := decodePackedPrefix(s, v)
	return ok && rest == ""
}

// decodePackedPrefix reads the packed event at the start of s into v and
// returns what follows it: an entry of a function that gathers its events
// (lib.lua's gathered) holds several version '2' events one after another.
func decodePackedPrefix(s string, v *[len(eventSlots)]string) (string, bool) {
	if len(s) == 0 {
		return "", false
	}
	switch s[0] {
	case packedVersionV2:
		var w [len(eventSlots)]string
		rest, ok := unpackPrefix(s[1:], w[:])
		if !ok {
			return "", false
		}
		for i, slot := range v2Slots {
			v[slot] = w[i]
		}
		return rest, true
	case recordVersion:
		// A send record is the message's "queued" event (reccodec.go).
		r, rest, ok := decodeRecordPrefix(s)
		if !ok {
			return "", false
		}
		r.eventSlots(v)
		return rest, true
	case packedVersion:
		// Version 1 came one to an entry.
		if unpack(s[1:], v[:packedSlots]) || unpack(s[1:], v[:packedSlotsOld]) {
			return "", true
		}
	}
	return "", false
}
