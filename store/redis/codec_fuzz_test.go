package redis

import (
	"bytes"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
)

// FuzzDecodeChunk: any bytes decode to items or an error, never a panic;
// what decodes packs back to the same bytes.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(appendChunk(nil, []BatchItem{{Recipient: "+14155550100", Type: message.TypeText, Content: []byte(`{"body":"hi"}`), Preview: "hi"}}))
	f.Add(appendChunk(nil, []BatchItem{{}, {Recipient: "+1", Content: []byte{0, 255}}}))
	f.Add([]byte{chunkVersion, 200, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := decodeChunk(b)
		if err != nil {
			return
		}
		if again := appendChunk(nil, items); !bytes.Equal(again, b) {
			t.Fatalf("%q decoded to %d items that pack to %q", b, len(items), again)
		}
	})
}

// FuzzDecodePackedEvent: any string decodes or is refused, never a panic;
// a queued event laid out by appendQueuedEvent decodes to its values.
func FuzzDecodePackedEvent(f *testing.F) {
	f.Add("+14155550100", "conv_x", "staff:1", "hotel")
	f.Add("", "", "", "")
	f.Add("1:2:3", "9999999999:", "\x00", "é")
	f.Fuzz(func(t *testing.T, guest, conv, staff, tenant string) {
		a := &EnqueueArgs{TenantID: tenant, Sender: "+15550001000", Recipient: guest, Type: message.TypeText, StaffMemberID: staff}
		a.Campaign, a.Template = "spring", "welcome"
		head, pre, post := appendQueuedEvent(nil, nil, nil, "msg_1", a, message.LaneTx, message.StatusQueued, 1700000000123)
		packed := string(head) + string(pre) + string(appendPacked(nil, conv)) + string(post)
		var v [len(eventSlots)]string
		if !decodePacked(packed, &v) {
			t.Fatalf("refused its own %q", packed)
		}
		if v[0] != "msg_1" || v[1] != tenant || v[3] != guest || v[4] != "queued" || v[5] != "1700000000123" ||
			v[8] != conv || v[9] != staff || v[10] != "0" || v[11] != "whatsapp" || v[12] != "" || v[20] != "" ||
			v[21] != "spring" || v[22] != "welcome" || v[6] != "text" || v[7] != "tx" {
			t.Fatalf("decoded %q", v)
		}
		decodePacked(guest+conv+staff, &v) // anything else: no panic
	})
}

