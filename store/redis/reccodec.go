package redis

import (
	"strconv"
	"time"

	"github.com/wagate/wagate/message"
)

// A send record is how a single send to be sent now is accepted
// (enqueue_now.lua): one packed value holding everything about the message,
// written where each reader looks for it, instead of a state hash, a queue
// entry, an event and a file entry of its own:
//
//   - the shard's pending hash (wa:{sNN}:pend, field = message id) until
//     the dispatcher takes the message and makes its state from it
//     (lib.lua's materialize_send); State, the idempotent repeat's answer
//     and a conversation's owner are read from it meanwhile;
//   - the events stream: it is the message's "queued" event;
//   - the file stream: it is the entry that files the message into its
//     conversation.
//
// The queue gets one entry per call naming the call's messages
// (enqueue.lua).
//
// Layout: the version '3', then "<length>:<bytes>" values:
//
//	'3' m s ts t f r ty l | nw c | sm cp tn b x ft fas p md
//
// (message id, status, time, tenant, sender, recipient, type, lane; "1"
// when the message made its conversation, the conversation id; staff
// member, campaign, template name, content, expires, fallback text,
// fallback after (s), preview, conversation metadata). Go lays out the
// head (up to the lane) and the tail (from the staff member); the function
// puts the conversation between them, as only it decides it.
const recordVersion = '3'

// recordValues is how many packed values a send record holds.
const recordValues = 19

// sendRecord is one decoded send record.
type sendRecord struct {
	id, status, tenant, sender, recipient, typ, lane string
	at                                               int64
	newlyMade                                        bool
	conv, staff, campaign, template, content         string
	expires, fallbackAfter                           int64
	fallbackText, preview, meta                      string
}

// appendRecordParts lays out the head and the tail of a's send record.
func appendRecordParts(head, tail []byte, id []byte, a *EnqueueArgs, lane message.Lane, now int64) ([]byte, []byte) {
	head = append(head, recordVersion)
	head = strconv.AppendInt(head, int64(len(id)), 10)
	head = append(append(head, ':'), id...)
	head = appendPacked(head, string(message.StatusQueued))
	head = appendPackedInt(head, now)
	head, tail = appendStaticParts(head, tail, a, lane)
	tail = strconv.AppendInt(tail, int64(len(a.Content)), 10)
	tail = append(append(tail, ':'), a.Content...)
	tail = appendPackedInt(tail, a.ExpiresMS)
	tail = appendPacked(tail, a.FallbackText)
	tail = appendPackedInt(tail, int64(a.FallbackAfter/time.Second))
	tail = appendPacked(tail, a.Preview)
	return head, appendPacked(tail, metaJSON(a.ConversationMeta))
}

// decodeRecordPrefix reads the send record at the start of s and returns
// what follows it (a call's records come one after another).
func decodeRecordPrefix(s string) (sendRecord, string, bool) {
	var v [recordValues]string
	if len(s) == 0 || s[0] != recordVersion {
		return sendRecord{}, "", false
	}
	rest, ok := unpackPrefix(s[1:], v[:])
	if !ok {
		return sendRecord{}, "", false
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(v[i], 10, 64); return n }
	return sendRecord{
		id: v[0], status: v[1], at: num(2), tenant: v[3], sender: v[4], recipient: v[5], typ: v[6], lane: v[7],
		newlyMade: v[8] == "1", conv: v[9], staff: v[10], campaign: v[11], template: v[12], content: v[13],
		expires: num(14), fallbackText: v[15], fallbackAfter: num(16), preview: v[17], meta: v[18],
	}, rest, true
}

// eventSlots fills v (eventSlots' order) with the "queued" event the
// record stands for.
func (r *sendRecord) eventSlots(v *[len(eventSlots)]string) {
	// m t f r s ts ty l c sm a ch p pid ec et pc b pcv pm pt cp tn
	*v = [len(eventSlots)]string{r.id, r.tenant, r.sender, r.recipient, r.status, strconv.FormatInt(r.at, 10),
		r.typ, r.lane, r.conv, r.staff, "0", "whatsapp"}
	v[21], v[22] = r.campaign, r.template
}

// fileEntry is the entry that files the record's message into its
// conversation.
func (r *sendRecord) fileEntry(streamID string) fileEntry {
	e := appendOutEntry(nil, r.id, r.at, &EnqueueArgs{Type: message.Type(r.typ), Preview: r.preview, StaffMemberID: r.staff})
	return fileEntry{id: streamID, kind: "o", tenant: r.tenant, sender: r.sender, guest: r.recipient, at: r.at,
		preview: r.preview, entry: string(e), md: r.meta, conv: r.conv, newlyMade: r.newlyMade}
}

// state is the message's State while its record is all there is of it.
func (r *sendRecord) state() *State {
	return &State{ID: r.id, TenantID: r.tenant, Sender: r.sender, Recipient: r.recipient,
		Status: message.Status(r.status), Type: message.Type(r.typ), Lane: message.Lane(r.lane),
		ConversationID: r.conv, StaffMemberID: r.staff, QueuedMS: r.at, Campaign: r.campaign,
		ExpiresMS: r.expires, FallbackText: r.fallbackText, FallbackAfterS: r.fallbackAfter, Content: []byte(r.content)}
}
