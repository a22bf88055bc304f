package sim

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

type mediaObject struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// validateMedia checks a media object's shape as Meta does: id or link,
// a caption only on image, video and document (at most 1024 characters),
// a filename only on documents. typ names the object in errors: a message
// type, or the path of a nested one ("interactive['header']['image']"),
// whose last element is its media type.
func validateMedia(typ string, m *mediaObject) *apiError {
	kind := typ
	if i := strings.LastIndex(typ, "['"); i >= 0 && strings.HasSuffix(typ, "']") {
		kind = typ[i+2 : len(typ)-2]
	}
	switch {
	case m == nil:
		e := errRequired(typ)
		return &e
	case m.ID == "" && m.Link == "":
		e := errParam("(#100) Param "+typ+" must have either id or link.", "The parameter "+typ+"['id'] or "+typ+"['link'] is required.")
		return &e
	case m.ID != "" && m.Link != "":
		e := errParam("(#100) Param "+typ+" must have either id or link, not both.", "Both id and link were given.")
		return &e
	case utf8.RuneCountInString(m.Caption) > maxCaptionRunes:
		e := errParam("(#100) Param "+typ+"['caption'] must be at most 1024 characters long.", "Caption is too long.")
		return &e
	case m.Caption != "" && (kind == "audio" || kind == "sticker"):
		e := errParam("(#100) Param "+typ+"['caption'] is not a valid parameter.", "Captions are for image, video and document messages only.")
		return &e
	case m.Filename != "" && kind != "document":
		e := errParam("(#100) Param "+typ+"['filename'] is not a valid parameter.", "A filename is for document messages only.")
		return &e
	}
	return nil
}

