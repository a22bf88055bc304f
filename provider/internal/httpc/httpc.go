// Package httpc builds the HTTP clients of the provider adapters: one
// fasthttp.HostClient per provider endpoint, set up the same way.
package httpc

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// NewHostClient returns a client for the host of baseURL (http or https;
// the port defaults to the scheme's) with at most maxConns connections,
// timeout for waiting on a connection, writing and reading, and answers up
// to maxBody bytes. It never retries a request by itself: a repeated send
// would be a second message, so repeats are the caller's decision.
func NewHostClient(baseURL string, maxConns int, timeout time.Duration, maxBody int) (*fasthttp.HostClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base url %q: want http(s)://host[:port]", baseURL)
	}
	tls := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if tls {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return &fasthttp.HostClient{
		Addr:                addr,
		IsTLS:               tls,
		Name:                "wagate",
		MaxConns:            maxConns,
		MaxConnWaitTimeout:  timeout,
		ReadTimeout:         timeout,
		WriteTimeout:        timeout,
		MaxResponseBodySize: maxBody,
		RetryIfErr:          func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}, nil
}

// maxRetryAfterSeconds caps a Retry-After so that it cannot overflow.
const maxRetryAfterSeconds = 7 * 24 * 3600

// RetryAfter reads a Retry-After header at now: seconds (capped at a
// week), or an HTTP date; 0 for none, a past date or anything else.
func RetryAfter(v []byte, now time.Time) time.Duration {
	if len(v) == 0 {
		return 0
	}
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(string(v)); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
