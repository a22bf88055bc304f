package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// Media downloads, as Meta serves them: GET /{version}/{media-id} answers
// the file's URL, size, type and digest; GET of that URL with the token
// answers the bytes. The simulator keeps the bytes of the media it issued
// (uploads, and the guests' media it posts), up to maxHeldMedia bytes in
// all, the oldest forgotten first.

// maxHeldMedia bounds the bytes of media the simulator keeps.
const maxHeldMedia = 256 << 20

// mediaURLTTL is how long a media URL works (Meta: 5 minutes).
const mediaURLTTL = 5 * time.Minute

// attachmentsPath is the path of media URLs (Meta's lookaside host uses
// the same).
const attachmentsPath = "/whatsapp_business/attachments/"

// heldMedia is one file the simulator serves.
type heldMedia struct {
	data    []byte
	mime    string
	phoneID string
	sum     [sha256.Size]byte
}

// mediaFiles holds the media bytes; its zero value is ready.
type mediaFiles struct {
	mu    sync.Mutex
	byID  map[string]*heldMedia
	order []string // ids, oldest first
	total int64

	// outageUntil (unix ns) makes both media GETs answer 500.
	outageUntil atomic.Int64
	// urls and downloads count the answered requests, outage the ones
	// answered 500 for an outage.
	urls, downloads, outage atomic.Int64
}

// hold keeps data as media id of phoneID.
func (m *mediaFiles) hold(id, phoneID, mt string, data []byte) {
	h := &heldMedia{data: data, mime: mt, phoneID: phoneID, sum: sha256.Sum256(data)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = map[string]*heldMedia{}
	}
	m.byID[id] = h
	m.order = append(m.order, id)
	m.total += int64(len(data))
	for m.total > maxHeldMedia && len(m.order) > 1 {
		old := m.order[0]
		m.order = m.order[1:]
		if o := m.byID[old]; o != nil {
			m.total -= int64(len(o.data))
			delete(m.byID, old)
		}
	}
}

func (m *mediaFiles) get(id string) *heldMedia {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id]
}

func (m *mediaFiles) down(now time.Time) bool { return now.UnixNano() < m.outageUntil.Load() }

// SetMediaOutage makes media downloads (both GETs) answer HTTP 500 until
// the given time; the zero time ends it. Uploads and sends go on.
func (s *Server) SetMediaOutage(until time.Time) {
	if until.IsZero() {
		s.files.outageUntil.Store(0)
		return
	}
	s.files.outageUntil.Store(until.UnixNano())
}

// MediaDownloadStats are the media requests answered: URLs given, files
// served, and requests answered 500 for an outage.
type MediaDownloadStats struct {
	URLs      int64 `json:"urls"`
	Downloads int64 `json:"downloads"`
	Outage    int64 `json:"outage"`
}

// MediaDownloads returns the media requests answered so far.
func (s *Server) MediaDownloads() MediaDownloadStats {
	return MediaDownloadStats{URLs: s.files.urls.Load(), Downloads: s.files.downloads.Load(), Outage: s.files.outage.Load()}
}

// errUnknown is Meta's answer when something failed on its side.
var errUnknown = apiError{status: 500, typ: "OAuthException", code: 1,
	message: "An unknown error has occurred.", details: "An unknown error has occurred."}

