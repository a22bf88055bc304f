package meta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// WagateMediaPrefix starts the media ids wagate gives uploads ("med_…").
// Meta's media ids are digits, so the two never meet in a content's "id".
const WagateMediaPrefix = "med_"

// Sentinel errors of media messages.
var (
	// ErrMediaNotFound is what a MediaSource answers for an id it does not
	// hold (never uploaded, or past its retention).
	ErrMediaNotFound = errors.New("meta: media not found")
	// ErrNoMediaID says Meta answered an upload with success but no id.
	ErrNoMediaID = errors.New("meta: upload answer without a media id")
)

// Media is what a MediaSource knows of one of wagate's media ids.
type Media struct {
	// SHA256 is the hex digest of the bytes: uploads of the same bytes
	// share Meta's id.
	SHA256 string
	// MIME is the type detected from the bytes, uploaded as Meta's "type".
	MIME string
	Size int64
	// Filename is the uploaded file's name.
	Filename string
	// Open opens the bytes, Size of them; the caller closes them.
	Open func() (io.ReadCloser, error)
}

// MediaSource gives a Client the files behind wagate's media ids, so that
// it uploads each to Meta once and sends Meta's media id after: the bytes
// and their type, and a cache of Meta's ids by (account, SHA-256).
type MediaSource interface {
	// Media returns media id, or an error wrapping ErrMediaNotFound.
	Media(ctx context.Context, id string) (Media, error)
	// ProviderMediaID returns account's Meta id of the bytes sha256, ""
	// when it has none (never uploaded, or past Meta's 30 days).
	ProviderMediaID(ctx context.Context, account, sha256 string) (string, error)
	// SetProviderMediaID remembers it; "" forgets it.
	SetProviderMediaID(ctx context.Context, account, sha256, mediaID string) error
}

func isMediaType(t message.Type) bool {
	switch t {
	case message.TypeImage, message.TypeDocument, message.TypeAudio, message.TypeVideo, message.TypeSticker:
		return true
	}
	return false
}

// span is where a value sits in a content, [start, end).
type span struct{ start, end int }

// wagateMediaID returns the top-level "id" of a media object when it is
// one of wagate's media ids, and where its JSON string sits.
func wagateMediaID(content []byte) (string, span, bool) {
	s := scannerPool.Get().(*scanner)
	defer scannerPool.Put(s)
	s.reset(content)
	var id string
	var at span
	found := false
	var k []byte
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			if string(k) != "id" || found {
				s.skip()
				continue
			}
			found = true
			s.peek()
			at.start = s.i
			v := s.str()
			at.end = s.i
			if bytes.HasPrefix(v, []byte(WagateMediaPrefix)) {
				id = string(v)
			}
		}
	}
	s.end()
	s.b = nil
	return id, at, s.err == nil && id != ""
}

// templateMediaID returns the media id of a template's header parameter
// ({"type":"image","image":{"id":"med_…"}}) when it is one of wagate's,
// and where its JSON string sits. Every value a caller gave is a JSON
// string in content, its quotes escaped, so the unescaped sequence can
// only be the header object's own "id" key.
func templateMediaID(content []byte) (string, span, bool) {
	i := bytes.Index(content, templateMediaKey)
	if i < 0 {
		return "", span{}, false
	}
	start := i + len(templateMediaKey) - len(WagateMediaPrefix) - 1
	end := bytes.IndexByte(content[start+1:], '"')
	if end < 0 {
		return "", span{}, false
	}
	end += start + 2
	return string(content[start+1 : end-1]), span{start, end}, true
}

var templateMediaKey = []byte(`"id":"` + WagateMediaPrefix)

// withMediaID returns content with the string at at replaced by id.
func withMediaID(content []byte, at span, id string) []byte {
	out := make([]byte, 0, len(content)-(at.end-at.start)+len(id)+2)
	out = append(out, content[:at.start]...)
	out = append(out, '"')
	out = append(out, id...)
	out = append(out, '"')
	return append(out, content[at.end:]...)
}

// staleMedia reports whether Meta refused a send for its media id: an id
// from the cache that Meta no longer has (deleted, or expired early).
func staleMedia(err error) bool {
	var pe *provider.Error
	if !errors.As(err, &pe) || (pe.Code != 100 && pe.Code != 131053) {
		return false
	}
	return strings.Contains(strings.ToLower(pe.Title+" "+pe.Details), "media")
}

// sendMedia sends m, whose content names wagate media id at at, with
// Meta's id of the same bytes from m's number: from the cache, else
// uploaded now. If Meta refuses a cached id, the bytes are uploaded again
// and the message sent once more (the refused send delivered nothing).
func (c *Client) sendMedia(ctx context.Context, m *message.Message, id string, at span, uri []byte, deadline time.Time) (provider.Result, error) {
	if c.media == nil {
		return provider.Result{}, &provider.Error{Class: provider.ClassPermanent,
			Title: "media " + id + " is a wagate upload, and this Meta client has no media source to upload it from"}
	}
	med, err := c.media.Media(ctx, id)
	if errors.Is(err, ErrMediaNotFound) {
		return provider.Result{}, &provider.Error{Class: provider.ClassPermanent, Title: "media " + id + " is not known (never uploaded, or past its retention)"}
	}
	if err != nil {
		return provider.Result{}, fmt.Errorf("meta send to %s: media %s: %w", m.Sender, id, err)
	}
	phoneID := c.phoneIDs[m.Sender]
	// Meta lets only the number that uploaded media send it.
	account := c.name + "/" + phoneID
	metaID, cached, err := c.providerMediaID(ctx, account, m.Sender, &med, false, deadline)
	if err != nil {
		return provider.Result{}, err
	}
	mm := *m
	mm.Content = withMediaID(m.Content, at, metaID)
	res, err := c.post(&mm, uri, deadline)
	if err == nil || !cached || !staleMedia(err) {
		return res, err
	}
	if metaID, _, err = c.providerMediaID(ctx, account, m.Sender, &med, true, deadline); err != nil {
		return provider.Result{}, err
	}
	mm.Content = withMediaID(m.Content, at, metaID)
	return c.post(&mm, uri, deadline)
}

