package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/mediatest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/media"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

const (
	uploadPath    = "/api/v1/whatsapp/media/upload"
	sendMediaPath = "/api/v1/whatsapp/messages/send-media"
	publicBase    = "https://wa.grandplaza.example"
)

// testClock is a clock tests move by hand.
type mediaClock struct{ ns atomic.Int64 }

func (c *mediaClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *mediaClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// mediaHarness is a harness whose server keeps media in a temporary
// folder, with small limits so that tests can pass them.
type mediaHarness struct {
	*harness
	files *media.Store
	clock *mediaClock
}

// testLimits are small enough for tests to pass and well above the
// sample files.
var testLimits = mediakit.Limits{Image: 4 << 10, Document: 8 << 10, Audio: 4 << 10, Video: 4 << 10, Sticker: 300, AnimatedSticker: 600}

func newMediaHarness(t *testing.T, opts ...func(*Config)) *mediaHarness {
	t.Helper()
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 4, InboundParts: 2})
	must(t, err)
	t.Cleanup(store.Close)
	files, err := media.New(t.TempDir())
	must(t, err)
	ts := NewTokens()
	hotel := &Tenant{ID: "grand-plaza", Senders: []string{"+15550001000", "+15550001001"}}
	other := &Tenant{ID: "seaside", Senders: []string{"+15550002000"}}
	must(t, ts.Add(staffToken, Principal{Tenant: hotel, Role: RoleStaff}))
	must(t, ts.Add(adminToken, Principal{Tenant: hotel, Role: RoleAdmin}))
	must(t, ts.Add(otherToken, Principal{Tenant: other, Role: RoleStaff}))
	clock := &mediaClock{}
	clock.ns.Store(time.Now().UnixNano())
	reg := prometheus.NewRegistry()
	cfg := Config{Addr: "127.0.0.1:0", MaxBodyBytes: 64 << 10, MaxUploadBytes: 64 << 10,
		Media: mediakit.Config{Files: files, SigningKey: []byte("test-media-signing-key-of-32-bytes!"), PublicBaseURL: publicBase + "/",
			URLTTL: time.Hour, Limits: testLimits, Now: clock.Now}}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg, store, ts, reg, reg, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, srv.Start())
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return &mediaHarness{harness: &harness{t: t, store: store, srv: srv, base: "http://" + srv.Addr(), reg: reg}, files: files, clock: clock}
}

// part is one field of a multipart body: a file when filename is set.
type formPart struct{ field, filename, value string }

// multipartBody writes the parts and returns the body and its Content-Type.
func multipartBody(t testing.TB, parts ...formPart) ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		if p.filename == "" {
			must(t, w.WriteField(p.field, p.value))
			continue
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+p.field+`"; filename="`+p.filename+`"`)
		h.Set("Content-Type", "application/octet-stream") // what a browser says of an unknown file
		fw, err := w.CreatePart(h)
		must(t, err)
		fw.Write([]byte(p.value))
	}
	must(t, w.Close())
	return b.Bytes(), w.FormDataContentType()
}

// post sends body with contentType and returns the status and JSON answer.
func (h *mediaHarness) post(path, token, contentType string, body []byte) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+path, bytes.NewReader(body))
	must(h.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	must(h.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		v = map[string]any{"_raw": string(raw)}
	}
	return resp.StatusCode, v
}

// upload posts a file as the field media, with media_type unless "".
func (h *mediaHarness) upload(token, filename string, data []byte, mediaType string) (int, map[string]any) {
	h.t.Helper()
	parts := []formPart{{field: "media", filename: filename, value: string(data)}}
	if mediaType != "" {
		parts = append(parts, formPart{field: "media_type", value: mediaType})
	}
	body, ct := multipartBody(h.t, parts...)
	return h.post(uploadPath, token, ct, body)
}

// mustUpload uploads and returns the 201 answer.
func (h *mediaHarness) mustUpload(filename string, data []byte, mediaType string) map[string]any {
	h.t.Helper()
	code, v := h.upload(staffToken, filename, data, mediaType)
	if code != 201 {
		h.t.Fatalf("upload %s: %d %v", filename, code, v)
	}
	return v
}