// FuzzGatheredEvents: an entry holding several events one after another
// (a call's gathered events) decodes to each of them in order, with its
// place in the entry; anything appended after them is no event and never a
// panic.
func FuzzGatheredEvents(f *testing.F) {
	f.Add("+14155550100", "conv_x", "", uint8(3))
	f.Add("", "", "9:", uint8(1))
	f.Add("1:2:3", "é", "2", uint8(0))
	f.Fuzz(func(t *testing.T, guest, conv, tail string, n uint8) {
		n = n%5 + 1
		var e []byte
		for i := range n {
			a := &EnqueueArgs{TenantID: "hotel", Sender: "+15550001000", Recipient: guest, Type: message.TypeText}
			head, pre, post := appendQueuedEvent(nil, nil, nil, "msg_"+string(rune('a'+i)), a, message.LaneTx,
				message.StatusQueued, 1700000000000+int64(i))
			e = append(append(append(append(e, head...), pre...), appendPacked(nil, conv)...), post...)
		}
		m := goredis.XMessage{ID: "1700000000000-7", Values: map[string]any{"e": string(e)}}
		evs := appendEvents(nil, 3, m)
		if len(evs) != int(n) {
			t.Fatalf("%d events of %d", len(evs), n)
		}
		for i, ev := range evs {
			if ev.Index != i || ev.StreamID != m.ID || ev.Shard != 3 || ev.MessageID != "msg_"+string(rune('a'+i)) ||
				ev.Recipient != guest || ev.ConversationID != conv || ev.AtMS != 1700000000000+int64(i) {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
		m.Values["e"] = string(e) + tail
		if evs := appendEvents(nil, 3, m); len(evs) < int(n) {
			t.Fatalf("with %q after them, %d events of %d", tail, len(evs), n)
		}
	})
}

// FuzzGatheredFileEntries: a file stream entry holding several messages'
// file entries one after another (a call's) decodes to each, in order;
// what follows them that is not one is dropped, never a panic.
func FuzzGatheredFileEntries(f *testing.F) {
	f.Add("+14155550100", "conv_x", "Your room is ready", "", uint8(3))
	f.Add("", "", "", "1junk", uint8(0))
	f.Add("é", "9:", "\x00", "19:", uint8(4))
	f.Fuzz(func(t *testing.T, guest, conv, preview, tail string, n uint8) {
		n = n%5 + 1
		var s []byte
		for i := range n {
			s = appendFilePre(s, "o", "hotel", "+15550001000", guest, 1700000000000+int64(i), preview, []byte(`{"id":"m"}`), 0, "", "")
			s = appendPacked(appendPacked(s, conv), "1")
		}
		es := appendFileEntries(nil, "1700000000000-1", string(s)+tail)
		if len(es) < int(n) {
			t.Fatalf("%d file entries of %d (tail %q)", len(es), n, tail)
		}
		for i, e := range es[:n] {
			if e.guest != guest || e.conv != conv || e.preview != preview || e.at != 1700000000000+int64(i) ||
				!e.newlyMade || e.kind != "o" || e.id != "1700000000000-1" {
				t.Fatalf("file entry %d: %+v", i, e)
			}
		}
	})
}

// FuzzSendRecords: send records laid out as enqueue.lua puts them together
// (Go's head and tail around the made flag and the conversation id), one
// after another as a call gathers them, decode to their values, and read as
// the messages' "queued" events and file entries; what follows them is no
// record and never a panic.
func FuzzSendRecords(f *testing.F) {
	f.Add("+14155550100", "conv_x", `{"body":"hi"}`, "Your room", "staff:1", "", true, uint8(3))
	f.Add("", "", "", "", "", "3junk", false, uint8(0))
	f.Add("1:2:3", "9:", "\x00\xff", "é", "", "3:", true, uint8(4))
	f.Fuzz(func(t *testing.T, guest, conv, content, preview, staff, tail string, made bool, n uint8) {
		n = n%5 + 1
		var s []byte
		for i := range n {
			a := &EnqueueArgs{TenantID: "hotel", Sender: "+15550001000", Recipient: guest, Type: message.TypeText,
				Content: []byte(content), Preview: preview, StaffMemberID: staff, Campaign: "spring", Template: "welcome",
				ExpiresMS: 1700000009000, FallbackText: preview, FallbackAfter: 90e9, ConversationMeta: map[string]string{"room": "412"}}
			head, tl := appendRecordParts(nil, nil, []byte("msg_"+string(rune('a'+i))), a, message.LaneTx, 1700000000000+int64(i))
			nw := "1:0"
			if made {
				nw = "1:1"
			}
			s = append(append(append(append(s, head...), nw...), appendPacked(nil, conv)...), tl...)
		}
		rest := string(s) + tail
		for i := range int(n) {
			r, more, ok := decodeRecordPrefix(rest)
			if !ok || r.id != "msg_"+string(rune('a'+i)) || r.recipient != guest || r.conv != conv || r.content != content ||
				r.preview != preview || r.staff != staff || r.newlyMade != made || r.at != 1700000000000+int64(i) ||
				r.expires != 1700000009000 || r.fallbackAfter != 90 || r.meta != `{"room":"412"}` || r.lane != "tx" {
				t.Fatalf("record %d: %+v %v", i, r, ok)
			}
			rest = more
		}
		m := goredis.XMessage{ID: "1700000000000-7", Values: map[string]any{"e": string(s) + tail}}
		evs := appendEvents(nil, 3, m)
		if len(evs) < int(n) {
			t.Fatalf("%d events of %d", len(evs), n)
		}
		for i, ev := range evs[:n] {
			if ev.Index != i || ev.Status != message.StatusQueued || ev.Recipient != guest || ev.ConversationID != conv ||
				ev.StaffMemberID != staff || ev.Campaign != "spring" || ev.TemplateName != "welcome" || ev.Channel != "whatsapp" {
				t.Fatalf("event %d: %+v", i, ev)
			}
		}
		es := appendFileEntries(nil, m.ID, string(s)+tail)
		if len(es) < int(n) {
			t.Fatalf("%d file entries of %d", len(es), n)
		}
		for i, e := range es[:n] {
			if e.kind != "o" || e.guest != guest || e.conv != conv || e.newlyMade != made || e.preview != preview ||
				e.md != `{"room":"412"}` || e.at != 1700000000000+int64(i) {
				t.Fatalf("file entry %d: %+v", i, e)
			}
		}
	})
}

// FuzzPendingSends: an entry's "s" field names its sends one a line; any
// string reads as the lines of that shape, never a panic.
func FuzzPendingSends(f *testing.F) {
	f.Add("msg_a\t+14155550100\t1\nmsg_b\t+14155550101\t0")
	f.Add("\t\t\n\n")
	f.Add("msg_a")
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range appendPendingSends(nil, s) {
			if p.ID == "" || bytes.ContainsAny([]byte(p.ID+p.Recipient), "\t\n") {
				t.Fatalf("%q read as %+v", s, p)
			}
		}
	})
}
