package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
)

const (
	testPhoneID  = "100000000000001"
	testPhoneID2 = "100000000000002"
	testToken    = "sim-test-token"
	testSecret   = "sim-test-secret"
)

var testNumbers = []Number{
	{PhoneNumberID: testPhoneID, DisplayPhoneNumber: "15550001000", WABAID: "200000000000001"},
	{PhoneNumberID: testPhoneID2, DisplayPhoneNumber: "15550002000", WABAID: "200000000000001"},
}

// startSim starts a simulator on a free loopback port with cfg's zero
// address, numbers, token and secret filled in, and shuts it down at the
// end of the test.
func startSim(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Numbers == nil {
		cfg.Numbers = testNumbers
	}
	if cfg.AccessToken == "" {
		cfg.AccessToken = testToken
	}
	if cfg.AppSecret == "" {
		cfg.AppSecret = testSecret
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// answer is an HTTP answer as the test client saw it.
type answer struct {
	status int
	body   []byte
	// err is Meta's error object, when the body has one.
	err struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		Subcode   int    `json:"error_subcode"`
		ErrorData struct {
			MessagingProduct string `json:"messaging_product"`
			Details          string `json:"details"`
		} `json:"error_data"`
		TraceID string `json:"fbtrace_id"`
	}
}

// do sends one request with the test token unless auth says otherwise.
func do(t testing.TB, method, url, auth, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var a answer
	a.status = resp.StatusCode
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Error *json.RawMessage `json:"error"`
	}
	// Meta's errors are objects; the simulator's controls answer a string.
	if json.Unmarshal(a.body, &env) == nil && env.Error != nil && bytes.HasPrefix(*env.Error, []byte("{")) {
		if err := json.Unmarshal(*env.Error, &a.err); err != nil {
			t.Fatalf("error object %s: %v", *env.Error, err)
		}
	}
	return a
}

func sendURL(s *Server, phoneID string) string {
	return s.URL() + "/v23.0/" + phoneID + "/messages"
}

// send posts body to the test number's messages endpoint with the token.
func send(t testing.TB, s *Server, body string) answer {
	t.Helper()
	return do(t, "POST", sendURL(s, testPhoneID), "Bearer "+testToken, "application/json", []byte(body))
}

// receiver is a webhook endpoint that checks signatures and keeps what it
// is sent.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	posts   []received
	failN   int // answer 500 to this many more POSTs
	badSigs int
}

type received struct {
	body     []byte
	statuses []provider.StatusUpdate
	inbound  []provider.Inbound
	at       time.Time
}

func (r *received) HandleStatus(s *provider.StatusUpdate) error {
	r.statuses = append(r.statuses, *s)
	return nil
}

func (r *received) HandleInbound(m *provider.Inbound) error {
	r.inbound = append(r.inbound, *m)
	return nil
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failN > 0 {
			r.failN--
			http.Error(w, "down for a moment", 500)
			return
		}
		if req.Header.Get("Content-Type") != "application/json" ||
			!meta.VerifySignature(body, req.Header.Get("X-Hub-Signature-256"), []byte(testSecret)) {
			r.badSigs++
			http.Error(w, "bad signature", 401)
			return
		}
		p := received{body: body, at: time.Now()}
		if err := meta.ParseWebhook(body, &p); err != nil {
			r.badSigs++
			http.Error(w, err.Error(), 400)
			return
		}
		r.posts = append(r.posts, p)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) snapshot() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.posts...)
}

func (r *receiver) statuses() []provider.StatusUpdate {
	var out []provider.StatusUpdate
	for _, p := range r.snapshot() {
		out = append(out, p.statuses...)
	}
	return out
}