// get fetches a media URL from the test server (its path and query only:
// the public base is not this listener) and returns status, headers, body.
func (h *mediaHarness) get(mediaURL string) (int, http.Header, []byte) {
	h.t.Helper()
	u, err := url.Parse(mediaURL)
	must(h.t, err)
	resp, err := http.Get(h.base + u.RequestURI())
	must(h.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func mediaErrDetails(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	errCode(t, v)
	return v["error"].(map[string]any)["details"].(map[string]any)
}

func mediaErrMessage(v map[string]any) string { return v["error"].(map[string]any)["message"].(string) }

func TestUploadAnswersTheSeedsFields(t *testing.T) {
	h := newMediaHarness(t)
	jpg := mediatest.JPEG(t)
	v := h.mustUpload("room_key_info.jpg", jpg, "image")
	sum := sha256.Sum256(jpg)
	id, _ := v["media_id"].(string)
	if !mediakit.ValidID(id) || v["media_type"] != "image" || v["mime_type"] != "image/jpeg" || v["size"] != float64(len(jpg)) ||
		v["sha256"] != hex.EncodeToString(sum[:]) || v["filename"] != "room_key_info.jpg" {
		t.Fatalf("answer %v", v)
	}
	mediaURL, _ := v["media_url"].(string)
	if !strings.HasPrefix(mediaURL, publicBase+"/api/v1/whatsapp/media/"+id+"?expires=") || !strings.Contains(mediaURL, "&signature=") {
		t.Fatalf("media_url %q", mediaURL)
	}
	exp, err := time.Parse(time.RFC3339, v["expires_at"].(string))
	if err != nil || exp.Sub(h.clock.Now()) > time.Hour || exp.Sub(h.clock.Now()) < 59*time.Minute {
		t.Fatalf("expires_at %v (%v)", v["expires_at"], err)
	}
	rec, err := h.store.Media(context.Background(), id)
	if err != nil || rec.TenantID != "grand-plaza" || rec.Type != "image" || rec.MIME != "image/jpeg" {
		t.Fatalf("record %+v %v", rec, err)
	}
	// The signed URL serves the bytes with the detected type.
	code, hdr, body := h.get(mediaURL)
	if code != 200 || !bytes.Equal(body, jpg) || hdr.Get("Content-Type") != "image/jpeg" || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d %v %d bytes", code, hdr, len(body))
	}
}

func TestUploadJudgesFilesByTheirBytes(t *testing.T) {
	h := newMediaHarness(t)
	ok := func(name, filename string, data []byte, declared, mime, kind string) {
		t.Run(name, func(t *testing.T) {
			code, v := h.upload(staffToken, filename, data, declared)
			if code != 201 || v["mime_type"] != mime || v["media_type"] != kind {
				t.Fatalf("%d %v, want %s as %s", code, v, mime, kind)
			}
		})
	}
	refused := func(name, filename string, data []byte, declared, reason, inMessage string) {
		t.Run(name, func(t *testing.T) {
			code, v := h.upload(staffToken, filename, data, declared)
			if code != 422 || errCode(t, v) != "MEDIA_UPLOAD_FAILED" {
				t.Fatalf("%d %v", code, v)
			}
			if d := mediaErrDetails(t, v); d["reason"] != reason {
				t.Fatalf("reason %v, want %s (%v)", d["reason"], reason, v)
			}
			if !strings.Contains(mediaErrMessage(v), inMessage) {
				t.Fatalf("message %q does not say %q", mediaErrMessage(v), inMessage)
			}
		})
	}
	ok("png", "map.png", mediatest.PNG(t), "image", "image/png", "image")
	ok("jpeg", "room.jpg", mediatest.JPEG(t), "image", "image/jpeg", "image")
	ok("pdf", "hotel_amenities_guide.pdf", mediatest.PDF(), "document", "application/pdf", "document")
	ok("docx", "menu.docx", mediatest.DOCX(t), "document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document")
	ok("doc", "minutes.doc", mediatest.OLE("WordDocument"), "document", "application/msword", "document")
	ok("txt", "wifi.txt", mediatest.Text(), "document", "text/plain", "document")
	ok("mp3", "welcome.mp3", mediatest.MP3(), "audio", "audio/mpeg", "audio")
	ok("opus", "note.ogg", mediatest.Opus(), "audio", "audio/ogg", "audio")
	ok("mp4", "tour.mp4", mediatest.MP4(), "video", "video/mp4", "video")
	ok("3gp", "tour.3gp", mediatest.ThreeGP(), "video", "video/3gpp", "video")
	ok("webp", "wave.webp", mediatest.WebP(), "sticker", "image/webp", "sticker")
	ok("type from the bytes", "scan", mediatest.PDF(), "", "application/pdf", "document")
	ok("png called .pdf, no type given", "guide.pdf", mediatest.PNG(t), "", "image/png", "image")

	refused("png called .pdf, sent as document", "guide.pdf", mediatest.PNG(t), "document", reasonMismatch, "the file is a PNG image, which is sent as image")
	refused("wav called .mp3", "welcome.mp3", mediatest.WAV(), "audio", reasonUnsupported, "WhatsApp does not take WAV")
	refused("exe called .jpg", "room.jpg", mediatest.EXE(), "image", reasonUnsupported, "Windows program")
	refused("webp as image", "wave.webp", mediatest.WebP(), "image", reasonMismatch, "stickers")
	refused("hevc video", "tour.mp4", mediatest.HEVC(), "video", reasonUnsupported, "H.265")
	refused("unknown bytes", "data.bin", []byte{0, 1, 2, 3, 4, 5, 0xfe, 0xff}, "document", reasonUnknown, "not a format WhatsApp takes")
	refused("empty file", "empty.pdf", nil, "document", reasonEmpty, "empty")
	refused("image over its limit", "big.png", append(mediatest.PNG(t), make([]byte, 5<<10)...), "image", reasonTooLarge, "up to 4096 bytes")
	refused("still sticker over 300 bytes", "big.webp", mediatest.WebPFile(mediatest.RIFFChunk("VP8L", make([]byte, 400))), "sticker", reasonTooLarge, "up to 300 bytes")
	// An animated sticker may be larger than a still one.
	ok("animated sticker", "dance.webp", mediatest.AnimatedWebP(400), "sticker", "image/webp", "sticker")
	refused("animated sticker over 600 bytes", "dance.webp", mediatest.AnimatedWebP(700), "sticker", reasonTooLarge, "up to 600 bytes")

	// Refusals name what was found and what was asked.
	_, v := h.upload(staffToken, "guide.pdf", mediatest.PNG(t), "document")
	d := mediaErrDetails(t, v)
	if d["detected_type"] != "image/png" || d["declared_type"] != "document" || d["field"] != "media_type" || d["filename"] != "guide.pdf" {
		t.Fatalf("details %v", d)
	}
	_, v = h.upload(staffToken, "big.png", append(mediatest.PNG(t), make([]byte, 5<<10)...), "image")
	if d := mediaErrDetails(t, v); d["max_bytes"] != float64(4<<10) || d["size"].(float64) <= 4<<10 {
		t.Fatalf("details %v", d)
	}
	// Refused uploads store nothing: the 13 accepted are 12 files (the PNG
	// came twice).
	if n, _ := h.files.Count(); n != 12 {
		t.Fatalf("%d files on disk, want the 12 accepted", n)
	}
}

func TestUploadFormIsChecked(t *testing.T) {
	h := newMediaHarness(t)
	f := func(name string, parts []formPart, status int, code, reasonOrField string) {
		t.Run(name, func(t *testing.T) {
			body, ct := multipartBody(t, parts...)
			got, v := h.post(uploadPath, staffToken, ct, body)
			if got != status || errCode(t, v) != code {
				t.Fatalf("%d %v", got, v)
			}
			d := mediaErrDetails(t, v)
			if d["reason"] != reasonOrField && d["field"] != reasonOrField {
				t.Fatalf("details %v, want %s", d, reasonOrField)
			}
		})
	}
	png := string(mediatest.PNG(t))
	f("no file", []formPart{{field: "media_type", value: "image"}}, 422, "MEDIA_UPLOAD_FAILED", reasonNoFile)
	f("file in another field", []formPart{{field: "file", filename: "a.png", value: png}}, 422, "MEDIA_UPLOAD_FAILED", reasonNoFile)
	f("media as text", []formPart{{field: "media", value: "hello"}}, 422, "MEDIA_UPLOAD_FAILED", reasonNoFile)
	f("two files", []formPart{{field: "media", filename: "a.png", value: png}, {field: "media", filename: "b.png", value: png}}, 400, "INVALID_REQUEST", "media")
	f("bad media_type", []formPart{{field: "media", filename: "a.png", value: png}, {field: "media_type", value: "photo"}}, 400, "INVALID_REQUEST", "media_type")
	f("unknown field", []formPart{{field: "media", filename: "a.png", value: png}, {field: "caption", value: "x"}}, 400, "INVALID_REQUEST", "caption")

	code, v := h.post(uploadPath, staffToken, "application/json", []byte(`{"media":"x"}`))
	if code != 415 || errCode(t, v) != "UNSUPPORTED_MEDIA_TYPE" {
		t.Fatalf("JSON upload: %d %v", code, v)
	}
	code, v = h.post(uploadPath, staffToken, "multipart/form-data; boundary=XYZ", []byte("--XYZ\r\nbroken"))
	if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
		t.Fatalf("broken multipart: %d %v", code, v)
	}
	body, ct := multipartBody(t, formPart{field: "media", filename: "huge.pdf", value: string(mediatest.PDF()) + strings.Repeat(" ", 70<<10)})
	code, v = h.post(uploadPath, staffToken, ct, body)
	if code != 413 || errCode(t, v) != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("over MaxUploadBytes: %d %v", code, v)
	}
	body, ct = multipartBody(t, formPart{field: "media", filename: "a.pdf", value: string(mediatest.PDF())})
	code, v = h.post(uploadPath, "", ct, body)
	if code != 401 {
		t.Fatalf("no token: %d %v", code, v)
	}
	if n, _ := h.files.Count(); n != 0 {
		t.Fatalf("refused uploads left %d files", n)
	}
}

