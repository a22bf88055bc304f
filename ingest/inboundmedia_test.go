package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/redis"
)

// fakeFetcher is a provider's media, by media id: files, and failures to
// answer first.
type fakeFetcher struct {
	mu    sync.Mutex
	files map[string]fakeFile
	// down answers this many more fetches of an id with a 500.
	down  map[string]int
	calls map[string]int
	// block, when set, holds every fetch until it closes or the fetch's
	// context ends; fetching is signalled once a fetch waits.
	block    chan struct{}
	fetching chan struct{}
}

type fakeFile struct {
	data []byte
	mime string
	// stated is the size the provider states (0: the data's).
	stated int64
}

func newFakeFetcher() *fakeFetcher {
	return &fakeFetcher{files: map[string]fakeFile{}, down: map[string]int{}, calls: map[string]int{}, fetching: make(chan struct{}, 16)}
}

func (f *fakeFetcher) add(id, mime string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[id] = fakeFile{data: data, mime: mime}
}

func (f *fakeFetcher) callsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func (f *fakeFetcher) FetchMedia(ctx context.Context, phoneNumberID, mediaID string, maxBytes int64) (*provider.MediaDownload, error) {
	f.mu.Lock()
	f.calls[mediaID]++
	file, ok := f.files[mediaID]
	down := f.down[mediaID] > 0
	if down {
		f.down[mediaID]--
	}
	block := f.block
	f.mu.Unlock()
	if block != nil {
		f.fetching <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch {
	case down:
		return nil, &provider.Error{Class: provider.ClassRetry, HTTPStatus: 500, Code: 1, Title: "An unknown error has occurred."}
	case !ok:
		return nil, &provider.Error{Class: provider.ClassPermanent, HTTPStatus: 400, Code: 100, Title: "Unsupported get request."}
	case file.stated > maxBytes:
		return nil, fmt.Errorf("stated %d: %w", file.stated, provider.ErrMediaTooLarge)
	}
	size := file.stated
	if size == 0 {
		size = int64(len(file.data))
	}
	sum := sha256.Sum256(file.data)
	return &provider.MediaDownload{Body: io.NopCloser(bytes.NewReader(file.data)), MIME: file.mime, Size: size, SHA256: hex.EncodeToString(sum[:])}, nil
}

// inboundMediaBody is Meta's webhook of a guest's media (or contacts)
// message; obj is the type's object.
func inboundMediaBody(pnid, from, wamid, typ string, obj any) []byte {
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550001000", "phone_number_id": pnid},
			"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Maria Lopez"}, "wa_id": strings.TrimPrefix(from, "+")}},
			"messages": []any{map[string]any{"from": strings.TrimPrefix(from, "+"), "id": wamid, "timestamp": fmt.Sprint(time.Now().Unix()),
				"type": typ, typ: obj}},
		}}},
	}}})
	return b
}

