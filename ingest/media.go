package ingest

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// initMedia sets up s.media from s.cfg.Media.
func (s *Server) initMedia() error {
	m, err := mediakit.New(s.cfg.Media)
	if err != nil {
		return err
	}
	s.media = m
	return nil
}

// mediaOff answers the media calls of a gateway without a media store.
var mediaOff = &apiError{Code: message.CodeServiceUnavailable, Message: "Media uploads are not configured on this gateway",
	RecoveryOptions: []string{"Send media by link (media_url) instead", "Ask the operator to configure the media folder"}}

// The upload's refusal reasons (details.reason).
const (
	reasonNoFile      = "no_file"
	reasonEmpty       = "empty_file"
	reasonUnknown     = "unknown_format"
	reasonUnsupported = "unsupported_format"
	reasonMismatch    = "type_mismatch"
	reasonTooLarge    = "too_large"
)

// mediaTypes are the WhatsApp media types.
var mediaTypes = []string{"image", "document", "audio", "video", "sticker"}

func isMediaType(t string) bool {
	switch t {
	case "image", "document", "audio", "video", "sticker":
		return true
	}
	return false
}

// supportedFormats lists what WhatsApp takes, for refusals.
const supportedFormats = "image: JPEG or PNG up to 5 MB; document: PDF, Word, Excel, PowerPoint or UTF-8 text up to 100 MB; " +
	"audio: AAC, AMR, MP3, M4A or Ogg Opus up to 16 MB; video: MP4 or 3GP (H.264, AAC) up to 16 MB; sticker: WebP up to 100 KB (500 KB animated)"

// uploadFailed is a 422 MEDIA_UPLOAD_FAILED with its reason.
func uploadFailed(reason, msg string, details map[string]any, recovery ...string) *apiError {
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = reason
	if len(recovery) == 0 {
		recovery = []string{"Upload a file WhatsApp takes: " + supportedFormats}
	}
	return &apiError{Code: message.CodeMediaUploadFailed, Message: msg, Details: details, RecoveryOptions: recovery}
}

// mediaUpload is what an upload form holds, checked.
type mediaUpload struct {
	file *multipart.FileHeader
	// declared is the media_type field: a media type, or "" to take the
	// one the bytes say.
	declared string
}

// readUploadForm checks the fields of an upload form: one file in media,
// at most one media_type, nothing else.
func readUploadForm(form *multipart.Form) (mediaUpload, *apiError) {
	var up mediaUpload
	for k, vs := range form.Value {
		switch k {
		case "media_type":
			if len(vs) > 1 {
				return up, invalidRequest("media_type is given more than once", map[string]any{"field": "media_type"})
			}
			up.declared = strings.TrimSpace(vs[0])
		case "media":
			return up, uploadFailed(reasonNoFile, "media must be a file part (curl: -F media=@room_key_info.jpg), not a text field",
				map[string]any{"field": "media"})
		default:
			return up, invalidRequest("Unknown field "+k, map[string]any{"field": k, "allowed": []string{"media", "media_type"}})
		}
	}
	if up.declared != "" && !isMediaType(up.declared) {
		return up, invalidRequest("media_type must be image, document, audio, video or sticker",
			map[string]any{"field": "media_type", "value": up.declared, "allowed": mediaTypes})
	}
	var others []string
	for k, fs := range form.File {
		if k == "media" {
			if len(fs) > 1 {
				return up, invalidRequest("Send one file per upload", map[string]any{"field": "media", "files": len(fs)})
			}
			up.file = fs[0]
			continue
		}
		others = append(others, k)
	}
	if up.file == nil {
		d := map[string]any{"field": "media"}
		msg := "The upload holds no file in the field media"
		if len(others) > 0 {
			d["got_fields"] = others
			msg += " (the file must be sent as media, not " + others[0] + ")"
		}
		return up, uploadFailed(reasonNoFile, msg, d, "Send the file as the form field media: curl -F media=@room_key_info.jpg -F media_type=image …")
	}
	if len(others) > 0 {
		return up, invalidRequest("Unknown field "+others[0], map[string]any{"field": others[0], "allowed": []string{"media", "media_type"}})
	}
	return up, nil
}

