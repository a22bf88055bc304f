package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/provider"
)

// Defaults of FetchConfig.
const (
	// DefaultMediaRate is Meta's limit of media requests per phone number
	// and second.
	DefaultMediaRate = 25
	// DefaultFetchTimeout bounds one download, both of its requests: a
	// 100 MB document at under 1 MB/s takes that long.
	DefaultFetchTimeout = 3 * time.Minute
)

// lookasideHost is where Meta's media URLs point when the Graph API is
// Meta's own.
const lookasideHost = "lookaside.fbsbx.com"

// FetchConfig configures a MediaFetcher beyond its account's Config.
type FetchConfig struct {
	// Hosts are the hosts ("host" or "host:port") a media URL that Meta
	// answers may point to. Default: BaseURL's host, and Meta's
	// lookaside.fbsbx.com when BaseURL is graph.facebook.com.
	Hosts []string
	// Rate is each phone number's media requests per second, both
	// requests of a download counted (25, Meta's limit).
	Rate float64
	// Timeout bounds one download, both requests and the reading of the
	// bytes (3 min); a sooner deadline of the caller's context wins.
	Timeout time.Duration
	// Dial connects to Meta. Nil: a netguard.Guard, which refuses internal
	// addresses, unless BaseURL is itself loopback (tests and `wagate dev`
	// with the simulator), which is dialled as it is.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// MediaFetcher downloads the media guests send to an account's numbers:
// GET /{version}/{media-id}?phone_number_id=… with the account's token
// answers a short-lived URL, which is fetched with the same token, only
// from Meta's hosts, no faster per number than Meta allows. It is safe for
// concurrent use.
type MediaFetcher struct {
	base    string // BaseURL/version/
	scheme  string // BaseURL's scheme
	auth    string
	hc      *http.Client
	hosts   map[string]bool
	limits  map[string]*rate.Limiter // by phone number id
	timeout time.Duration
	// now and sleep are the limiter's clock (a test's fake one).
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// NewMediaFetcher returns the fetcher of cfg's account.
func NewMediaFetcher(cfg Config, fc FetchConfig) (*MediaFetcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fc.Rate == 0 {
		fc.Rate = DefaultMediaRate
	}
	if fc.Timeout == 0 {
		fc.Timeout = DefaultFetchTimeout
	}
	if fc.Rate < 0 || fc.Timeout < 0 {
		return nil, errors.New("meta media fetcher: negative rate or timeout")
	}
	bu, _ := url.Parse(cfg.BaseURL) // checked by Validate
	f := &MediaFetcher{
		base:    strings.TrimSuffix(cfg.BaseURL, "/") + "/" + cfg.Version + "/",
		scheme:  bu.Scheme,
		auth:    "Bearer " + cfg.AccessToken,
		hosts:   map[string]bool{},
		limits:  make(map[string]*rate.Limiter, len(cfg.PhoneNumberIDs)),
		timeout: fc.Timeout,
		now:     time.Now,
		sleep:   ctxsleep.Sleep,
	}
	hosts := fc.Hosts
	if len(hosts) == 0 {
		hosts = []string{bu.Host}
		if strings.EqualFold(bu.Hostname(), "graph.facebook.com") {
			hosts = append(hosts, lookasideHost)
		}
	}
	for _, h := range hosts {
		f.hosts[hostPort(h, bu.Scheme)] = true
	}
	for _, id := range cfg.PhoneNumberIDs {
		// A burst of one: two requests are never closer than 1/Rate, so no
		// second holds more than Rate of them.
		f.limits[id] = rate.NewLimiter(rate.Limit(fc.Rate), 1)
	}
	dial := fc.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		dial = d.DialContext
		if !loopbackHost(bu.Hostname()) {
			g, err := netguard.New(nil, 10*time.Second)
			if err != nil {
				return nil, fmt.Errorf("meta media fetcher: %w", err)
			}
			dial = g.DialContext
		}
	}
	f.hc = &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the guard must see the
			// address it connects to.
			Proxy:                 nil,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			// Go drops the token on a redirect to another host; the host
			// must be Meta's all the same.
			return f.allowed(req.URL)
		},
	}
	return f, nil
}

// hostPort writes h with its port, the scheme's default when it has none,
// in lower case.
func hostPort(h, scheme string) string {
	h = strings.ToLower(h)
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), port)
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// errForeignHost says a media URL Meta answered is not on Meta's hosts.
var errForeignHost = errors.New("media url is not on one of Meta's hosts")

// allowed checks a media URL: https (or the Graph API's own scheme), no
// credentials, on one of the allowed hosts.
func (f *MediaFetcher) allowed(u *url.URL) error {
	if u.Scheme != "https" && u.Scheme != f.scheme || u.User != nil || u.Host == "" {
		return errForeignHost
	}
	if !f.hosts[hostPort(u.Host, u.Scheme)] {
		return errForeignHost
	}
	return nil
}

