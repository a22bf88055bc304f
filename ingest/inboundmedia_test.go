package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/mediatest"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// guestMediaMessage files a guest's message to the hotel's first number
// as the inbound role does (package inbound), its attachment's copy
// media id; rec, when not nil, is the download's outcome, data its bytes.
func (h *mediaHarness) guestMediaMessage(guest, wamid, typ string, e redis.HistoryEntry, rec *redis.MediaRecord, data []byte) {
	h.t.Helper()
	ctx := context.Background()
	now := time.Now().UnixMilli()
	e.ID, e.AtMS, e.Type = wamid, now, typ
	_, err := h.store.RecordInbound(ctx, &redis.InboundArgs{TenantID: "grand-plaza", Sender: "+15550001000", Guest: guest,
		ProviderMessageID: wamid, AtMS: now, NotifyKind: message.EventInboundMessage, Entry: e})
	must(h.t, err)
	if rec == nil {
		return
	}
	if data != nil {
		blob, err := h.files.Put(bytes.NewReader(data), int64(len(data)))
		must(h.t, err)
		rec.SHA256, rec.Size = blob.SHA256, blob.Size
	}
	rec.ID, rec.TenantID, rec.Type, rec.CreatedMS, rec.Source = e.MediaID, "grand-plaza", typ, now, "in"
	must(h.t, h.store.PutMedia(ctx, rec, time.Hour))
}

// historyEntry is message wamid of guest's current conversation, as the
// API shows it.
func (h *mediaHarness) historyEntry(token, guest, wamid string) map[string]any {
	h.t.Helper()
	_, list, _ := h.do("GET", "/api/v1/whatsapp/conversations?guest_phone="+strings.ReplaceAll(guest, "+", "%2B"), token, "")
	cs, _ := list["conversations"].([]any)
	if len(cs) == 0 {
		return nil
	}
	id := cs[0].(map[string]any)["conversation_id"].(string)
	_, conv, _ := h.do("GET", "/api/v1/whatsapp/conversations/"+id, token, "")
	msgs, _ := conv["messages"].([]any)
	for _, m := range msgs {
		if m := m.(map[string]any); m["message_id"] == wamid {
			return m
		}
	}
	return nil
}

