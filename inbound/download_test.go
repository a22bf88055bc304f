package inbound

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/mediatest"
	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/store/media"
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

// testLimits are small enough for tests to pass and well above the
// sample files.
var testLimits = mediakit.Limits{Image: 4 << 10, Document: 8 << 10, Audio: 4 << 10, Video: 4 << 10, Sticker: 300, AnimatedSticker: 600}

// mediaHarness is a harness with a media folder and the API's media
// settings (the same folder and signing key).
type mediaHarness struct {
	*harness
	files *media.Store
	cfg   mediakit.Config
	// signer makes and checks URLs as the API does.
	signer mediakit.Media
}

func newMediaHarness(t *testing.T) *mediaHarness {
	t.Helper()
	files, err := media.New(t.TempDir())
	must(t, err)
	cfg := mediakit.Config{Files: files, SigningKey: []byte("test-media-signing-key-of-32-bytes!"), PublicBaseURL: "https://wa.grandplaza.example/",
		URLTTL: time.Hour, Limits: testLimits}
	signer, err := mediakit.New(cfg)
	must(t, err)
	return &mediaHarness{harness: newHarness(t), files: files, cfg: cfg, signer: signer}
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
	return h.start(Config{Consumer: name, Media: h.cfg, MediaFetchers: fetchers, Downloads: dc})
}

// guestMedia posts a guest's media message and returns its media_received
// event once the download ended.
func (h *mediaHarness) guestMedia(guest, wamid, typ string, obj map[string]any, wait time.Duration) map[string]any {
	h.t.Helper()
	h.post("meta", webhooktest.InboundMedia("100000000000001", guest, wamid, typ, obj))
	return h.waitMedia(wamid, wait)
}

// waitMedia waits for the media_received event of message wamid.
func (h *mediaHarness) waitMedia(wamid string, wait time.Duration) map[string]any {
	h.t.Helper()
	var got map[string]any
	testwait.For(h.t, wait, "media_received of "+wamid, func() bool {
		got = h.notices(message.EventMediaReceived)[wamid]
		return got != nil
	})
	return got
}

// historyEntry is message wamid of guest's conversation with the hotel's
// first number, as stored.
func (h *mediaHarness) historyEntry(guest, wamid string) *redis.HistoryEntry {
	h.t.Helper()
	_, hist := h.conversation("grand-plaza", "+15550001000", guest)
	for i := range hist {
		if hist[i].ID == wamid {
			return &hist[i]
		}
	}
	return nil
}

// kept returns the bytes a ready media's record names in the media
// folder, and the record.
func (h *mediaHarness) kept(id string) ([]byte, *redis.MediaRecord) {
	h.t.Helper()
	rec, err := h.store.Media(context.Background(), id)
	must(h.t, err)
	f, err := h.files.Open(rec.SHA256)
	must(h.t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	must(h.t, err)
	return b, rec
}

// checkURL checks that u is the API's signed URL of media id, and that it
// expires within ttl (less a minute) of now.
func (h *mediaHarness) checkURL(u, expiresAt, id string, ttl time.Duration) {
	h.t.Helper()
	p, err := url.Parse(u)
	must(h.t, err)
	exp, err := strconv.ParseInt(p.Query().Get("expires"), 10, 64)
	must(h.t, err)
	if u != h.signer.URL(id, exp) {
		h.t.Fatalf("url %s is not the signed url of %s", u, id)
	}
	at, err := time.Parse(time.RFC3339, expiresAt)
	if err != nil || at.Unix() != exp || time.Until(at) > ttl || time.Until(at) < ttl-time.Minute {
		h.t.Fatalf("url expires at %v (%d)", expiresAt, exp)
	}
}

// TestGuestMediaIsDownloadedKeptAndLinked: each media type a guest sends
// is downloaded, kept by its bytes, and linked in the webhooks with a
// signed URL of its copy (the API serves it: ingest's
// TestGuestMediaIsLinkedInTheHistory).
func TestGuestMediaIsDownloadedKeptAndLinked(t *testing.T) {
	h := newMediaHarness(t)
	f := newFakeFetcher()
	h.startDownloader("p1", f, DownloadConfig{})
	tests := []struct {
		typ, mime, filename, caption string
		data                         []byte
		wantMIME, wantName           string
	}{
		{typ: "image", mime: "image/jpeg", caption: "The stain on the carpet", data: mediatest.JPEG(t), wantMIME: "image/jpeg", wantName: "image.jpg"},
		{typ: "document", mime: "application/pdf", filename: "Booking RB123456.pdf", data: mediatest.PDF(), wantMIME: "application/pdf", wantName: "Booking RB123456.pdf"},
		{typ: "audio", mime: "audio/ogg; codecs=opus", data: mediatest.Opus(), wantMIME: "audio/ogg", wantName: "audio.ogg"},
		{typ: "video", mime: "video/mp4", data: mediatest.HEVC(), wantMIME: "video/mp4", wantName: "video.mp4"},
		{typ: "sticker", mime: "image/webp", data: mediatest.WebP(), wantMIME: "image/webp", wantName: "sticker.webp"},
	}
	for i, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
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
			got := h.guestMedia(seedGuest, wamid, tc.typ, obj, 5*time.Second)
			sum := sha256.Sum256(tc.data)
			med, _ := got["media"].(map[string]any)
			if got["media_status"] != mediakit.StatusReady || got["message_type"] != tc.typ || med["provider_media_id"] != pmid || med["mime_type"] != tc.wantMIME ||
				med["size"] != float64(len(tc.data)) || med["sha256"] != hex.EncodeToString(sum[:]) || !mediakit.ValidID(med["id"].(string)) {
				t.Fatalf("media_received %v", got)
			}
			id := med["id"].(string)
			e := h.historyEntry(seedGuest, wamid)
			if e == nil || e.Type != tc.typ || e.MediaID != id || e.ProviderMediaID != pmid {
				t.Fatalf("history entry %+v", e)
			}
			if tc.caption != "" && (med["caption"] != tc.caption || e.Caption != tc.caption || !strings.Contains(e.Preview, tc.caption)) {
				t.Fatalf("caption lost: %v %+v", got, e)
			}
			if tc.filename != "" && (med["filename"] != tc.filename || e.Filename != tc.filename) {
				t.Fatalf("file name lost: %v %+v", got, e)
			}
			// Kept by its bytes, under the name and type they say.
			b, rec := h.kept(id)
			if !bytes.Equal(b, tc.data) || rec.MIME != tc.wantMIME || rec.Filename != tc.wantName || rec.TenantID != "grand-plaza" {
				t.Fatalf("kept %d bytes, record %+v", len(b), rec)
			}
			h.checkURL(got["media_url"].(string), got["media_url_expires_at"].(string), id, h.cfg.URLTTL)

			// inbound_message came at once, pending, without a URL.
			in := h.notices(message.EventInboundMessage)[wamid]
			if in == nil || in["media_status"] != mediakit.StatusPending || in["media_url"] != nil || in["media"].(map[string]any)["id"] != id {
				t.Fatalf("inbound_message %v", in)
			}
		})
	}
}