// wait takes a request's turn in lim by the fetcher's clock.
func (f *MediaFetcher) wait(ctx context.Context, lim *rate.Limiter) error {
	r := lim.ReserveN(f.now(), 1)
	d := r.DelayFrom(f.now())
	if d <= 0 {
		return nil
	}
	if err := f.sleep(ctx, d); err != nil {
		r.CancelAt(f.now())
		return err
	}
	return nil
}

// maxInfoBody bounds the answer of the media URL request.
const maxInfoBody = 64 << 10

// mediaInfo is the answer of GET /{media-id}.
type mediaInfo struct {
	url, mime, sha256 string
	size              int64 // -1 when not given
}

// FetchMedia downloads media id, which a guest sent to phoneNumberID, and
// returns its bytes to read (and close) with what Meta states of them. It
// refuses, wrapping provider.ErrMediaTooLarge, media Meta states or serves
// as larger than maxBytes. An error that is a *provider.Error of class
// ClassPermanent will not go away by trying again (Meta does not know the
// media, or its URL is not Meta's); any other is worth a retry. Errors
// never hold the token.
func (f *MediaFetcher) FetchMedia(ctx context.Context, phoneNumberID, mediaID string, maxBytes int64) (*provider.MediaDownload, error) {
	lim, ok := f.limits[phoneNumberID]
	if !ok {
		return nil, &provider.Error{Class: provider.ClassPermanent, Title: "phone number id " + phoneNumberID + " is not this account's"}
	}
	if !pathSafe(mediaID) {
		return nil, &provider.Error{Class: provider.ClassPermanent, Title: "media id is not one of Meta's"}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	dl, err := f.fetch(ctx, lim, phoneNumberID, mediaID, maxBytes)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("meta media %s: %w", mediaID, err)
	}
	dl.Body = &cancelBody{ReadCloser: dl.Body, cancel: cancel}
	return dl, nil
}

func (f *MediaFetcher) fetch(ctx context.Context, lim *rate.Limiter, phoneNumberID, mediaID string, maxBytes int64) (*provider.MediaDownload, error) {
	if err := f.wait(ctx, lim); err != nil {
		return nil, err
	}
	resp, err := f.get(ctx, f.base+mediaID+"?phone_number_id="+url.QueryEscape(phoneNumberID))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoBody))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read media url: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		pe := parseError(resp.StatusCode, body, []byte(resp.Header.Get("Retry-After")), time.Now())
		pe.Title = "media url: " + pe.Title
		return nil, pe
	}
	info, ok := parseMediaInfo(body)
	if !ok {
		return nil, &provider.Error{Class: provider.ClassRetry, HTTPStatus: resp.StatusCode, Title: "media url: the answer holds no url"}
	}
	if info.size > maxBytes {
		return nil, fmt.Errorf("stated size %d bytes is, over %d: %w", info.size, maxBytes, provider.ErrMediaTooLarge)
	}
	u, err := url.Parse(info.url)
	if err == nil {
		err = f.allowed(u)
	}
	if err != nil {
		return nil, &provider.Error{Class: provider.ClassPermanent, Title: errForeignHost.Error()}
	}
	if err := f.wait(ctx, lim); err != nil {
		return nil, err
	}
	resp, err = f.get(ctx, u.String())
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxInfoBody))
		resp.Body.Close()
		// The URL lives 5 minutes: whatever the file's host answers, the
		// next attempt asks for a fresh one.
		pe := parseError(resp.StatusCode, b, []byte(resp.Header.Get("Retry-After")), time.Now())
		pe.Class = provider.ClassRetry
		pe.Title = "media download: " + pe.Title
		return nil, pe
	}
	if resp.ContentLength > maxBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("served size %d bytes is, over %d: %w", resp.ContentLength, maxBytes, provider.ErrMediaTooLarge)
	}
	return &provider.MediaDownload{Body: resp.Body, MIME: info.mime, Size: info.size, SHA256: info.sha256}, nil
}

// get sends an authorized GET. Its errors leave out the URL, which a
// media URL's query makes long and useless in a log.
func (f *MediaFetcher) get(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, errors.New("bad request url")
	}
	req.Header.Set("Authorization", f.auth)
	req.Header.Set("User-Agent", "wagate")
	resp, err := f.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET: %w", err)
	}
	return resp, nil
}

// cancelBody ends a download's context once its bytes are read.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body and releases the download's timer.
func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// parseMediaInfo reads the answer of GET /{media-id}: url (required),
// mime_type, sha256 and file_size (a number, or digits in a string).
func parseMediaInfo(body []byte) (mediaInfo, bool) {
	s := scannerPool.Get().(*scanner)
	defer scannerPool.Put(s)
	s.reset(body)
	info := mediaInfo{size: -1}
	var k []byte
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			switch string(k) {
			case "url":
				info.url = string(s.str())
			case "mime_type":
				info.mime = string(s.str())
			case "sha256":
				info.sha256 = string(s.str())
			case "file_size":
				if s.null() {
					continue
				}
				if n := s.intOrString(); n >= 0 {
					info.size = n
				}
			default:
				s.skip()
			}
		}
	}
	s.end()
	s.b = nil
	return info, s.err == nil && info.url != ""
}
