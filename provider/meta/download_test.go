package meta_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
)

const fetchToken = "fetch-test-token"

// startInboundSim runs the simulator with webhooks posted to a receiver
// that takes them and drops them: the tests only need its media.
func startInboundSim(t *testing.T) *sim.Server {
	t.Helper()
	hooks := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hooks.Close)
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", AccessToken: fetchToken, WebhookURL: hooks.URL, Numbers: []sim.Number{
		{PhoneNumberID: phone1, DisplayPhoneNumber: "15550001000", WABAID: "200000000000001"},
		{PhoneNumberID: phone2, DisplayPhoneNumber: "15550001001", WABAID: "200000000000001"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func newFetcher(t *testing.T, base string, fc meta.FetchConfig) *meta.MediaFetcher {
	t.Helper()
	f, err := meta.NewMediaFetcher(meta.Config{BaseURL: base, AccessToken: fetchToken,
		PhoneNumberIDs: map[string]string{sender1: phone1, sender2: phone2}}, fc)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, dl *provider.MediaDownload) []byte {
	t.Helper()
	defer dl.Body.Close()
	b, err := io.ReadAll(dl.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchMediaDownloadsAGuestsFile(t *testing.T) {
	s := startInboundSim(t)
	photo := append(append([]byte(nil), jpegData...), bytes.Repeat([]byte("pixels"), 1000)...)
	_, id, err := s.InboundMessage(phone1, guest, "Ana", sim.InboundMessage{Type: "image", Data: photo})
	if err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, s.URL(), meta.FetchConfig{})
	dl, err := f.FetchMedia(context.Background(), phone1, id, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(photo)
	if got := readAll(t, dl); !bytes.Equal(got, photo) || dl.MIME != "image/jpeg" || dl.SHA256 != hex.EncodeToString(sum[:]) || dl.Size != int64(len(photo)) {
		t.Fatalf("got %d bytes, %+v", len(got), dl)
	}
}

// TestFetchMediaRefusals: what may not be fetched is refused, permanently
// or for a retry, and no error holds the token.
func TestFetchMediaRefusals(t *testing.T) {
	s := startInboundSim(t)
	_, big, err := s.InboundMessage(phone1, guest, "", sim.InboundMessage{Type: "image", Data: append(append([]byte(nil), jpegData...), make([]byte, 6<<20)...)})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.InboundMessage(phone2, guest, "", sim.InboundMessage{Type: "image"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, s.URL(), meta.FetchConfig{})
	tests := []struct {
		name, phone, id string
		tooLarge        bool
		class           provider.Class
	}{
		{name: "over the cap Meta states", phone: phone1, id: big, tooLarge: true},
		{name: "media of another number", phone: phone1, id: other, class: provider.ClassPermanent},
		{name: "media Meta does not know", phone: phone1, id: "1000000000000001", class: provider.ClassPermanent},
		{name: "a number not of the account", phone: "999", id: other, class: provider.ClassPermanent},
		{name: "an id that is no path segment", phone: phone1, id: "../me", class: provider.ClassPermanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.FetchMedia(context.Background(), tc.phone, tc.id, 5<<20)
			switch {
			case err == nil:
				t.Fatal("fetched")
			case strings.Contains(err.Error(), fetchToken):
				t.Fatalf("the error shows the token: %v", err)
			case tc.tooLarge != errors.Is(err, provider.ErrMediaTooLarge):
				t.Fatalf("too large %v: %v", tc.tooLarge, err)
			case !tc.tooLarge && provider.ClassOf(err) != tc.class:
				t.Fatalf("class %v, want %v: %v", provider.ClassOf(err), tc.class, err)
			}
		})
	}

	// Meta down: a 500 is worth a retry, and the retry works.
	s.SetMediaOutage(time.Now().Add(time.Hour))
	if _, err := f.FetchMedia(context.Background(), phone2, other, 5<<20); err == nil || provider.ClassOf(err) == provider.ClassPermanent {
		t.Fatalf("in an outage: %v", err)
	}
	s.SetMediaOutage(time.Time{})
	dl, err := f.FetchMedia(context.Background(), phone2, other, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, dl)
}

// fakeMeta answers GET /{version}/{id} with a media URL of its choice and
// serves files; it records the requests' tokens by host.
type fakeMeta struct {
	srv      *httptest.Server
	url      func(srv string) string
	file     []byte
	length   int64 // Content-Length to state, 0: the file's
	redirect string
	// seen is called with each request.
	seen func(*http.Request)

	mu     sync.Mutex
	tokens []string
}

func newFakeMeta(t *testing.T) *fakeMeta {
	fm := &fakeMeta{}
	fm.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fm.mu.Lock()
		fm.tokens = append(fm.tokens, r.Host+" "+r.Header.Get("Authorization"))
		seen := fm.seen
		fm.mu.Unlock()
		if seen != nil {
			seen(r)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v23.0/"):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"url":"`+fm.url("http://"+r.Host)+`","mime_type":"image/jpeg","file_size":"12","id":"1"}`)
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, fm.redirect, http.StatusFound)
		case fm.length > 0:
			w.Header().Set("Content-Length", strconv.FormatInt(fm.length, 10))
			w.WriteHeader(200)
		default:
			w.Write(fm.file)
		}
	}))
	t.Cleanup(fm.srv.Close)
	return fm
}