// TestGuestMediaThatCannotBeHadFails: each way a download cannot succeed
// ends failed with its reason, in its record and in media_received, and
// no URL is made nor file kept.
func TestGuestMediaThatCannotBeHadFails(t *testing.T) {
	h := newMediaHarness(t)
	f := newFakeFetcher()
	f.add("2001", "image/jpeg", mediatest.JPEG(t))
	f.files["2001"] = fakeFile{data: mediatest.JPEG(t), mime: "image/jpeg", stated: testLimits.Image + 1}
	f.add("2002", "image/jpeg", append(mediatest.JPEG(t), make([]byte, testLimits.Image)...))
	f.add("2003", "image/jpeg", mediatest.PDF())
	f.add("2005", "application/x-msdownload", mediatest.EXE())
	f.add("2006", "image/jpeg", mediatest.JPEG(t))
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
		t.Run(tc.name, func(t *testing.T) {
			wamid := "wamid.FAIL" + strconv.Itoa(i)
			got := h.guestMedia(seedGuest, wamid, tc.typ, map[string]any{"id": tc.pmid, "mime_type": "image/jpeg"}, 5*time.Second)
			if got["media_status"] != mediakit.StatusFailed || got["media_failure_code"] != tc.code || got["media_failure_reason"] == "" || got["media_url"] != nil {
				t.Fatalf("media_received %v", got)
			}
			// Its record says failed: the API serves no bytes for it and
			// does not send it on.
			rec, err := h.store.Media(context.Background(), got["media"].(map[string]any)["id"].(string))
			must(t, err)
			if rec.Status != redis.MediaFailed || rec.Reason != tc.code || rec.Detail == "" || rec.SHA256 != "" {
				t.Fatalf("record %+v", rec)
			}
		})
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
	h := newMediaHarness(t)
	f := newFakeFetcher()
	jpg := mediatest.JPEG(t)
	f.add("3001", "image/jpeg", jpg)
	f.down["3001"] = 3
	p := h.startDownloader("p1", f, DownloadConfig{MaxAttempts: 5})
	got := h.guestMedia(seedGuest, "wamid.RETRY", "image", map[string]any{"id": "3001", "mime_type": "image/jpeg"}, 5*time.Second)
	if got["media_status"] != mediakit.StatusReady {
		t.Fatalf("media_received %v", got)
	}
	if n := f.callsOf("3001"); n != 4 {
		t.Fatalf("%d tries, want 4", n)
	}
	if n := testutil.ToFloat64(p.m.downloads.WithLabelValues("retry")); n != 3 {
		t.Fatalf("%v retries counted", n)
	}
	if b, _ := h.kept(got["media"].(map[string]any)["id"].(string)); !bytes.Equal(b, jpg) {
		t.Fatalf("kept %d bytes", len(b))
	}
}