// providerMediaID returns account's Meta id of med's bytes and whether it
// came from the cache; it uploads them (once, however many sends ask at
// the same time) when the cache has none or refresh is set.
func (c *Client) providerMediaID(ctx context.Context, account, sender string, med *Media, refresh bool, deadline time.Time) (string, bool, error) {
	if refresh {
		// Forget the refused id first, so that a failed upload does not
		// leave it for the next message.
		_ = c.media.SetProviderMediaID(ctx, account, med.SHA256, "")
	} else {
		id, err := c.media.ProviderMediaID(ctx, account, med.SHA256)
		if err != nil {
			return "", false, fmt.Errorf("meta send to %s: media cache: %w", sender, err)
		}
		if id != "" {
			return id, true, nil
		}
	}
	id, err := c.uploads.do(ctx, account+"\x00"+med.SHA256, func() (string, error) {
		// A flight that ended between the cache read above and this one
		// has cached its id: look again rather than upload twice.
		if !refresh {
			if id, err := c.media.ProviderMediaID(ctx, account, med.SHA256); err == nil && id != "" {
				return id, nil
			}
		}
		id, err := c.upload(sender, med, deadline)
		if err != nil {
			return "", err
		}
		// The upload stands even when it cannot be remembered: this send
		// goes on, and the next one uploads again.
		_ = c.media.SetProviderMediaID(context.WithoutCancel(ctx), account, med.SHA256, id)
		return id, nil
	})
	return id, false, err
}

// upload posts med's bytes to sender's number's media endpoint and returns
// Meta's id: POST /{version}/{phone-number-id}/media, multipart with
// messaging_product, type and file. A refusal is a *provider.Error whose
// title says it was the upload.
func (c *Client) upload(sender string, med *Media, deadline time.Time) (string, error) {
	f, err := med.Open()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrMediaNotFound) {
			return "", &provider.Error{Class: provider.ClassPermanent, Title: "media upload: the file is gone from the media store"}
		}
		return "", fmt.Errorf("meta media upload for %s: %w", sender, err)
	}
	defer f.Close()
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := "wagate-" + hex.EncodeToString(rnd[:])
	mime := headerSafe(med.MIME)
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n" + mime + "\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + quotedFilename(med.Filename) + "\"\r\n" +
		"Content-Type: " + mime + "\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(c.mediaURIs[sender])
	req.Header.SetBytesKV(headerAuthorization, c.auth)
	req.Header.SetContentType("multipart/form-data; boundary=" + boundary)
	// The file streams from disk; fasthttp fails the request if it yields
	// other than Size bytes.
	req.SetBodyStream(io.MultiReader(strings.NewReader(head), f, strings.NewReader(tail)), len(head)+int(med.Size)+len(tail))
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return "", fmt.Errorf("meta media upload for %s: %w", sender, err)
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		id, ok := parseUploadID(resp.Body())
		if !ok {
			return "", fmt.Errorf("meta media upload for %s: %w", sender, ErrNoMediaID)
		}
		return id, nil
	}
	pe := parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
	pe.Title = "media upload: " + pe.Title
	return "", pe
}

// parseUploadID reads the id of an upload answer, {"id":"…"}; an id that
// would need escaping in a send body is not Meta's.
func parseUploadID(body []byte) (string, bool) {
	s := scannerPool.Get().(*scanner)
	defer scannerPool.Put(s)
	s.reset(body)
	var id string
	var k []byte
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			if string(k) == "id" && id == "" {
				id = string(s.str())
			} else {
				s.skip()
			}
		}
	}
	s.end()
	s.b = nil
	return id, s.err == nil && pathSafe(id)
}

// headerSafe drops what a header value cannot carry.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// quotedFilename escapes a file name for a quoted multipart parameter, as
// mime/multipart does.
func quotedFilename(name string) string {
	name = headerSafe(name)
	if name == "" {
		return "file"
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)
}

// flights runs one upload per key at a time: a campaign's first sends of
// one image wait for one upload instead of making one each. Its zero value
// is ready.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one upload under way; done closes when id and err are set.
type flight struct {
	done chan struct{}
	id   string
	err  error
}

// do runs fn for key, or waits for the run already under way (until ctx
// ends) and shares its answer.
func (f *flights) do(ctx context.Context, key string, fn func() (string, error)) (string, error) {
	f.mu.Lock()
	if fl, ok := f.m[key]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.id, fl.err
		case <-ctx.Done():
			return "", fmt.Errorf("meta media upload: %w", ctx.Err())
		}
	}
	if f.m == nil {
		f.m = make(map[string]*flight)
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	f.mu.Unlock()
	fl.id, fl.err = fn()
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(fl.done)
	return fl.id, fl.err
}
