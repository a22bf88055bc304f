// Package mediakit is what the API and the inbound role share of media:
// the media store's settings and WhatsApp's size limits, the signer of
// media URLs, media ids, the shape guests' attachments take in the
// history and in webhooks, and the detection of a file's format from its
// bytes (Detect).
package mediakit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wagate/wagate/store/media"
)

// Config configures media: where files are kept, how their URLs are
// signed and how large each media type may be.
type Config struct {
	// Files keeps uploaded and downloaded bytes. Nil turns uploads and
	// downloads off (they answer 503); sends by link work without it.
	Files *media.Store
	// SigningKey keys the HMAC-SHA256 of media URLs, at least 32 bytes.
	// Every gateway behind one public address needs the same key.
	SigningKey []byte
	// PublicBaseURL is where clients and providers reach this API: scheme,
	// host and an optional path prefix ("https://wa.example.com"). Media
	// URLs start with it.
	PublicBaseURL string
	// URLTTL is how long a media URL works (24 h).
	URLTTL time.Duration
	// Retention is how long an uploaded media id can be sent and
	// downloaded (90 days: longer than a send may be scheduled ahead).
	Retention time.Duration
	// Limits caps each media type's size; zero fields take WhatsApp's.
	Limits Limits
	// Now is the clock of URL expiry; nil is time.Now.
	Now func() time.Time
}

// Limits are the largest files, in bytes, of each media type.
type Limits struct {
	// Image (JPEG, PNG): 5 MiB.
	Image int64
	// Document (PDF, Office, text): 100 MiB.
	Document int64
	// Audio (AAC, AMR, MP3, M4A, Ogg Opus) and Video (MP4, 3GP): 16 MiB.
	Audio, Video int64
	// Sticker (WebP): 100 KiB still, AnimatedSticker 500 KiB.
	Sticker, AnimatedSticker int64
}

// whatsAppLimits are WhatsApp's limits (PROVIDERS.md).
func whatsAppLimits() Limits {
	return Limits{Image: 5 << 20, Document: 100 << 20, Audio: 16 << 20, Video: 16 << 20,
		Sticker: 100 << 10, AnimatedSticker: 500 << 10}
}

func (l *Limits) setDefaults() {
	d := whatsAppLimits()
	for _, f := range []struct{ v, d *int64 }{{&l.Image, &d.Image}, {&l.Document, &d.Document},
		{&l.Audio, &d.Audio}, {&l.Video, &d.Video},
		{&l.Sticker, &d.Sticker}, {&l.AnimatedSticker, &d.AnimatedSticker}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
}

// Of returns the limit of media type kind; 0 for what is not a media
// type.
func (l *Limits) Of(kind string, animated bool) int64 {
	switch kind {
	case "image":
		return l.Image
	case "document":
		return l.Document
	case "audio":
		return l.Audio
	case "video":
		return l.Video
	case "sticker":
		if animated {
			return l.AnimatedSticker
		}
		return l.Sticker
	}
	return 0
}

// Media is a gateway's media store and URL signer, its settings
// defaulted (New). The zero value has no store: uploads and downloads
// are off.
type Media struct {
	// Files keeps the bytes; nil when media are not configured.
	Files *media.Store
	// URLTTL is how long a URL works; Retention how long a media id is
	// kept.
	URLTTL, Retention time.Duration
	// Limits are the media types' largest sizes.
	Limits Limits
	// Now is the clock of URL expiry.
	Now  func() time.Time
	key  []byte
	base string // PublicBaseURL without a trailing slash
}

// New checks c and returns the media store and URL signer it describes,
// its zero fields defaulted.
func New(c Config) (Media, error) {
	m := Media{Files: c.Files, key: c.SigningKey, base: strings.TrimRight(c.PublicBaseURL, "/"),
		URLTTL: c.URLTTL, Retention: c.Retention, Limits: c.Limits, Now: c.Now}
	if m.URLTTL == 0 {
		m.URLTTL = 24 * time.Hour
	}
	if m.Retention == 0 {
		m.Retention = 90 * 24 * time.Hour
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	m.Limits.setDefaults()
	if m.Files != nil {
		if len(m.key) < 32 {
			return Media{}, errors.New("mediakit: the media signing key must be at least 32 bytes")
		}
		u, err := url.Parse(m.base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return Media{}, fmt.Errorf("mediakit: media public base url %q is not an http(s) root", c.PublicBaseURL)
		}
		if m.URLTTL < time.Minute || m.Retention < time.Hour {
			return Media{}, errors.New("mediakit: media url ttl under a minute or retention under an hour")
		}
	}
	return m, nil
}

// IDPrefix starts every media id (an upload's or a guest's), telling
// it apart from a provider's own media ids.
const IDPrefix = "med_"

// idEncoding writes 128 random bits as 26 characters of Crockford's
// base32 (as message ids), lower case.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns "med_" and 128 random bits: an id no tenant can guess.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return IDPrefix + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the shape NewID gives, so that what a
// caller types never reaches Redis as a key unchecked.
func ValidID(id string) bool {
	if len(id) != len(IDPrefix)+26 || !strings.HasPrefix(id, IDPrefix) {
		return false
	}
	for i := len(IDPrefix); i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return false
		}
	}
	return true
}

// Signature is the hex HMAC-SHA256 of a media URL: the id and its
// expiry.
func (m *Media) Signature(id string, expires int64) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte("wagate-media\n"))
	h.Write([]byte(id))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, expires, 10))
	return hex.AppendEncode(nil, h.Sum(nil))
}

// Path is where the API serves media by signed URL (ingest's
// GET /api/v1/whatsapp/media/{id}).
const Path = "/api/v1/whatsapp/media/"

// URL returns the signed URL of media id, valid until expires (Unix s).
func (m *Media) URL(id string, expires int64) string {
	return m.base + Path + id + "?expires=" + strconv.FormatInt(expires, 10) +
		"&signature=" + string(m.Signature(id, expires))
}

// CleanFilename keeps the last path element of a file's name (an
// upload's, a guest's document's), without control characters, at most
// 240 bytes.
func CleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 240 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "." || name == ".." {
		return ""
	}
	return name
}