// TestGuestMediaDownloadSurvivesItsDownloader: a downloader killed while
// it holds a download gives it up when its lease passes; one stopped
// gives it back at once, its try not counted.
func TestGuestMediaDownloadSurvivesItsDownloader(t *testing.T) {
	h := newMediaHarness(t)
	jpg := mediatest.JPEG(t)
	ctx := context.Background()

	// Killed: the message is recorded with its job (as the processor
	// records it), and the job claimed by a process that then dies.
	now := time.Now().UnixMilli()
	job := mediaJob{MediaID: mediakit.NewID(), ProviderMediaID: "4001", PhoneNumberID: "100000000000001", Tenant: "grand-plaza",
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
	if got := h.waitMedia("wamid.KILLED", 5*time.Second); got["media_status"] != mediakit.StatusReady {
		t.Fatalf("after the lease: %v", got)
	}
	must(t, p2.Shutdown(ctx))

	// Stopped mid-download: given back, and done by the next at once
	// (well within its lease of a minute).
	slow := newFakeFetcher()
	slow.add("4002", "image/jpeg", jpg)
	slow.block = make(chan struct{})
	guest := "+14155550177"
	p3 := h.startDownloader("p3", slow, DownloadConfig{Lease: time.Minute})
	h.post("meta", webhooktest.InboundMedia("100000000000001", guest, "wamid.STOPPED", "image", map[string]any{"id": "4002"}))
	select {
	case <-slow.fetching:
	case <-time.After(5 * time.Second):
		t.Fatal("the download never began")
	}
	must(t, p3.Shutdown(ctx))
	f.add("4002", "image/jpeg", jpg)
	start := time.Now()
	h.startDownloader("p4", f, DownloadConfig{Lease: time.Minute})
	if got := h.waitMedia("wamid.STOPPED", 5*time.Second); got["media_status"] != mediakit.StatusReady {
		t.Fatalf("after a stop: %v", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("taken over after %v", d)
	}
}

// TestGuestMediaIsTheTenantsOwn: a guest's media is kept under the
// tenant of the number it was sent to (the API shows and sends it to
// that tenant only: ingest's TestGuestMediaIsLinkedInTheHistory).
func TestGuestMediaIsTheTenantsOwn(t *testing.T) {
	h := newMediaHarness(t)
	f := newFakeFetcher()
	f.add("5001", "image/jpeg", mediatest.JPEG(t))
	h.startDownloader("p1", f, DownloadConfig{})
	got := h.guestMedia(seedGuest, "wamid.OWN", "image", map[string]any{"id": "5001"}, 5*time.Second)
	if got["media_status"] != mediakit.StatusReady {
		t.Fatalf("media_received %v", got)
	}
	if _, rec := h.kept(got["media"].(map[string]any)["id"].(string)); rec.TenantID != "grand-plaza" || rec.Source != "in" {
		t.Fatalf("record %+v", rec)
	}
	if _, hist := h.conversation("seaside", "+15550002000", seedGuest); len(hist) != 0 {
		t.Fatalf("another tenant has %+v", hist)
	}
}

// TestGuestContactsAndFileNamesAreKept: a shared contact card and a
// document's name reach the history and the webhook.
func TestGuestContactsAndFileNamesAreKept(t *testing.T) {
	h := newMediaHarness(t)
	f := newFakeFetcher()
	f.add("6001", "application/pdf", mediatest.PDF())
	h.startDownloader("p1", f, DownloadConfig{})
	card := []any{map[string]any{"name": map[string]any{"formatted_name": "Kerry Fitzgerald", "first_name": "Kerry"},
		"phones": []any{map[string]any{"phone": "+1 (650) 555-1234", "type": "CELL", "wa_id": "16505551234"}},
		"org":    map[string]any{"company": "Example Taxi"}}}
	h.post("meta", webhooktest.InboundMedia("100000000000001", seedGuest, "wamid.CARD", "contacts", card))
	var e *redis.HistoryEntry
	testwait.For(t, 5*time.Second, "the card in the history", func() bool { e = h.historyEntry(seedGuest, "wamid.CARD"); return e != nil })
	want := webhooktest.Canon(t, `[{"name":{"formatted_name":"Kerry Fitzgerald","first_name":"Kerry"},"phones":[{"phone":"+1 (650) 555-1234","type":"CELL","wa_id":"16505551234"}],"org":{"company":"Example Taxi"}}]`)
	if got := webhooktest.Canon(t, string(e.Contacts)); got != want || e.Preview != "[contacts] Kerry Fitzgerald" {
		t.Fatalf("history entry %+v", e)
	}
	in := h.notices(message.EventInboundMessage)["wamid.CARD"]
	if got, _ := json.Marshal(in["contacts"]); string(got) != want || in["message_content"] != "Kerry Fitzgerald" {
		t.Fatalf("inbound_message %v", in)
	}

	d := h.guestMedia(seedGuest, "wamid.DOC", "document", map[string]any{"id": "6001", "filename": "../../etc/Invoice\x00 12.pdf", "caption": "for the company"}, 5*time.Second)
	if med := d["media"].(map[string]any); med["filename"] != "Invoice 12.pdf" || med["caption"] != "for the company" {
		t.Fatalf("media_received %v", d)
	}
	if e := h.historyEntry(seedGuest, "wamid.DOC"); e == nil || e.Filename != "Invoice 12.pdf" || e.Caption != "for the company" {
		t.Fatalf("history entry %+v", e)
	}
}