// uploadAnswer is the 201 of an upload.
type uploadAnswer struct {
	MediaID   string `json:"media_id"`
	MediaURL  string `json:"media_url"`
	ExpiresAt string `json:"expires_at"`
	MediaType string `json:"media_type"`
	MIMEType  string `json:"mime_type"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Filename  string `json:"filename"`
}

// handleMediaUpload serves POST /api/v1/whatsapp/media/upload (multipart).
// The file's format is told from its bytes and checked against WhatsApp's
// formats and limits before anything is stored; the same bytes are kept
// once on disk, each upload gets its own media id.
func (s *Server) handleMediaUpload(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	m := &s.media
	if m.Files == nil {
		writeError(ctx, mediaOff)
		return
	}
	if len(ctx.Request.Header.MultipartFormBoundary()) == 0 {
		writeError(ctx, &apiError{Code: message.CodeUnsupportedMedia,
			Message:         "An upload must be a multipart/form-data body with the file in the field media",
			Details:         map[string]any{"content_type": string(ctx.Request.Header.ContentType())},
			RecoveryOptions: []string{"curl -F media=@room_key_info.jpg -F media_type=image …"}})
		return
	}
	form, err := ctx.MultipartForm()
	if err != nil {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			writeError(ctx, tooLarge(s.cfg.MaxUploadBytes))
			return
		}
		writeError(ctx, invalidRequest("The multipart body could not be read", map[string]any{"reason": err.Error()}))
		return
	}
	up, e := readUploadForm(form)
	if e != nil {
		writeError(ctx, e)
		return
	}
	ans, e := s.storeUpload(p, &up)
	if e != nil {
		writeError(ctx, e)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, ans)
}

// storeUpload checks the uploaded file and keeps it.
func (s *Server) storeUpload(p Principal, up *mediaUpload) (*uploadAnswer, *apiError) {
	m := &s.media
	name := mediakit.CleanFilename(up.file.Filename)
	size := up.file.Size
	details := func() map[string]any {
		d := map[string]any{"size": size, "filename": name}
		if up.declared != "" {
			d["declared_type"] = up.declared
		}
		return d
	}
	if size <= 0 {
		return nil, uploadFailed(reasonEmpty, "The uploaded file is empty", details())
	}
	f, err := up.file.Open()
	if err != nil {
		s.log.Error("open uploaded file", "err", err)
		return nil, &apiError{Code: message.CodeInternal, Message: "The uploaded file could not be read; nothing was stored"}
	}
	defer f.Close()
	format := mediakit.Office(mediakit.Detect(f, size), name)
	switch {
	case !format.Known():
		return nil, uploadFailed(reasonUnknown, "The file's content is not a format WhatsApp takes (whatever its name says)", details())
	case format.Kind == "":
		d := details()
		d["detected_type"], d["detected_format"] = format.MIME, format.Name
		return nil, uploadFailed(reasonUnsupported, "The file is a "+format.Name+": "+format.Why, d)
	case up.declared != "" && up.declared != format.Kind:
		d := details()
		d["field"], d["detected_type"], d["detected_format"], d["detected_media_type"] = "media_type", format.MIME, format.Name, format.Kind
		msg := "media_type is " + up.declared + " but the file is a " + format.Name + ", which is sent as " + format.Kind
		if format.Kind == "sticker" && up.declared == "image" {
			msg += " (WhatsApp takes WebP images as stickers only)"
		}
		return nil, uploadFailed(reasonMismatch, msg, d,
			"Give media_type "+format.Kind+", or leave it out to take the type the file's content says",
			"Upload a file WhatsApp takes as "+up.declared+": "+supportedFormats)
	}
	kind := format.Kind
	limit := m.Limits.Of(kind, format.Animated)
	if size > limit {
		d := details()
		d["detected_type"], d["media_type"], d["max_bytes"] = format.MIME, kind, limit
		return nil, uploadFailed(reasonTooLarge, fmt.Sprintf("The %s is %d bytes; WhatsApp takes %s files up to %d bytes", format.Name, size, kind, limit), d,
			"Compress or shorten the file below "+strconv.FormatInt(limit, 10)+" bytes")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.log.Error("rewind uploaded file", "err", err)
		return nil, &apiError{Code: message.CodeInternal, Message: "The uploaded file could not be read; nothing was stored"}
	}
	blob, err := m.Files.Put(f, limit)
	if err != nil {
		s.log.Error("store uploaded file", "err", err)
		return nil, &apiError{Code: message.CodeServiceUnavailable, Message: "The media store could not keep the file; nothing was stored",
			RecoveryOptions: []string{"Retry the upload after the Retry-After delay"}, RetryAfter: 1}
	}
	if name == "" {
		name = kind + "." + format.Ext
	}
	now := m.Now()
	rec := &redis.MediaRecord{ID: mediakit.NewID(), TenantID: p.Tenant.ID, SHA256: blob.SHA256, MIME: format.MIME, Type: kind,
		Size: blob.Size, Filename: name, CreatedMS: now.UnixMilli()}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	err = s.store.PutMedia(rctx, rec, m.Retention)
	cancel()
	if err != nil {
		s.log.Warn("store media record", "err", err)
		return nil, unavailable("stored")
	}
	expires := now.Add(m.URLTTL).Unix()
	return &uploadAnswer{MediaID: rec.ID, MediaURL: m.URL(rec.ID, expires), ExpiresAt: rfc3339(expires * 1000),
		MediaType: kind, MIMEType: rec.MIME, Size: rec.Size, SHA256: rec.SHA256, Filename: name}, nil
}

// forbiddenLink answers a media URL that is not signed, or no longer valid.
func forbiddenLink(msg string) *apiError {
	return &apiError{Code: message.CodeForbidden, Message: msg,
		RecoveryOptions: []string{"Use the media_url the upload answered, before its expires_at", "Upload the file again for a fresh URL"}}
}

// handleMediaGet serves GET /api/v1/whatsapp/media/{id} by signed URL: the
// signature is the credential (a provider fetching by link has no token),
// checked before anything else so that unsigned requests learn nothing.
func (s *Server) handleMediaGet(ctx *fasthttp.RequestCtx, _ Principal, ps params) {
	m := &s.media
	if m.Files == nil {
		writeError(ctx, mediaOff)
		return
	}
	id := ps[0]
	args := ctx.QueryArgs()
	sig := args.Peek("signature")
	expires, err := strconv.ParseInt(string(args.Peek("expires")), 10, 64)
	if len(sig) == 0 || err != nil {
		writeError(ctx, forbiddenLink("A media URL needs its expires and signature parameters"))
		return
	}
	if !hmac.Equal(m.Signature(id, expires), sig) {
		writeError(ctx, forbiddenLink("The media URL's signature is not valid"))
		return
	}
	if m.Now().Unix() > expires {
		writeError(ctx, forbiddenLink("The media URL expired at "+time.Unix(expires, 0).UTC().Format(time.RFC3339)))
		return
	}
	notFound := &apiError{Code: message.CodeMediaNotFound, Message: "No such media (it may have passed its retention)",
		Details: map[string]any{"media_id": id}}
	if !mediakit.ValidID(id) {
		writeError(ctx, notFound)
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	rec, err := s.store.Media(rctx, id)
	cancel()
	if errors.Is(err, redis.ErrMediaNotFound) {
		writeError(ctx, notFound)
		return
	}
	if err != nil {
		s.log.Warn("read media record", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	f, err := m.Files.Open(rec.SHA256)
	if err != nil {
		s.log.Warn("media file missing", "media_id", id, "sha256", rec.SHA256, "err", err)
		writeError(ctx, notFound)
		return
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		s.log.Warn("media file stat", "media_id", id, "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	ct := rec.MIME
	if ct == mediakit.MIMEText {
		ct += "; charset=utf-8"
	}
	ctx.SetContentType(ct)
	disposition := "inline"
	if rec.Type == "document" {
		disposition = "attachment"
	}
	ctx.Response.Header.Set("Content-Disposition", contentDisposition(disposition, rec.Filename))
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(expires-m.Now().Unix(), 0), 10))
	ctx.Response.Header.Set("ETag", `"`+rec.SHA256+`"`)
	// fasthttp closes the file once the body is written.
	ctx.SetBodyStream(f, int(info.Size()))
}

// contentDisposition writes the header with an ASCII filename and the
// UTF-8 one (RFC 6266), so that every client gets a usable name.
func contentDisposition(kind, name string) string {
	if name == "" {
		return kind
	}
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	return kind + `; filename="` + ascii + `"; filename*=UTF-8''` + extValue(name)
}

// extValue percent-encodes s as an RFC 5987 value: every byte but
// attr-char, so that no ';' or quote ends the parameter early.
func extValue(s string) string {
	const attr = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attr, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// sendMediaRequest is the body of POST /api/v1/whatsapp/messages/send-media
// (seed 001).
type sendMediaRequest struct {
	GuestPhone string `json:"guest_phone"`
	// MediaID is an upload's id; MediaURL an https link instead, as Meta
	// takes.
	MediaID   string `json:"media_id"`
	MediaURL  string `json:"media_url"`
	MediaType string `json:"media_type"`
	Caption   string `json:"caption"`
	// Filename is shown for documents; the upload's name by default.
	Filename       string `json:"filename"`
	ConversationID string `json:"conversation_id"`
	StaffMemberID  string `json:"staff_member_id"`
	From           string `json:"from"`
	delivery
}

// mediaSendState is the per-request scratch of a send-media; the handler
// owns it from mediaSendPool until it returns.
type mediaSendState struct {
	req     sendMediaRequest
	o       outbound
	content []byte
	args    redis.EnqueueArgs
	out     []byte
}

var mediaSendPool = sync.Pool{New: func() any {
	return &mediaSendState{content: make([]byte, 0, 256), out: make([]byte, 0, 128)}
}}

// guestPhoneError checks a guest's number as every send does.
func guestPhoneError(phone string) *apiError {
	if phone == "" {
		return &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is required",
			Details:         map[string]any{"field": "guest_phone"},
			RecoveryOptions: []string{"Give the guest's number in E.164 form, e.g. +14155550123"}}
	}
	if !message.ValidGuest(phone) {
		return &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)",
			Details:         map[string]any{"field": "guest_phone", "value": phone, "expected": "+ then country code and number, 7 to 15 digits, no spaces; or a business-scoped user id such as BR.1502576394655843"},
			RecoveryOptions: []string{"Give the guest's number in E.164 form, e.g. +14155550123"}}
	}
	return nil
}

// handleSendMedia serves POST /api/v1/whatsapp/messages/send-media.
func (s *Server) handleSendMedia(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	st := mediaSendPool.Get().(*mediaSendState)
	defer mediaSendPool.Put(st)
	r := &st.req
	*r = sendMediaRequest{}
	if e := decodeJSON(ctx.PostBody(), r); e != nil {
		writeError(ctx, e)
		return
	}
	if e := guestPhoneError(r.GuestPhone); e != nil {
		writeError(ctx, e)
		return
	}
	switch {
	case r.MediaType == "":
		writeError(ctx, invalidRequest("media_type is required", map[string]any{"field": "media_type", "allowed": mediaTypes}))
		return
	case !isMediaType(r.MediaType):
		writeError(ctx, invalidRequest("media_type must be image, document, audio, video or sticker",
			map[string]any{"field": "media_type", "value": r.MediaType, "allowed": mediaTypes}))
		return
	}
	ref := mediaRef{Type: r.MediaType, ID: r.MediaID, Link: r.MediaURL, Caption: r.Caption, Filename: r.Filename}
	o := &st.o
	*o = outbound{GuestPhone: r.GuestPhone, From: r.From, Type: message.Type(r.MediaType),
		ConversationID: r.ConversationID, StaffMemberID: r.StaffMemberID, Delivery: &r.delivery}
	var e *apiError
	st.content, o.Preview, e = s.appendMediaContent(p, &ref, &sendMediaFields, st.content[:0])
	if e != nil {
		writeError(ctx, e)
		return
	}
	o.Content = st.content
	st.out = s.enqueue(ctx, p, o, &st.args, st.out[:0])
}

// mediaRef is a media message as a caller gave it.
type mediaRef struct {
	Type                        string
	ID, Link, Caption, Filename string
}

// mediaFieldNames are the request's names of a mediaRef's fields, for
// errors.
type mediaFieldNames struct{ typ, id, link, caption, filename string }

var (
	sendMediaFields    = mediaFieldNames{"media_type", "media_id", "media_url", "caption", "filename"}
	contentMediaFields = mediaFieldNames{"message_type", "content.media_id", "content.link", "content.caption", "content.filename"}
)

// maxCaptionRunes is the longest caption WhatsApp takes.
const maxMediaCaptionRunes = 1024

// maxLinkLen bounds a media link.
const maxMediaLinkLen = 2048

// appendMediaContent checks r and appends Meta's object for its type to
// dst: {"id":…} with wagate's media id (the provider adapter swaps it for
// its own id when it sends) or {"link":…}, then caption and filename. It
// returns the inbox preview ("[image] caption").
func (s *Server) appendMediaContent(p Principal, r *mediaRef, names *mediaFieldNames, dst []byte) ([]byte, string, *apiError) {
	switch {
	case r.ID == "" && r.Link == "":
		return dst, "", invalidRequest(names.id+" or "+names.link+" is required", map[string]any{"field": names.id})
	case r.ID != "" && r.Link != "":
		return dst, "", invalidRequest("Give "+names.id+" or "+names.link+", not both", map[string]any{"field": names.link})
	}
	if n := utf8.RuneCountInString(r.Caption); n > maxMediaCaptionRunes {
		return dst, "", invalidRequest(names.caption+" is longer than WhatsApp allows",
			map[string]any{"field": names.caption, "length": n, "max_length": maxMediaCaptionRunes})
	}
	if r.Caption != "" && (r.Type == "audio" || r.Type == "sticker") {
		return dst, "", invalidRequest(r.Type+" messages take no caption", map[string]any{"field": names.caption})
	}
	if r.Filename != "" {
		if r.Type != "document" {
			return dst, "", invalidRequest(names.filename+" is for documents only", map[string]any{"field": names.filename})
		}
		if mediakit.CleanFilename(r.Filename) != r.Filename {
			return dst, "", invalidRequest(names.filename+" must be a file name: no folders or control characters, at most 240 bytes",
				map[string]any{"field": names.filename})
		}
	}
	filename := r.Filename
	if r.Link != "" {
		if e := checkMediaLink(r.Link, names.link); e != nil {
			return dst, "", e
		}
	} else {
		rec, e := s.tenantMedia(p.Tenant.ID, r.ID, names.id)
		if e != nil {
			return dst, "", e
		}
		if rec.Type != r.Type {
			return dst, "", invalidRequest(names.id+" is "+article(rec.Type)+" "+rec.Type+" ("+rec.MIME+"), not "+article(r.Type)+" "+r.Type,
				map[string]any{"field": names.typ, "value": r.Type, "media_type": rec.Type})
		}
		if filename == "" && r.Type == "document" {
			filename = rec.Filename
		}
	}
	if r.ID != "" {
		dst = append(dst, `{"id":`...)
		dst = message.AppendJSONString(dst, r.ID)
	} else {
		dst = append(dst, `{"link":`...)
		dst = message.AppendJSONString(dst, r.Link)
	}
	if r.Caption != "" {
		dst = append(dst, `,"caption":`...)
		dst = message.AppendJSONString(dst, r.Caption)
	}
	if filename != "" {
		dst = append(dst, `,"filename":`...)
		dst = message.AppendJSONString(dst, filename)
	}
	dst = append(dst, '}')
	preview := "[" + r.Type + "]"
	switch {
	case r.Caption != "":
		preview += " " + r.Caption
	case filename != "":
		preview += " " + filename
	}
	return dst, preview, nil
}

// checkLink checks a media link: an absolute https URL, as Meta fetches.
func checkMediaLink(link, field string) *apiError {
	bad := func(why string) *apiError {
		return invalidRequest(field+" "+why, map[string]any{"field": field})
	}
	if len(link) > maxMediaLinkLen {
		return bad("is longer than 2048 characters")
	}
	for i := 0; i < len(link); i++ {
		if c := link[i]; c <= ' ' || c == 0x7f {
			return bad("may not hold spaces or control characters")
		}
	}
	u, err := url.Parse(link)
	switch {
	case err != nil:
		return bad("is not a URL")
	case u.Scheme != "https":
		return bad("must be an https URL")
	case u.Host == "" || u.User != nil:
		return bad("must be an https URL with a host and no credentials")
	}
	return nil
}

// tenantMedia returns tenant's media record id: another tenant's id
// is as unknown as one that never existed.
func (s *Server) tenantMedia(tenant, id, field string) (*redis.MediaRecord, *apiError) {
	notFound := &apiError{Code: message.CodeMediaNotFound, Message: "No media with this id for this tenant",
		Details:         map[string]any{"field": field, "media_id": id},
		RecoveryOptions: []string{"Upload the file with POST /api/v1/whatsapp/media/upload and send the media_id it answers"}}
	if !mediakit.ValidID(id) {
		return nil, notFound
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	rec, err := s.store.Media(ctx, id)
	cancel()
	// A guest's media whose download failed has no bytes to send.
	if errors.Is(err, redis.ErrMediaNotFound) || (err == nil && (rec.TenantID != tenant || rec.Status == redis.MediaFailed)) {
		return nil, notFound
	}
	if err != nil {
		s.log.Warn("read media record", "err", err)
		return nil, unavailable("queued")
	}
	return rec, nil
}

// mediaContentRequest is the content of a messages/send media message.
type mediaContentRequest struct {
	MediaID  string `json:"media_id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// buildMedia appends Meta's media object of type t for a messages/send
// content ({media_id | link, caption, filename}) to dst.
func (s *Server) buildMedia(p Principal, t message.Type, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	var c mediaContentRequest
	if e := decodeField(raw, &c, "content"); e != nil {
		return dst, "", e
	}
	return s.appendMediaContent(p, &mediaRef{Type: string(t), ID: c.MediaID, Link: c.Link, Caption: c.Caption, Filename: c.Filename},
		&contentMediaFields, dst)
}