// TestGuestMediaIsLinkedInTheHistory: a guest's attachment shows in the
// history with the status of its download (package inbound downloads
// it): ready with a signed URL that serves the very bytes, failed with
// its reason and no URL (nor bytes, nor sends), pending until then; the
// tenant's own, which another tenant can neither see, send, nor reach by
// reusing its URL's signature.
func TestGuestMediaIsLinkedInTheHistory(t *testing.T) {
	h := newMediaHarness(t)
	tests := []struct {
		typ, mime, filename, caption string
		data                         []byte
		wantName                     string
	}{
		{typ: "image", mime: "image/jpeg", caption: "The stain on the carpet", data: mediatest.JPEG(t), wantName: "image.jpg"},
		{typ: "document", mime: "application/pdf", filename: "Booking RB123456.pdf", data: mediatest.PDF(), wantName: "Booking RB123456.pdf"},
		{typ: "sticker", mime: "image/webp", data: mediatest.WebP(), wantName: "sticker.webp"},
	}
	for _, tc := range tests {
		t.Run("ready "+tc.typ, func(t *testing.T) {
			wamid := "wamid.MEDIA" + tc.typ
			id := mediakit.NewID()
			preview := "[" + tc.typ + "]"
			if tc.caption != "" {
				preview += " " + tc.caption
			}
			h.guestMediaMessage(seedGuest, wamid, tc.typ, redis.HistoryEntry{Preview: preview, MediaID: id, ProviderMediaID: "1003383421387000",
				MimeType: tc.mime, Filename: tc.filename, Caption: tc.caption},
				&redis.MediaRecord{MIME: tc.mime, Filename: tc.wantName, ProviderMediaID: "1003383421387000"}, tc.data)
			m := h.historyEntry(staffToken, seedGuest, wamid)
			sum := sha256.Sum256(tc.data)
			med, _ := m["media"].(map[string]any)
			if m["media_status"] != mediakit.StatusReady || m["type"] != tc.typ || med["provider_media_id"] != "1003383421387000" || med["mime_type"] != tc.mime ||
				med["size"] != float64(len(tc.data)) || med["sha256"] != hex.EncodeToString(sum[:]) || med["id"] != id {
				t.Fatalf("history entry %v", m)
			}
			if tc.caption != "" && (med["caption"] != tc.caption || !strings.Contains(m["preview"].(string), tc.caption)) {
				t.Fatalf("caption lost: %v", m)
			}
			if tc.filename != "" && med["filename"] != tc.filename {
				t.Fatalf("file name lost: %v", m)
			}
			code, hdr, body := h.get(m["media_url"].(string))
			if code != 200 || !bytes.Equal(body, tc.data) || !strings.HasPrefix(hdr.Get("Content-Type"), tc.mime) ||
				!strings.Contains(hdr.Get("Content-Disposition"), tc.wantName) {
				t.Fatalf("media_url: %d %v, %d bytes", code, hdr, len(body))
			}
			exp, err := time.Parse(time.RFC3339, m["media_url_expires_at"].(string))
			if err != nil || exp.Sub(h.clock.Now()) > historyURLTTL || exp.Sub(h.clock.Now()) < historyURLTTL-time.Minute {
				t.Fatalf("history url expires at %v", m["media_url_expires_at"])
			}
		})
	}

	t.Run("pending", func(t *testing.T) {
		h.guestMediaMessage(seedGuest, "wamid.PENDING", "image", redis.HistoryEntry{Preview: "[image]", MediaID: mediakit.NewID(), MimeType: "image/jpeg"}, nil, nil)
		if m := h.historyEntry(staffToken, seedGuest, "wamid.PENDING"); m["media_status"] != mediakit.StatusPending || m["media_url"] != nil {
			t.Fatalf("history entry %v", m)
		}
	})

	t.Run("failed", func(t *testing.T) {
		id := mediakit.NewID()
		h.guestMediaMessage(seedGuest, "wamid.FAIL", "image", redis.HistoryEntry{Preview: "[image]", MediaID: id, MimeType: "image/jpeg"},
			&redis.MediaRecord{Status: redis.MediaFailed, Reason: "type_mismatch", Detail: "the image is a PDF document (application/pdf) by its bytes"}, nil)
		m := h.historyEntry(staffToken, seedGuest, "wamid.FAIL")
		if m["media_status"] != mediakit.StatusFailed || m["media_failure_code"] != "type_mismatch" || m["media_failure_reason"] == "" || m["media_url"] != nil {
			t.Fatalf("history entry %v", m)
		}
		// No bytes are served for it, even with a valid signature, and
		// it cannot be sent on.
		if code, _, _ := h.get(h.srv.media.URL(id, h.clock.Now().Add(time.Hour).Unix())); code != 404 {
			t.Fatalf("failed media served: %d", code)
		}
		send := `{"guest_phone":"` + seedGuest + `","media_id":"` + id + `","media_type":"image"}`
		if code, v, _ := h.do("POST", sendMediaPath, staffToken, send); code != 404 || errCode(t, v) != string(message.CodeMediaNotFound) {
			t.Fatalf("failed media sent on: %d %v", code, v)
		}
	})

	t.Run("the tenant's own", func(t *testing.T) {
		id := mediakit.NewID()
		h.guestMediaMessage(seedGuest, "wamid.OWN", "image", redis.HistoryEntry{Preview: "[image]", MediaID: id, MimeType: "image/jpeg"},
			&redis.MediaRecord{MIME: "image/jpeg", Filename: "image.jpg"}, mediatest.JPEG(t))
		m := h.historyEntry(staffToken, seedGuest, "wamid.OWN")
		if m["media_status"] != mediakit.StatusReady {
			t.Fatalf("history entry %v", m)
		}
		// The hotel may forward its guest's photo; the other tenant may not.
		send := `{"guest_phone":"` + seedGuest + `","media_id":"` + id + `","media_type":"image"}`
		if code, v, _ := h.do("POST", sendMediaPath, staffToken, send); code != 202 {
			t.Fatalf("the tenant's own: %d %v", code, v)
		}
		other := `{"guest_phone":"+14155550100","media_id":"` + id + `","media_type":"image"}`
		if code, v, _ := h.do("POST", sendMediaPath, otherToken, other); code != 404 || errCode(t, v) != string(message.CodeMediaNotFound) {
			t.Fatalf("another tenant's: %d %v", code, v)
		}
		if e := h.historyEntry(otherToken, seedGuest, "wamid.OWN"); e != nil {
			t.Fatalf("another tenant sees %v", e)
		}
		// The signature covers the id: another media's id under it is refused.
		u := m["media_url"].(string)
		upload := h.mustUpload("other.jpg", mediatest.JPEG(t), "image")["media_id"].(string)
		if code, _, _ := h.get(strings.Replace(u, id, upload, 1)); code != 403 {
			t.Fatalf("signature reused for another id: %d", code)
		}
	})

	t.Run("contacts", func(t *testing.T) {
		card := `[{"name":{"formatted_name":"Kerry Fitzgerald","first_name":"Kerry"},"phones":[{"phone":"+1 (650) 555-1234","type":"CELL","wa_id":"16505551234"}],"org":{"company":"Example Taxi"}}]`
		h.guestMediaMessage(seedGuest, "wamid.CARD", "contacts", redis.HistoryEntry{Preview: "[contacts] Kerry Fitzgerald", Contacts: json.RawMessage(card)}, nil, nil)
		m := h.historyEntry(staffToken, seedGuest, "wamid.CARD")
		if got, _ := json.Marshal(m["contacts"]); m == nil || string(got) != webhooktest.Canon(t, card) || m["preview"] != "[contacts] Kerry Fitzgerald" || m["media"] != nil {
			t.Fatalf("history entry %v", m)
		}
	})
}