func TestTheSameBytesAreStoredOnce(t *testing.T) {
	h := newMediaHarness(t)
	png := mediatest.PNG(t)
	a := h.mustUpload("map.png", png, "image")
	b := h.mustUpload("map-copy.png", png, "")
	if a["media_id"] == b["media_id"] || a["sha256"] != b["sha256"] || b["filename"] != "map-copy.png" {
		t.Fatalf("first %v, second %v", a, b)
	}
	if n, err := h.files.Count(); err != nil || n != 1 {
		t.Fatalf("%d files on disk (%v), want 1", n, err)
	}
	// Each upload downloads under its own name.
	for _, v := range []map[string]any{a, b} {
		if code, _, body := h.get(v["media_url"].(string)); code != 200 || !bytes.Equal(body, png) {
			t.Fatalf("download of %v: %d", v["media_id"], code)
		}
	}
}

func TestMediaURLIsSignedAndExpires(t *testing.T) {
	h := newMediaHarness(t)
	pdf := mediatest.PDF()
	v := h.mustUpload("hotel amenities guide.pdf", pdf, "document")
	good := v["media_url"].(string)
	code, hdr, body := h.get(good)
	if code != 200 || !bytes.Equal(body, pdf) || hdr.Get("Content-Type") != "application/pdf" ||
		hdr.Get("Content-Disposition") != `attachment; filename="hotel amenities guide.pdf"; filename*=UTF-8''hotel%20amenities%20guide.pdf` {
		t.Fatalf("download %d %v", code, hdr)
	}
	u, _ := url.Parse(good)
	q := u.Query()
	forbidden := func(name, rawQuery, path string) {
		t.Helper()
		code, _, body := h.get("http://x" + path + "?" + rawQuery)
		var ans map[string]any
		json.Unmarshal(body, &ans)
		if code != 403 || errCode(t, ans) != "FORBIDDEN" {
			t.Fatalf("%s: %d %s", name, code, body)
		}
	}
	sig := q.Get("signature")
	flipped := string(sig[0]^1) + sig[1:]
	forbidden("tampered signature", "expires="+q.Get("expires")+"&signature="+flipped, u.Path)
	forbidden("later expiry", "expires=9999999999&signature="+sig, u.Path)
	forbidden("no signature", "expires="+q.Get("expires"), u.Path)
	forbidden("no expiry", "signature="+sig, u.Path)
	other := h.mustUpload("map.png", mediatest.PNG(t), "image")
	forbidden("another media's signature", u.RawQuery, "/api/v1/whatsapp/media/"+other["media_id"].(string))

	// An id the gateway signed but does not hold is 404, not 403.
	unknown := "med_" + strings.Repeat("a", 26)
	exp := h.clock.Now().Add(time.Minute).Unix()
	code, _, body = h.get(h.srv.media.URL(unknown, exp))
	var ans map[string]any
	json.Unmarshal(body, &ans)
	if code != 404 || errCode(t, ans) != "MEDIA_NOT_FOUND" {
		t.Fatalf("unknown id: %d %s", code, body)
	}

	h.clock.Advance(time.Hour + time.Second)
	forbidden("expired", u.RawQuery, u.Path)
	if _, v := h.upload(staffToken, "again.pdf", pdf, "document"); v["media_url"] == nil {
		t.Fatalf("re-upload: %v", v)
	} else if code, _, _ := h.get(v["media_url"].(string)); code != 200 {
		t.Fatalf("a fresh URL after expiry: %d", code)
	}
}

