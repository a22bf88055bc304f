package httpc

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestNewHostClient(t *testing.T) {
	f := func(base, addr string, tls bool) {
		t.Helper()
		hc, err := NewHostClient(base, 7, time.Second, 1<<10)
		if err != nil || hc.Addr != addr || hc.IsTLS != tls || hc.MaxConns != 7 || hc.ReadTimeout != time.Second || hc.MaxResponseBodySize != 1<<10 {
			t.Fatalf("%s: %+v %v", base, hc, err)
		}
		if retry, _ := hc.RetryIfErr(&fasthttp.Request{}, 1, nil); retry {
			t.Fatalf("%s: the client repeats requests", base)
		}
	}
	f("https://graph.facebook.com", "graph.facebook.com:443", true)
	f("http://127.0.0.1:8090/", "127.0.0.1:8090", false)
	f("http://[::1]", "[::1]:80", false)
	for _, bad := range []string{"", "graph.facebook.com", "ftp://x", "http://", "://x"} {
		if _, err := NewHostClient(bad, 1, time.Second, 1); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := RetryAfter([]byte(v), now); got != want {
			t.Fatalf("%q: got %v, want %v", v, got, want)
		}
	}
	f("", 0)
	f("0", 0)
	f("120", 2*time.Minute)
	f("-3", 0)
	f("soon", 0)
	f("99999999999999", 7*24*time.Hour) // capped, not overflowed
	f("Sun, 01 Jun 2025 12:00:30 GMT", 30*time.Second)
	f("Sun, 01 Jun 2025 11:00:00 GMT", 0)
}