// mediaLink reports whether s is an absolute http(s) URL with a host.
func mediaLink(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkMedia checks a media message's object against what this server
// knows: a media id must be one it issued, for media that a message of typ
// may carry; a link must be one it could fetch.
func (s *Server) checkMedia(typ string, m *mediaObject) *apiError {
	if m.ID == "" {
		if !mediaLink(m.Link) {
			e := errParam("(#100) Param "+typ+"['link'] must be a valid URL.", "The media link must be an http or https URL.")
			return &e
		}
		return nil
	}
	mt, ok := s.issuedMedia(m.ID)
	if !ok {
		e := errParam("(#100) Invalid parameter", "Param "+typ+"['id'] is not a valid whatsapp business account media attachment ID")
		return &e
	}
	if mediaKind(mt) != typ {
		e := errParam("(#100) Invalid parameter", "Param "+typ+"['id'] is media of type "+mt+", which cannot be sent as "+typ+".")
		return &e
	}
	return nil
}

// metaMediaTypes are the MIME types Meta takes for uploads. Their order is
// fixed: a media id carries its type's index.
var metaMediaTypes = []string{
	"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg",
	"text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	"image/jpeg", "image/png", "image/webp", "video/mp4", "video/3gpp",
}

// mediaKind is the message type that sends media of type mt.
func mediaKind(mt string) string {
	switch {
	case mt == "image/webp":
		return "sticker"
	case strings.HasPrefix(mt, "image/"):
		return "image"
	case strings.HasPrefix(mt, "audio/"):
		return "audio"
	case strings.HasPrefix(mt, "video/"):
		return "video"
	}
	return "document"
}

// mediaLimit is Meta's size limit of an upload of type mt; head tells an
// animated WebP (500 KB) from a still one (100 KB).
func mediaLimit(mt string, head []byte) int64 {
	switch mediaKind(mt) {
	case "image":
		return 5 << 20
	case "audio", "video":
		return 16 << 20
	case "sticker":
		if len(head) > 20 && string(head[12:16]) == "VP8X" && head[20]&0x02 != 0 {
			return 500 << 10
		}
		return 100 << 10
	}
	return 100 << 20
}

// sniffs reports whether a file's first bytes fit type mt: Meta refuses a
// file whose content is not the type it is uploaded as.
func sniffs(mt string, h []byte) bool {
	has := func(off int, sig string) bool { return len(h) >= off+len(sig) && string(h[off:off+len(sig)]) == sig }
	frame := len(h) >= 2 && h[0] == 0xff && h[1]&0xe0 == 0xe0
	switch mt {
	case "image/jpeg":
		return has(0, "\xff\xd8\xff")
	case "image/png":
		return has(0, "\x89PNG\r\n\x1a\n")
	case "image/webp":
		return has(0, "RIFF") && has(8, "WEBP")
	case "application/pdf":
		return has(0, "%PDF-")
	case "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint":
		return has(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	case "text/plain":
		return bytes.IndexByte(h, 0) < 0 && utf8.Valid(trimCutRune(h))
	case "audio/aac":
		return has(0, "ID3") || frame && h[1]&0x06 == 0
	case "audio/mpeg":
		return has(0, "ID3") || frame && h[1]&0x06 != 0
	case "audio/amr":
		return has(0, "#!AMR\n")
	case "audio/ogg":
		return has(0, "OggS")
	case "audio/mp4", "video/mp4", "video/3gpp":
		return has(4, "ftyp")
	}
	// The Office Open XML types are zip files.
	return has(0, "PK\x03\x04")
}

// trimCutRune drops a rune cut short at the end of a file's head.
func trimCutRune(h []byte) []byte {
	for i := len(h) - 1; i >= 0 && i >= len(h)-utf8.UTFMax; i-- {
		if utf8.RuneStart(h[i]) {
			if !utf8.FullRune(h[i:]) {
				return h[:i]
			}
			break
		}
	}
	return h
}

// A media id is 16 digits, like Meta's: 10^15 plus a sequence number, the
// index of its type in metaMediaTypes and a MAC under this server's random
// id prefix. So the server knows the ids it issued, and their type,
// without keeping a table that grows with every upload of a long run.
const (
	mediaIDBase  = 1_000_000_000_000_000
	mediaSeqBits = 22
	mediaTypBits = 5
	mediaMACBits = 25
)

func (s *Server) mediaMAC(seq uint64, typ int) uint64 {
	h := hmac.New(sha256.New, s.idPrefix[:])
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	b[8] = byte(typ)
	h.Write([]byte("media"))
	h.Write(b[:])
	return binary.BigEndian.Uint64(h.Sum(nil)) & (1<<mediaMACBits - 1)
}

// newMediaID issues the id of an upload of type metaMediaTypes[typ].
func (s *Server) newMediaID(typ int) string {
	seq := s.idSeq.Add(1) & (1<<mediaSeqBits - 1)
	v := seq<<(mediaTypBits+mediaMACBits) | uint64(typ)<<mediaMACBits | s.mediaMAC(seq, typ)
	return strconv.FormatUint(mediaIDBase+v, 10)
}

// issuedMedia returns the type of media id if this server issued it.
func (s *Server) issuedMedia(id string) (string, bool) {
	if len(id) != 16 {
		return "", false
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n < mediaIDBase || n-mediaIDBase >= 1<<(mediaSeqBits+mediaTypBits+mediaMACBits) {
		return "", false
	}
	v := n - mediaIDBase
	seq := v >> (mediaTypBits + mediaMACBits)
	typ := int(v>>mediaMACBits) & (1<<mediaTypBits - 1)
	if typ >= len(metaMediaTypes) || v&(1<<mediaMACBits-1) != s.mediaMAC(seq, typ) {
		return "", false
	}
	return metaMediaTypes[typ], true
}

// sniffLen is how much of an upload is read to check its type.
const sniffLen = 512

// handleMedia serves POST /{version}/{phone-number-id}/media: a multipart
// form with file, messaging_product=whatsapp and type, checked as Meta
// does (a supported type, a file of that type, within its size limit).
func (s *Server) handleMedia(ctx *fasthttp.RequestCtx, phoneID []byte) {
	if s.inOutage(time.Now().UnixNano()) {
		s.stats.outage.Add(1)
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.answerError(ctx, &errOutage)
		return
	}
	if !s.authorized(ctx) {
		s.answerError(ctx, &errBadToken)
		return
	}
	if s.numbers[string(phoneID)] == nil {
		e := errUnknownObject(phoneID)
		s.answerError(ctx, &e)
		return
	}
	form, err := ctx.MultipartForm()
	if err != nil {
		e := errParam("(#100) Invalid parameter", "The upload must be a multipart/form-data body.")
		s.answerError(ctx, &e)
		return
	}
	var e apiError
	switch mp := form.Value["messaging_product"]; {
	case len(mp) == 0 || mp[0] == "":
		e = errRequired("messaging_product")
	case mp[0] != "whatsapp":
		e = errParam("(#100) Param messaging_product must be one of {WHATSAPP} - got \""+mp[0]+"\".", "Unsupported messaging product.")
	case len(form.File["file"]) == 0:
		e = errRequired("file")
	case len(form.Value["type"]) == 0 || form.Value["type"][0] == "":
		e = errRequired("type")
	}
	if e.code != 0 {
		s.answerError(ctx, &e)
		return
	}
	given := form.Value["type"][0]
	mt, _, err := mime.ParseMediaType(given)
	typ := -1
	for i, t := range metaMediaTypes {
		if err == nil && mt == t {
			typ = i
		}
	}
	if typ < 0 {
		e = errParam("(#100) Param file must be a file with one of the following types: "+strings.Join(metaMediaTypes, ", ")+
			". Received file of type '"+given+"'.", "Unsupported media type.")
		s.answerError(ctx, &e)
		return
	}
	fh := form.File["file"][0]
	f, err := fh.Open()
	if err != nil {
		s.answerError(ctx, &errTransient)
		return
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		s.answerError(ctx, &errTransient)
		return
	}
	head := data[:min(len(data), sniffLen)]
	switch limit := mediaLimit(mt, head); {
	case fh.Size == 0:
		e = errParam("(#100) Param file must be a non-empty file.", "The uploaded file is empty.")
	case !sniffs(mt, head):
		e = errParam("(#100) Param file must be a file of type "+mt+".", "The file's content is not of the type it was uploaded as.")
	case fh.Size > limit:
		e = apiError{status: 400, typ: "OAuthException", code: 131053, message: "(#131053) Media upload error",
			details: "File of type " + mt + " is " + strconv.FormatInt(fh.Size, 10) + " bytes; the limit is " + strconv.FormatInt(limit, 10) + " bytes."}
	}
	if e.code != 0 {
		s.answerError(ctx, &e)
		return
	}
	s.stats.media.Add(1)
	id := s.newMediaID(typ)
	s.files.hold(id, string(phoneID), mt, data)
	b := append(make([]byte, 0, 32), `{"id":"`...)
	b = append(b, id...)
	b = append(b, `"}`...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