func sendMediaBody(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

func TestSendMediaQueuesMetasObject(t *testing.T) {
	h := newMediaHarness(t)
	h.openWindow("+1234567890")
	img := h.mustUpload("room_key_info.jpg", mediatest.JPEG(t), "image")["media_id"].(string)
	doc := h.mustUpload("amenities.pdf", mediatest.PDF(), "document")["media_id"].(string)
	const caption = "Here is your digital room key information. Tap your phone on the door reader to access your room."
	f := func(name, body, wantContent string, wantType message.Type) {
		t.Run(name, func(t *testing.T) {
			path := sendMediaPath
			if strings.Contains(body, `"message_type"`) {
				path = sendPath
			}
			code, v, _ := h.do("POST", path, staffToken, body)
			if code != 202 || v["status"] != "queued" {
				t.Fatalf("%d %v", code, v)
			}
			j := h.begin(v["message_id"].(string))
			if got := string(j.Msg.Content); got != wantContent || j.Msg.Type != wantType {
				t.Fatalf("queued %s %s, want %s %s", j.Msg.Type, got, wantType, wantContent)
			}
		})
	}
	f("seed image", sendMediaBody(map[string]any{"guest_phone": "+1234567890", "media_id": img, "media_type": "image",
		"caption": caption, "conversation_id": "conv_abc123"}), `{"id":"`+img+`","caption":"`+caption+`"}`, message.TypeImage)
	f("seed document", sendMediaBody(map[string]any{"guest_phone": "+1234567890", "media_id": doc, "media_type": "document",
		"filename": "hotel_amenities_guide.pdf", "caption": "Complete guide to all hotel amenities and services"}),
		`{"id":"`+doc+`","caption":"Complete guide to all hotel amenities and services","filename":"hotel_amenities_guide.pdf"}`, message.TypeDocument)
	f("document keeps its uploaded name", sendMediaBody(map[string]any{"guest_phone": "+1234567890", "media_id": doc, "media_type": "document"}),
		`{"id":"`+doc+`","filename":"amenities.pdf"}`, message.TypeDocument)
	f("by link", sendMediaBody(map[string]any{"guest_phone": "+1234567890", "media_url": "https://cdn.grandplaza.example/spa.jpg",
		"media_type": "image", "caption": "Spa menu"}), `{"link":"https://cdn.grandplaza.example/spa.jpg","caption":"Spa menu"}`, message.TypeImage)
	f("messages/send image", `{"guest_phone":"+1234567890","message_type":"image","content":{"media_id":"`+img+`","caption":"Your key"}}`,
		`{"id":"`+img+`","caption":"Your key"}`, message.TypeImage)
	f("messages/send document link", `{"guest_phone":"+1234567890","message_type":"document","content":{"link":"https://cdn.grandplaza.example/menu.pdf","filename":"menu.pdf"}}`,
		`{"link":"https://cdn.grandplaza.example/menu.pdf","filename":"menu.pdf"}`, message.TypeDocument)
}

func TestSendMediaRefusesWhatWhatsAppWouldNot(t *testing.T) {
	h := newMediaHarness(t)
	h.openWindow("+1234567890")
	img := h.mustUpload("room.jpg", mediatest.JPEG(t), "image")["media_id"].(string)
	audio := h.mustUpload("welcome.mp3", mediatest.MP3(), "audio")["media_id"].(string)
	send := func(extra map[string]any) string {
		m := map[string]any{"guest_phone": "+1234567890"}
		for k, v := range extra {
			m[k] = v
		}
		return sendMediaBody(m)
	}
	f := func(name, token, path, body string, status int, code, field string) {
		t.Run(name, func(t *testing.T) {
			got, v, _ := h.do("POST", path, token, body)
			if got != status || errCode(t, v) != code {
				t.Fatalf("%d %v, want %d %s", got, v, status, code)
			}
			if field != "" && mediaErrDetails(t, v)["field"] != field {
				t.Fatalf("error names %v, want %s", mediaErrDetails(t, v)["field"], field)
			}
		})
	}
	f("another tenant's media", otherToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "image"}), 404, "MEDIA_NOT_FOUND", "media_id")
	f("seed's made-up id", staffToken, sendMediaPath, send(map[string]any{"media_id": "doc_media_789", "media_type": "document"}), 404, "MEDIA_NOT_FOUND", "media_id")
	f("unknown id of the right shape", staffToken, sendMediaPath, send(map[string]any{"media_id": "med_" + strings.Repeat("z", 26), "media_type": "image"}), 404, "MEDIA_NOT_FOUND", "media_id")
	f("type is not the upload's", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "document"}), 400, "INVALID_REQUEST", "media_type")
	f("no media_type", staffToken, sendMediaPath, send(map[string]any{"media_id": img}), 400, "INVALID_REQUEST", "media_type")
	f("media_type text", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "text"}), 400, "INVALID_REQUEST", "media_type")
	f("no media", staffToken, sendMediaPath, send(map[string]any{"media_type": "image"}), 400, "INVALID_REQUEST", "media_id")
	f("id and url", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_url": "https://x.example/a.jpg", "media_type": "image"}), 400, "INVALID_REQUEST", "media_url")
	f("http link", staffToken, sendMediaPath, send(map[string]any{"media_url": "http://x.example/a.jpg", "media_type": "image"}), 400, "INVALID_REQUEST", "media_url")
	f("link with credentials", staffToken, sendMediaPath, send(map[string]any{"media_url": "https://u:p@x.example/a.jpg", "media_type": "image"}), 400, "INVALID_REQUEST", "media_url")
	f("caption too long", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "image", "caption": strings.Repeat("é", 1025)}), 400, "INVALID_REQUEST", "caption")
	f("caption on audio", staffToken, sendMediaPath, send(map[string]any{"media_id": audio, "media_type": "audio", "caption": "hi"}), 400, "INVALID_REQUEST", "caption")
	f("filename on an image", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "image", "filename": "a.jpg"}), 400, "INVALID_REQUEST", "filename")
	f("unknown field", staffToken, sendMediaPath, send(map[string]any{"media_id": img, "media_type": "image", "link": "x"}), 400, "INVALID_REQUEST", "link")
	f("bad phone", staffToken, sendMediaPath, sendMediaBody(map[string]any{"guest_phone": "1234", "media_id": img, "media_type": "image"}), 400, "INVALID_PHONE_NUMBER", "guest_phone")
	f("content field named", staffToken, sendPath, `{"guest_phone":"+1234567890","message_type":"audio","content":{"media_id":"`+audio+`","caption":"x"}}`, 400, "INVALID_REQUEST", "content.caption")
	f("content without media", staffToken, sendPath, `{"guest_phone":"+1234567890","message_type":"video","content":{"caption":"x"}}`, 400, "INVALID_REQUEST", "content.media_id")
	f("content unknown field", staffToken, sendPath, `{"guest_phone":"+1234567890","message_type":"image","content":{"id":"`+img+`"}}`, 400, "INVALID_REQUEST", "content.id")
	if n := h.queued(); n != 0 {
		t.Fatalf("refused sends queued %d messages", n)
	}
	code, v, _ := h.do("POST", sendMediaPath, staffToken, send(map[string]any{"media_id": audio, "media_type": "audio"}))
	if code != 202 {
		t.Fatalf("audio without caption: %d %v", code, v)
	}
}

