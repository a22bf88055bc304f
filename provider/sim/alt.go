package sim

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The simulator also stands in for the fallback providers wagate speaks
// to: an SMS API in Twilio's shape (sms.go), Gallabox (gallabox.go) and
// Alibaba's ChatApp (chatapp.go). Each has its own credentials, its own
// outage switch (so that a test can have Meta down while the fallback
// works), a record of what it accepted and its counts in Stats. Gallabox
// and ChatApp post their status callbacks (callbacks.go); SMS posts none.

// validateAlt checks the fallback endpoints' credentials.
func (c *Config) validateAlt() error {
	if !idSafe(c.SMSAccountSID) {
		return fmt.Errorf("sms account sid %q is empty or not a path segment", c.SMSAccountSID)
	}
	for _, v := range []string{c.SMSAuthToken, c.GallaboxAPIKey, c.GallaboxAPISecret, c.GallaboxWebhookSecret, c.ChatAppAccessKeyID, c.ChatAppAccessKeySecret} {
		if !headerSafe(v) {
			return errors.New("sms auth token, gallabox api key, secret and webhook secret, chatapp access key id and secret must be non-empty printable ASCII without spaces")
		}
	}
	return nil
}

func headerSafe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// outageSwitch is an endpoint's own outage: until a time, in Unix ns.
type outageSwitch struct{ until atomic.Int64 }

func (o *outageSwitch) set(until time.Time) {
	if until.IsZero() {
		o.until.Store(0)
		return
	}
	o.until.Store(until.UnixNano())
}

func (o *outageSwitch) on(now time.Time) bool { return now.UnixNano() < o.until.Load() }

// ring keeps the last requests an endpoint accepted; the caller locks.
type ring[T any] struct {
	items []T
	next  int
	count int
}

// slot returns the slot for the next request (one of at most keep, keep >
// 0), reusing the oldest once the ring is full.
func (r *ring[T]) slot(keep int) *T {
	if len(r.items) < keep {
		var zero T
		r.items = append(r.items, zero)
	}
	p := &r.items[r.next%len(r.items)]
	r.next = (r.next + 1) % keep
	r.count++
	return p
}

// all returns the kept requests, oldest first, each passed through cp.
func (r *ring[T]) all(cp func(T) T) []T {
	out := make([]T, 0, len(r.items))
	start := 0
	if r.count > len(r.items) { // the ring has wrapped
		start = r.next
	}
	for i := range r.items {
		out = append(out, cp(r.items[(start+i)%len(r.items)]))
	}
	return out
}

// adminAltOutage serves POST /_sim/sms/outage, /_sim/gallabox/outage and
// /_sim/chatapp/outage.
func (s *Server) adminAltOutage(ctx *fasthttp.RequestCtx, what string) {
	secs, err := strconv.ParseFloat(string(ctx.QueryArgs().Peek("seconds")), 64)
	if err != nil || secs < 0 {
		adminError(ctx, fasthttp.StatusBadRequest, errors.New("seconds must be a number of seconds, 0 to end the outage"))
		return
	}
	until := time.Time{}
	if secs > 0 {
		until = time.Now().Add(time.Duration(secs * float64(time.Second)))
	}
	switch what {
	case "sms/outage":
		s.SetSMSOutage(until)
	case "chatapp/outage":
		s.SetChatAppOutage(until)
	default:
		s.SetGallaboxOutage(until)
	}
	adminJSON(ctx, map[string]any{"outage_until": until})
}