// startDownloader runs a processor with the harness's media settings and
// f as the fetcher of the hotel's first number.
func (h *mediaHarness) startDownloader(name string, f MediaFetcher, dc DownloadConfig) *Processor {
	h.t.Helper()
	fetchers := map[string]MediaFetcher{}
	if f != nil {
		fetchers["100000000000001"] = f
	}
	if dc.RetryBase == 0 {
		dc.RetryBase, dc.RetryMax = 20*time.Millisecond, 50*time.Millisecond
	}
	if dc.Poll == 0 {
		dc.Poll = 20 * time.Millisecond
	}
	p := NewProcessor(ProcessorConfig{Consumer: name, Block: 50 * time.Millisecond, Numbers: harnessNumbers,
		Media: h.srv.cfg.Media, MediaFetchers: fetchers, Downloads: dc},
		h.store, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	p.Start()
	h.t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

// guestMedia posts a guest's media message and returns the history entry
// of it once its media_status is no longer pending (or the last one seen).
func (h *mediaHarness) guestMedia(guest, wamid, typ string, obj map[string]any, wait time.Duration) map[string]any {
	h.t.Helper()
	if c := h.postWebhook(inboundMediaBody("100000000000001", guest, wamid, typ, obj), appSecret); c != 200 {
		h.t.Fatalf("webhook: %d", c)
	}
	return h.waitMedia(staffToken, guest, wamid, wait)
}

func (h *mediaHarness) waitMedia(token, guest, wamid string, wait time.Duration) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	var last map[string]any
	for time.Now().Before(deadline) {
		if m := h.historyEntry(token, guest, wamid); m != nil {
			last = m
			if m["media_status"] != mediaPending {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last == nil {
		h.t.Fatalf("message %s is not in the history", wamid)
	}
	return last
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

// notices are the tenant webhook events of the hotel's first number so
// far, of the given kinds, by message id.
func (h *mediaHarness) notices(kind string) map[string]map[string]any {
	h.t.Helper()
	shard := message.ShardFor("+15550001000", 4)
	ms, err := h.store.Client().XRange(context.Background(), h.store.Keys().Notify(shard), "-", "+").Result()
	must(h.t, err)
	out := map[string]map[string]any{}
	for _, m := range ms {
		if m.Values["k"] != kind {
			continue
		}
		var d map[string]any
		must(h.t, json.Unmarshal([]byte(m.Values["d"].(string)), &d))
		out[d["message_id"].(string)] = d
	}
	return out
}

// TestGuestMediaIsDownloadedKeptAndLinked: each media type a guest sends
// is downloaded, kept by its bytes, and linked in the history and the
// webhooks with a signed URL that serves the very bytes.
func TestGuestMediaIsDownloadedKeptAndLinked(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	f := newFakeFetcher()
	h.startDownloader("p1", f, DownloadConfig{})
	tests := []struct {
		typ, mime, filename, caption string
		data                         []byte
		wantMIME, wantName           string
	}{
		{typ: "image", mime: "image/jpeg", caption: "The stain on the carpet", data: sampleJPEG(t), wantMIME: "image/jpeg", wantName: "image.jpg"},
		{typ: "document", mime: "application/pdf", filename: "Booking RB123456.pdf", data: samplePDF(), wantMIME: "application/pdf", wantName: "Booking RB123456.pdf"},
		{typ: "audio", mime: "audio/ogg; codecs=opus", data: sampleOpus(), wantMIME: "audio/ogg", wantName: "audio.ogg"},
		{typ: "video", mime: "video/mp4", data: sampleHEVC(), wantMIME: "video/mp4", wantName: "video.mp4"},
		{typ: "sticker", mime: "image/webp", data: sampleWebP(), wantMIME: "image/webp", wantName: "sticker.webp"},
	}
	for i, tc := range tests {
		func() {
			pmid := strconv.Itoa(1003383421387000 + i)
			f.add(pmid, tc.mime, tc.data)
			obj := map[string]any{"id": pmid, "mime_type": tc.mime}
			if tc.caption != "" {
				obj["caption"] = tc.caption
			}
			if tc.filename != "" {
				obj["filename"] = tc.filename
			}
			wamid := "wamid.MEDIA" + tc.typ
			m := h.guestMedia(seedGuest, wamid, tc.typ, obj, 5*time.Second)
			sum := sha256.Sum256(tc.data)
			med, _ := m["media"].(map[string]any)
			if m["media_status"] != mediaReady || m["type"] != tc.typ || med["provider_media_id"] != pmid || med["mime_type"] != tc.wantMIME ||
				med["size"] != float64(len(tc.data)) || med["sha256"] != hex.EncodeToString(sum[:]) || !validMediaID(med["id"].(string)) {
				t.Fatalf("%s: history entry %v", tc.typ, m)
			}
			if tc.caption != "" && (med["caption"] != tc.caption || !strings.Contains(m["preview"].(string), tc.caption)) {
				t.Fatalf("%s: caption lost: %v", tc.typ, m)
			}
			if tc.filename != "" && med["filename"] != tc.filename {
				t.Fatalf("%s: file name lost: %v", tc.typ, m)
			}
			code, hdr, body := h.get(m["media_url"].(string))
			if code != 200 || !bytes.Equal(body, tc.data) || !strings.HasPrefix(hdr.Get("Content-Type"), tc.wantMIME) ||
				!strings.Contains(hdr.Get("Content-Disposition"), tc.wantName) {
				t.Fatalf("%s: media_url: %d %v, %d bytes", tc.typ, code, hdr, len(body))
			}
			exp, err := time.Parse(time.RFC3339, m["media_url_expires_at"].(string))
			if err != nil || exp.Sub(h.clock.Now()) > historyURLTTL || exp.Sub(h.clock.Now()) < historyURLTTL-time.Minute {
				t.Fatalf("%s: history url expires at %v", tc.typ, m["media_url_expires_at"])
			}

			// The webhooks: inbound_message at once, pending; media_received
			// when ready, with a URL of its own that works.
			in := h.notices(message.EventInboundMessage)[wamid]
			if in == nil || in["media_status"] != mediaPending || in["media_url"] != nil || in["media"].(map[string]any)["id"] != med["id"] {
				t.Fatalf("%s: inbound_message %v", tc.typ, in)
			}
			got := h.notices(message.EventMediaReceived)[wamid]
			if got == nil || got["media_status"] != mediaReady || got["message_type"] != tc.typ || got["media"].(map[string]any)["id"] != med["id"] {
				t.Fatalf("%s: media_received %v", tc.typ, got)
			}
			if code, _, body := h.get(got["media_url"].(string)); code != 200 || !bytes.Equal(body, tc.data) {
				t.Fatalf("%s: webhook media_url: %d", tc.typ, code)
			}
		}()
	}
}

// TestGuestMediaThatCannotBeHadFails: each way a download cannot succeed
// ends failed with its reason, in the history and in media_received, and
// no URL is made.
func TestGuestMediaThatCannotBeHadFails(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	f := newFakeFetcher()
	f.add("2001", "image/jpeg", sampleJPEG(t))
	f.files["2001"] = fakeFile{data: sampleJPEG(t), mime: "image/jpeg", stated: testLimits.Image + 1}
	f.add("2002", "image/jpeg", append(sampleJPEG(t), make([]byte, testLimits.Image)...))
	f.add("2003", "image/jpeg", samplePDF())
	f.add("2005", "application/x-msdownload", sampleEXE())
	f.add("2006", "image/jpeg", sampleJPEG(t))
	f.down["2006"] = 1 << 20
	h.startDownloader("p1", f, DownloadConfig{MaxAttempts: 3})
	tests := []struct {
		name, typ, pmid, code string
	}{
		{"over the limit the provider states", "image", "2001", failTooLarge},
		{"over the limit by its bytes", "image", "2002", failTooLarge},
		{"a PDF sent as an image", "image", "2003", failMismatch},
		{"media the provider does not know", "image", "2004", failNotFound},
		{"a program as a document", "document", "2005", failUnsupported},
		{"a provider down for every try", "image", "2006", failDownload},
	}
	for i, tc := range tests {
		func() {
			wamid := "wamid.FAIL" + strconv.Itoa(i)
			m := h.guestMedia(seedGuest, wamid, tc.typ, map[string]any{"id": tc.pmid, "mime_type": "image/jpeg"}, 5*time.Second)
			if m["media_status"] != mediaFailed || m["media_failure_code"] != tc.code || m["media_failure_reason"] == "" || m["media_url"] != nil {
				t.Fatalf("%s: history entry %v", tc.name, m)
			}
			got := h.notices(message.EventMediaReceived)[wamid]
			if got == nil || got["media_status"] != mediaFailed || got["media_failure_code"] != tc.code || got["media_url"] != nil {
				t.Fatalf("%s: media_received %v", tc.name, got)
			}
			// No bytes are served for it, even with a valid signature, and
			// it cannot be sent on.
			id := m["media"].(map[string]any)["id"].(string)
			if code, _, _ := h.get(h.srv.media.url(id, h.clock.Now().Add(time.Hour).Unix())); code != 404 {
				t.Fatalf("%s: failed media served: %d", tc.name, code)
			}
			send := `{"guest_phone":"` + seedGuest + `","media_id":"` + id + `","media_type":"` + tc.typ + `"}`
			if code, v, _ := h.do("POST", sendMediaPath, staffToken, send); code != 404 || errCode(t, v) != string(message.CodeMediaNotFound) {
				t.Fatalf("%s: failed media sent on: %d %v", tc.name, code, v)
			}
		}()
	}
	if n := f.callsOf("2006"); n != 3 {
		t.Fatalf("a failing download was tried %d times, want 3", n)
	}
	if n, _ := h.files.Count(); n != 0 {
		t.Fatalf("%d refused files kept", n)
	}
}

// TestGuestMediaDownloadIsRetriedUntilItWorks: the provider down for a
// while costs the download time, not the file.
func TestGuestMediaDownloadIsRetriedUntilItWorks(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	f := newFakeFetcher()
	jpg := sampleJPEG(t)
	f.add("3001", "image/jpeg", jpg)
	f.down["3001"] = 3
	p := h.startDownloader("p1", f, DownloadConfig{MaxAttempts: 5})
	m := h.guestMedia(seedGuest, "wamid.RETRY", "image", map[string]any{"id": "3001", "mime_type": "image/jpeg"}, 5*time.Second)
	if m["media_status"] != mediaReady {
		t.Fatalf("history entry %v", m)
	}
	if n := f.callsOf("3001"); n != 4 {
		t.Fatalf("%d tries, want 4", n)
	}
	if n := testutil.ToFloat64(p.m.downloads.WithLabelValues("retry")); n != 3 {
		t.Fatalf("%v retries counted", n)
	}
	if code, _, body := h.get(m["media_url"].(string)); code != 200 || !bytes.Equal(body, jpg) {
		t.Fatalf("media_url: %d", code)
	}
}

// TestGuestMediaDownloadSurvivesItsDownloader: a downloader killed while
// it holds a download gives it up when its lease passes; one stopped
// gives it back at once, its try not counted.
func TestGuestMediaDownloadSurvivesItsDownloader(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	jpg := sampleJPEG(t)
	ctx := context.Background()

	// Killed: the message is recorded with its job (as the processor
	// records it), and the job claimed by a process that then dies.
	now := time.Now().UnixMilli()
	job := mediaJob{MediaID: newMediaID(), ProviderMediaID: "4001", PhoneNumberID: "100000000000001", Tenant: "grand-plaza",
		Sender: "+15550001000", Guest: seedGuest, MessageID: "wamid.KILLED", Type: "image", AtMS: now}
	jb, _ := json.Marshal(&job)
	_, err := h.store.RecordInbound(ctx, &redis.InboundArgs{TenantID: job.Tenant, Sender: job.Sender, Guest: job.Guest,
		ProviderMessageID: job.MessageID, AtMS: now, NotifyKind: message.EventInboundMessage, MediaJob: jb,
		Entry: redis.HistoryEntry{ID: job.MessageID, AtMS: now, Type: "image", Preview: "[image]", MediaID: job.MediaID}})
	must(t, err)
	claimed, err := h.store.ClaimMediaJobs(ctx, 10, 500*time.Millisecond)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %v %v", claimed, err)
	}
	f := newFakeFetcher()
	f.add("4001", "image/jpeg", jpg)
	p2 := h.startDownloader("p2", f, DownloadConfig{Lease: 500 * time.Millisecond})
	if m := h.waitMedia(staffToken, seedGuest, "wamid.KILLED", 5*time.Second); m["media_status"] != mediaReady {
		t.Fatalf("after the lease: %v", m)
	}
	must(t, p2.Shutdown(ctx))

	// Stopped mid-download: given back, and done by the next at once
	// (well within its lease of a minute).
	slow := newFakeFetcher()
	slow.add("4002", "image/jpeg", jpg)
	slow.block = make(chan struct{})
	guest := "+14155550177"
	p3 := h.startDownloader("p3", slow, DownloadConfig{Lease: time.Minute})
	if c := h.postWebhook(inboundMediaBody("100000000000001", guest, "wamid.STOPPED", "image", map[string]any{"id": "4002"}), appSecret); c != 200 {
		t.Fatalf("webhook: %d", c)
	}
	select {
	case <-slow.fetching:
	case <-time.After(5 * time.Second):
		t.Fatal("the download never began")
	}
	must(t, p3.Shutdown(ctx))
	f.add("4002", "image/jpeg", jpg)
	start := time.Now()
	h.startDownloader("p4", f, DownloadConfig{Lease: time.Minute})
	if m := h.waitMedia(staffToken, guest, "wamid.STOPPED", 5*time.Second); m["media_status"] != mediaReady {
		t.Fatalf("after a stop: %v", m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("taken over after %v", d)
	}
}

// TestGuestMediaIsTheTenantsOwn: another tenant cannot send it, see it,
// or turn its URL into another media's.
func TestGuestMediaIsTheTenantsOwn(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	f := newFakeFetcher()
	f.add("5001", "image/jpeg", sampleJPEG(t))
	h.startDownloader("p1", f, DownloadConfig{})
	m := h.guestMedia(seedGuest, "wamid.OWN", "image", map[string]any{"id": "5001"}, 5*time.Second)
	id := m["media"].(map[string]any)["id"].(string)
	if m["media_status"] != mediaReady {
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
	upload := h.mustUpload("other.jpg", sampleJPEG(t), "image")["media_id"].(string)
	if code, _, _ := h.get(strings.Replace(u, id, upload, 1)); code != 403 {
		t.Fatalf("signature reused for another id: %d", code)
	}
}

// TestGuestContactsAndFileNamesAreKept: a shared contact card and a
// document's name reach the history and the webhook.
func TestGuestContactsAndFileNamesAreKept(t *testing.T) {
	h := newMediaHarness(t, withAppSecret)
	f := newFakeFetcher()
	f.add("6001", "application/pdf", samplePDF())
	h.startDownloader("p1", f, DownloadConfig{})
	card := []any{map[string]any{"name": map[string]any{"formatted_name": "Kerry Fitzgerald", "first_name": "Kerry"},
		"phones": []any{map[string]any{"phone": "+1 (650) 555-1234", "type": "CELL", "wa_id": "16505551234"}},
		"org":    map[string]any{"company": "Example Taxi"}}}
	if c := h.postWebhook(inboundMediaBody("100000000000001", seedGuest, "wamid.CARD", "contacts", card), appSecret); c != 200 {
		t.Fatalf("webhook: %d", c)
	}
	var m map[string]any
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		m = h.historyEntry(staffToken, seedGuest, "wamid.CARD")
	}
	want := `[{"name":{"formatted_name":"Kerry Fitzgerald","first_name":"Kerry"},"phones":[{"phone":"+1 (650) 555-1234","type":"CELL","wa_id":"16505551234"}],"org":{"company":"Example Taxi"}}]`
	if got, _ := json.Marshal(m["contacts"]); m == nil || string(got) != mustCanon(t, want) || m["preview"] != "[contacts] Kerry Fitzgerald" {
		t.Fatalf("history entry %v", m)
	}
	in := h.notices(message.EventInboundMessage)["wamid.CARD"]
	if got, _ := json.Marshal(in["contacts"]); string(got) != mustCanon(t, want) || in["message_content"] != "Kerry Fitzgerald" {
		t.Fatalf("inbound_message %v", in)
	}

	d := h.guestMedia(seedGuest, "wamid.DOC", "document", map[string]any{"id": "6001", "filename": "../../etc/Invoice\x00 12.pdf", "caption": "for the company"}, 5*time.Second)
	if med := d["media"].(map[string]any); med["filename"] != "Invoice 12.pdf" || med["caption"] != "for the company" {
		t.Fatalf("document %v", d)
	}
	if got := h.notices(message.EventMediaReceived)["wamid.DOC"]; got["media"].(map[string]any)["filename"] != "Invoice 12.pdf" {
		t.Fatalf("media_received %v", got)
	}
}

// withAppSecret lets the harness take Meta's signed webhooks.
func withAppSecret(c *Config) { c.MetaAppSecret = appSecret }

// mustCanon re-encodes JSON as encoding/json writes a decoded value.
func mustCanon(t *testing.T, s string) string {
	t.Helper()
	var v any
	must(t, json.Unmarshal([]byte(s), &v))
	b, _ := json.Marshal(v)
	return string(b)
}