func TestMediaPreviewForTheInbox(t *testing.T) {
	h := newMediaHarness(t)
	p := Principal{Tenant: &Tenant{ID: "grand-plaza", Senders: []string{"+15550001000"}}, Role: RoleStaff}
	f := func(r mediaRef, want string) {
		t.Helper()
		_, preview, e := h.srv.appendMediaContent(p, &r, &sendMediaFields, nil)
		if e != nil || preview != want {
			t.Fatalf("%+v: %q %v, want %q", r, preview, e, want)
		}
	}
	f(mediaRef{Type: "image", Link: "https://x.example/a.jpg", Caption: "Your room key"}, "[image] Your room key")
	f(mediaRef{Type: "document", Link: "https://x.example/a.pdf", Filename: "guide.pdf"}, "[document] guide.pdf")
	f(mediaRef{Type: "sticker", Link: "https://x.example/a.webp"}, "[sticker]")
}

func TestMediaIsOffWithoutAStore(t *testing.T) {
	h := newHarness(t)
	body, ct := multipartBody(t, formPart{field: "media", filename: "a.png", value: string(mediatest.PNG(t))})
	req, _ := http.NewRequest("POST", h.base+uploadPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+staffToken)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("upload without a store: %d", resp.StatusCode)
	}
	// Links need no store.
	h.openWindow("+1234567890")
	code, v, _ := h.do("POST", sendMediaPath, staffToken, `{"guest_phone":"+1234567890","media_type":"video","media_url":"https://x.example/tour.mp4"}`)
	if code != 202 {
		t.Fatalf("send by link: %d %v", code, v)
	}
}