// TestFetchMediaOnlyFromMetasHosts: the token goes to Meta's hosts alone,
// a URL elsewhere (or a redirect there) is refused, and a URL that is not
// internal by name but by address is refused by the guard.
func TestFetchMediaOnlyFromMetasHosts(t *testing.T) {
	fm := newFakeMeta(t)
	elsewhere := newFakeMeta(t)
	elsewhere.file = jpegData
	tests := []struct {
		name     string
		url      func(srv string) string
		redirect string
		want     error
	}{
		{name: "another host", url: func(string) string { return elsewhere.srv.URL + "/file" }},
		{name: "a redirect to another host", url: func(srv string) string { return srv + "/redirect" }, redirect: elsewhere.srv.URL + "/file"},
		{name: "credentials in the url", url: func(srv string) string { return strings.Replace(srv, "//", "//u:p@", 1) + "/file" }},
		{name: "not http", url: func(string) string { return "file:///etc/passwd" }},
	}
	f := newFetcher(t, fm.srv.URL, meta.FetchConfig{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fm.url, fm.redirect = tc.url, tc.redirect
			if dl, err := f.FetchMedia(context.Background(), phone1, "1", 5<<20); err == nil {
				dl.Body.Close()
				t.Fatal("fetched")
			}
		})
	}
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if len(elsewhere.tokens) != 0 {
		t.Fatalf("another host was asked: %v", elsewhere.tokens)
	}

	// A file longer than it may be, by its Content-Length.
	fm.url, fm.length = func(srv string) string { return srv + "/file" }, 6<<20
	if _, err := f.FetchMedia(context.Background(), phone1, "1", 5<<20); !errors.Is(err, provider.ErrMediaTooLarge) {
		t.Fatalf("served too large: %v", err)
	}

	// A Graph API host that is not loopback by name goes through the
	// guard, which refuses its internal address.
	g := newFetcher(t, strings.Replace(fm.srv.URL, "127.0.0.1", "0.0.0.0", 1), meta.FetchConfig{})
	if _, err := g.FetchMedia(context.Background(), phone1, "1", 5<<20); !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("internal address: %v", err)
	}
}

// TestFetchMediaRateIsPerNumber: by a fake clock, no second holds more
// than 25 of a number's requests, and one number's downloads do not slow
// another's.
func TestFetchMediaRateIsPerNumber(t *testing.T) {
	fm := newFakeMeta(t)
	fm.url = func(srv string) string { return srv + "/file" }
	fm.file = jpegData
	f := newFetcher(t, fm.srv.URL, meta.FetchConfig{})
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	meta.SetFetchClock(f, clock, func(_ context.Context, d time.Duration) error {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		return nil
	})
	// The server sees the fake time of each request, by number.
	at := map[string][]time.Time{}
	phone := ""
	fm.seen = func(*http.Request) { at[phone] = append(at[phone], clock()) }
	fetch := func(p string) {
		phone = p
		dl, err := f.FetchMedia(context.Background(), p, "1", 5<<20)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, dl)
	}
	// Number 1 asks 60 times, number 2 once in every 6 of them.
	start := clock()
	for i := range 60 {
		fetch(phone1)
		if i%6 == 0 {
			before := clock()
			fetch(phone2)
			// Its own two requests are 40 ms apart; number 1's queue
			// adds nothing.
			if took := clock().Sub(before); took > 40*time.Millisecond {
				t.Fatalf("number 2's download took %v behind number 1's", took)
			}
		}
	}
	// Two requests per download: 120 requests at 25/s take 119/25 s.
	if took := clock().Sub(start); took < 4700*time.Millisecond {
		t.Fatalf("120 requests of one number took %v", took)
	}
	reqs := at[phone1]
	if len(reqs) != 120 || len(at[phone2]) != 20 {
		t.Fatalf("%d and %d requests", len(reqs), len(at[phone2]))
	}
	for i := range reqs {
		n := 0
		for _, r := range reqs[i:] {
			if r.Sub(reqs[i]) < time.Second {
				n++
			}
		}
		if n > 25 {
			t.Fatalf("%d requests within a second from %v", n, reqs[i])
		}
	}
}