// urlMAC signs a media URL: the id and its expiry.
func (s *Server) urlMAC(id string, exp int64) string {
	h := hmac.New(sha256.New, s.idPrefix[:])
	h.Write([]byte("media-url\n" + id + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// handleMediaURL serves GET /{version}/{media-id}[?phone_number_id=].
func (s *Server) handleMediaURL(ctx *fasthttp.RequestCtx, id []byte) {
	now := time.Now()
	if s.files.down(now) || s.inOutage(now.UnixNano()) {
		s.files.outage.Add(1)
		s.answerError(ctx, &errUnknown)
		return
	}
	if !s.authorized(ctx) {
		s.answerError(ctx, &errBadToken)
		return
	}
	h := s.files.get(string(id))
	pn := ctx.QueryArgs().Peek("phone_number_id")
	if h == nil || len(pn) > 0 && string(pn) != h.phoneID {
		e := errUnknownObject(id)
		e.message = "Unsupported get" + e.message[len("Unsupported post"):]
		e.details = e.message
		s.answerError(ctx, &e)
		return
	}
	s.files.urls.Add(1)
	exp := now.Add(mediaURLTTL).Unix()
	u := "http://" + string(ctx.Host()) + attachmentsPath + "?mid=" + string(id) + "&ext=" + strconv.FormatInt(exp, 10) +
		"&hash=" + s.urlMAC(string(id), exp)
	b := append(make([]byte, 0, 256), `{"messaging_product":"whatsapp","url":`...)
	b = message.AppendJSONString(b, u)
	b = append(b, `,"mime_type":`...)
	b = message.AppendJSONString(b, h.mime)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, h.sum[:])
	b = append(b, `","file_size":`...)
	b = strconv.AppendInt(b, int64(len(h.data)), 10)
	b = append(b, `,"id":"`...)
	b = append(b, id...)
	b = append(b, `"}`...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// handleAttachment serves a media URL: the bytes, to the token's bearer,
// until the URL expires.
func (s *Server) handleAttachment(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	switch {
	case s.files.down(now) || s.inOutage(now.UnixNano()):
		s.files.outage.Add(1)
		ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
		return
	case !ctx.IsGet():
		ctx.Error("Method Not Allowed", fasthttp.StatusMethodNotAllowed)
		return
	case !s.authorized(ctx):
		ctx.Error("Unauthorized", fasthttp.StatusUnauthorized)
		return
	}
	q := ctx.QueryArgs()
	id := string(q.Peek("mid"))
	exp, err := strconv.ParseInt(string(q.Peek("ext")), 10, 64)
	h := s.files.get(id)
	if err != nil || h == nil || now.Unix() > exp || !hmac.Equal([]byte(s.urlMAC(id, exp)), q.Peek("hash")) {
		ctx.Error("Not Found", fasthttp.StatusNotFound)
		return
	}
	s.files.downloads.Add(1)
	ctx.SetContentType(h.mime)
	ctx.SetBody(h.data)
}

// InboundMessage is a guest's message for Server.InboundMessage.
type InboundMessage struct {
	// Type is text, image, document, audio, video, sticker or contacts.
	Type string
	// Text is a text's body, or a media message's caption.
	Text string
	// MIME and Data are a media message's file; without Data a small file
	// of the type is made, and without MIME the type's usual one is given.
	// Any size goes (Meta would refuse some): tests check the gateway's
	// own limits with it.
	MIME string
	Data []byte
	// Filename is a document's name.
	Filename string
	// Contacts is a contacts message's cards: Meta's contacts array.
	Contacts json.RawMessage
	// UserID is the guest's business-scoped user id, sent beside the number
	// (user_id, from_user_id) as Meta does since April 2026. A from that is
	// a BSUID itself is a guest whose number Meta withholds: the message
	// then has no wa_id and no from.
	UserID string
}

// maxInboundMedia bounds a posted guest file.
const maxInboundMedia = 128 << 20

// ErrBadInboundMedia is InboundMessage's refusal of a message it cannot post.
var ErrBadInboundMedia = errors.New("sim: inbound message: type must be text, image, document, audio, video, sticker or contacts, " +
	"with a file of at most 128 MiB, a caption only on image, video and document, a filename only on document, contacts a JSON array")

// InboundMessage makes the simulator post a guest's message, as Meta does
// when a guest writes: text, a media file (which it then serves for
// download, as Meta does) or contact cards. It returns the message's wamid
// and, for media, the media id the webhook names.
func (s *Server) InboundMessage(phoneNumberID, from, name string, m InboundMessage) (string, string, error) {
	n := s.numbers[phoneNumberID]
	switch {
	case n == nil:
		return "", "", ErrUnknownNumber
	case s.cfg.WebhookURL == "":
		return "", "", ErrNoWebhook
	case from == "" || !validTo(from) && !message.ValidBSUID(from):
		return "", "", ErrBadInbound
	case m.UserID != "" && !message.ValidBSUID(m.UserID):
		return "", "", ErrBadInbound
	}
	withheld := message.ValidBSUID(from)
	if withheld {
		m.UserID = from
	}
	if m.Type == "" {
		m.Type = "text"
	}
	if m.Type == "text" {
		if m.Text == "" {
			return "", "", ErrBadInbound
		}
	} else if !validInbound(&m) {
		return "", "", ErrBadInboundMedia
	}
	if from[0] == '+' {
		from = from[1:]
	}
	wamid := s.newWAMID()
	n.rememberInbound(wamid)
	mediaID := ""
	p := newPost(n)
	p.inbound = true
	b := appendEnvelopeHead(p.body[:0], n)
	b = append(b, `"contacts":[{"profile":{"name":`...)
	b = message.AppendJSONString(b, name)
	b = append(b, '}')
	if !withheld {
		b = append(b, `,"wa_id":"`...)
		b = append(b, from...)
		b = append(b, '"')
	}
	if m.UserID != "" {
		b = append(b, `,"user_id":"`...)
		b = append(b, m.UserID...)
		b = append(b, '"')
	}
	b = append(b, `}],"messages":[{`...)
	if !withheld {
		b = append(b, `"from":"`...)
		b = append(b, from...)
		b = append(b, `",`...)
	}
	if m.UserID != "" {
		b = append(b, `"from_user_id":"`...)
		b = append(b, m.UserID...)
		b = append(b, `",`...)
	}
	b = append(b, `"id":"`...)
	b = append(b, wamid...)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `","type":"`...)
	b = append(b, m.Type...)
	b = append(b, `","`...)
	b = append(b, m.Type...)
	b = append(b, `":`...)
	switch m.Type {
	case "text":
		b = append(b, `{"body":`...)
		b = message.AppendJSONString(b, m.Text)
		b = append(b, '}')
	case "contacts":
		b = append(b, m.Contacts...)
	default:
		if len(m.Data) == 0 {
			m.Data = sampleMedia(m.Type)
		}
		if m.MIME == "" {
			m.MIME = defaultMIME(m.Type)
		}
		mediaID = s.newMediaID(mediaTypeIndex(m.Type, m.MIME))
		s.files.hold(mediaID, phoneNumberID, m.MIME, m.Data)
		sum := sha256.Sum256(m.Data)
		b = append(b, `{"mime_type":`...)
		b = message.AppendJSONString(b, m.MIME)
		// Webhooks carry the digest in base64, the media URL answer in hex.
		b = append(b, `,"sha256":"`...)
		b = base64.StdEncoding.AppendEncode(b, sum[:])
		b = append(b, `","id":"`...)
		b = append(b, mediaID...)
		b = append(b, '"')
		if m.Text != "" {
			b = append(b, `,"caption":`...)
			b = message.AppendJSONString(b, m.Text)
		}
		if m.Filename != "" {
			b = append(b, `,"filename":`...)
			b = message.AppendJSONString(b, m.Filename)
		}
		if m.Type == "sticker" {
			b = append(b, `,"animated":false`...)
		}
		b = append(b, '}')
	}
	b = append(b, `}]`...)
	p.body = append(b, envelopeTail...)
	s.push(item{due: time.Now().UnixNano(), post: p})
	return wamid, mediaID, nil
}

// validInbound checks a guest's media or contacts message.
func validInbound(m *InboundMessage) bool {
	switch m.Type {
	case "contacts":
		var cards []json.RawMessage
		return m.Text == "" && m.Filename == "" && len(m.Data) == 0 && json.Unmarshal(m.Contacts, &cards) == nil && len(cards) > 0
	case "image", "document", "audio", "video", "sticker":
	default:
		return false
	}
	if m.MIME != "" {
		if _, _, err := mime.ParseMediaType(m.MIME); err != nil {
			return false
		}
	}
	return len(m.Data) <= maxInboundMedia && len(m.Contacts) == 0 &&
		(m.Text == "" || m.Type == "image" || m.Type == "video" || m.Type == "document") &&
		(m.Filename == "" || m.Type == "document")
}

// defaultMIME is the usual type of a guest's file of media type t.
func defaultMIME(t string) string {
	switch t {
	case "image":
		return "image/jpeg"
	case "audio":
		return "audio/ogg; codecs=opus"
	case "video":
		return "video/mp4"
	case "sticker":
		return "image/webp"
	}
	return "application/pdf"
}

// mediaTypeIndex is the index in metaMediaTypes a media id of type mt
// carries: mt's own, else the usual one of media type t.
func mediaTypeIndex(t, mt string) int {
	base, _, _ := mime.ParseMediaType(mt)
	def, _, _ := mime.ParseMediaType(defaultMIME(t))
	for _, want := range []string{base, def} {
		for i, x := range metaMediaTypes {
			if x == want {
				return i
			}
		}
	}
	return 0
}

// sampleMedia is a small file of media type t, of the format its usual
// MIME type names, for a posted message that brought none.
func sampleMedia(t string) []byte {
	switch t {
	case "image":
		// A 1×1 JPEG's markers: enough for a type check by the bytes.
		return []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9")
	case "audio":
		// An Ogg page holding an OpusHead packet.
		page := []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13")
		return append(page, "OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"...)
	case "video":
		return []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free")
	case "sticker":
		return []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")
	}
	return []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
}