func TestMediaConfigIsChecked(t *testing.T) {
	files, err := media.New(t.TempDir())
	must(t, err)
	key := []byte("test-media-signing-key-of-32-bytes!")
	for name, c := range map[string]mediakit.Config{
		"short key":  {Files: files, SigningKey: key[:16], PublicBaseURL: publicBase},
		"no base":    {Files: files, SigningKey: key},
		"base ftp":   {Files: files, SigningKey: key, PublicBaseURL: "ftp://x.example"},
		"base query": {Files: files, SigningKey: key, PublicBaseURL: "https://x.example/?a=1"},
	} {
		s := &Server{cfg: Config{Media: c}}
		if err := s.initMedia(); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

// FuzzUploadForm: any multipart body either is refused with an answer
// that names the field or the reason, or yields exactly one file in media
// and a valid (or no) media_type.
func FuzzUploadForm(f *testing.F) {
	seed := func(parts ...formPart) []byte {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.SetBoundary("B0undary")
		for _, p := range parts {
			if p.filename == "" {
				w.WriteField(p.field, p.value)
				continue
			}
			fw, _ := w.CreateFormFile(p.field, p.filename)
			fw.Write([]byte(p.value))
		}
		w.Close()
		return b.Bytes()
	}
	f.Add(seed(formPart{field: "media", filename: "room_key_info.jpg", value: "\xff\xd8\xff\xe0"}, formPart{field: "media_type", value: "image"}))
	f.Add(seed(formPart{field: "media", filename: "a.pdf", value: "%PDF-1.4"}))
	f.Add(seed(formPart{field: "media_type", value: "image"}))
	f.Add(seed(formPart{field: "media", value: "text"}))
	f.Add(seed(formPart{field: "file", filename: "a", value: "x"}, formPart{field: "media", filename: "b", value: "y"}))
	f.Add(seed(formPart{field: "media_type", value: "photo"}, formPart{field: "media_type", value: "image"}))
	f.Add([]byte("--B0undary\r\nContent-Disposition: form-data; name=\"media\"; filename=\"../../x\"\r\n\r\nhi\r\n--B0undary--\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := multipart.NewReader(bytes.NewReader(body), "B0undary").ReadForm(1 << 20)
		if err != nil {
			return
		}
		defer form.RemoveAll()
		up, e := readUploadForm(form)
		if e != nil {
			if e.Code != message.CodeInvalidRequest && e.Code != message.CodeMediaUploadFailed {
				t.Fatalf("code %s", e.Code)
			}
			if e.Details["field"] == nil && e.Details["reason"] == nil {
				t.Fatalf("error names neither field nor reason: %+v", e)
			}
			return
		}
		if up.file == nil || len(form.File["media"]) != 1 || (up.declared != "" && !isMediaType(up.declared)) {
			t.Fatalf("accepted %+v from %+v", up, form)
		}
		if name := mediakit.CleanFilename(up.file.Filename); strings.ContainsAny(name, "/\\\x00\n") || len(name) > 240 {
			t.Fatalf("file name %q kept unsafe", name)
		}
	})
}

func TestContentDispositionKeepsTheNameWhole(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		if got := contentDisposition("attachment", name); got != want {
			t.Fatalf("%q: got %s, want %s", name, got, want)
		}
		// Go's own parser reads the name back.
		if _, params, err := mime.ParseMediaType(want); err != nil || params["filename"] != name {
			t.Fatalf("%q: parsed back as %v (%v)", name, params, err)
		}
	}
	f("guide.pdf", `attachment; filename="guide.pdf"; filename*=UTF-8''guide.pdf`)
	f("menü; v2 (final).pdf", `attachment; filename="men_; v2 (final).pdf"; filename*=UTF-8''men%C3%BC%3B%20v2%20%28final%29.pdf`)
	f(`say "hi".txt`, `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`)
}

// TestLargeUploadsSpillToDisk: fasthttp keeps multipart files over 16 MiB
// in temporary files; detection and storage read them from there.
func TestLargeUploadsSpillToDisk(t *testing.T) {
	h := newMediaHarness(t, func(c *Config) {
		c.MaxUploadBytes = 20 << 20
		c.Media.Limits.Document = 18 << 20
	})
	text := bytes.Repeat([]byte("Room service menu: ä la carte, 24 h.\n"), (17<<20)/38)
	v := h.mustUpload("menu.txt", text, "")
	if v["mime_type"] != "text/plain" || v["size"] != float64(len(text)) {
		t.Fatalf("answer %v", v)
	}
	code, _, body := h.get(v["media_url"].(string))
	if code != 200 || !bytes.Equal(body, text) {
		t.Fatalf("download: %d, %d bytes", code, len(body))
	}
}

func TestTemplateHeaderTakesTheTenantsOwnUploads(t *testing.T) {
	h := newMediaHarness(t)
	h.putTemplates("grand-plaza", hotelTemplates...)
	h.putTemplates("seaside", hotelTemplates...)
	img := h.mustUpload("room_key_info.jpg", mediatest.JPEG(t), "image")["media_id"].(string)
	doc := h.mustUpload("amenities.pdf", mediatest.PDF(), "document")["media_id"].(string)
	send := func(id string) string {
		return `{"guest_phone":"+1234567890","template_name":"room_ready","language":"en",
			"parameters":{"1":"Ana","2":"412","header_media_id":"` + id + `","button_0":"K-412","button_1":"HELP"}}`
	}
	code, v, _ := h.do("POST", templateSendPath, staffToken, send(img))
	if code != 202 {
		t.Fatalf("own upload: %d %v", code, v)
	}
	if got := string(h.begin(v["message_id"].(string)).Msg.Content); !strings.Contains(got, `{"type":"image","image":{"id":"`+img+`"}}`) {
		t.Fatalf("queued %s", got)
	}
	f := func(name, token, body string, status int, code, field string) {
		t.Run(name, func(t *testing.T) {
			before := h.queued()
			c, v, _ := h.do("POST", templateSendPath, token, body)
			if c != status || errCode(t, v) != code || mediaErrDetails(t, v)["field"] != field {
				t.Fatalf("%d %v", c, v)
			}
			if h.queued() != before {
				t.Fatal("a refused send queued a message")
			}
		})
	}
	f("another tenant's upload", otherToken, send(img), 404, "MEDIA_NOT_FOUND", "parameters.header_media_id")
	f("an upload that never was", staffToken, send("med_"+strings.Repeat("z", 26)), 404, "MEDIA_NOT_FOUND", "parameters.header_media_id")
	f("a document for an image header", staffToken, send(doc), 400, "INVALID_REQUEST", "parameters.header_media_id")
}

// TestStaffsMediaShowsInTheHistory: a photo sent from the media store
// shows in its conversation's history with a signed URL that serves it,
// as a guest's does, for the inbox to show.
func TestStaffsMediaShowsInTheHistory(t *testing.T) {
	h := newMediaHarness(t)
	h.openWindow("+1234567890")
	data := mediatest.JPEG(t)
	img := h.mustUpload("towels.jpg", data, "image")["media_id"].(string)
	code, v, _ := h.do("POST", sendPath, staffToken, `{"guest_phone":"+1234567890","message_type":"image","content":{"media_id":"`+img+`","caption":"These ones?"}}`)
	if code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	conv := v["conversation_id"].(string)
	code, c, _ := h.do("GET", "/api/v1/whatsapp/conversations/"+conv, staffToken, "")
	if code != 200 {
		t.Fatalf("%d %v", code, c)
	}
	msgs := c["messages"].([]any)
	m := msgs[len(msgs)-1].(map[string]any)
	u, _ := m["media_url"].(string)
	if m["direction"] != "outbound" || m["media_status"] != "ready" || u == "" {
		t.Fatalf("the photo in the history: %v", m)
	}
	code, hdr, body := h.get(u)
	if code != 200 || !bytes.Equal(body, data) || hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("its URL: %d %s (%d bytes)", code, hdr.Get("Content-Type"), len(body))
	}
}
