package gallabox

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// ClassForStatus maps the HTTP status of a failed send to wagate's retry
// class: 401 and 403 (bad credentials, a channel the key may not use) stop
// the sender, 429 is a throttle, another 4xx is permanent and the rest
// (5xx) is retried.
func ClassForStatus(status int) provider.Class {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return provider.ClassStopSender
	case status == http.StatusTooManyRequests:
		return provider.ClassThrottle
	case status >= 400 && status < 500:
		return provider.ClassPermanent
	}
	return provider.ClassRetry
}

// parseError turns a non-success answer into a *provider.Error whose Title
// is the body's "message": a string, or a list of strings (a validation
// error) joined with "; ". A body without one gives the status's text.
func parseError(status int, body, retryAfter []byte, now time.Time) *provider.Error {
	e := &provider.Error{Class: ClassForStatus(status), HTTPStatus: status, RetryAfter: httpc.RetryAfter(retryAfter, now)}
	var eb struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(body, &eb) == nil && len(eb.Message) > 0 {
		var one string
		var many []string
		switch {
		case json.Unmarshal(eb.Message, &one) == nil:
			e.Title = one
		case json.Unmarshal(eb.Message, &many) == nil:
			e.Title = strings.Join(many, "; ")
		}
	}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	return e
}
