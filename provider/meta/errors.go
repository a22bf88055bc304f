package meta

import (
	"errors"
	"net/http"
	"time"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// Sentinel errors of webhook parsing.
var (
	// ErrMalformed says a body is not JSON, or not in the shape Meta's
	// envelope gives its fields.
	ErrMalformed = errors.New("meta: malformed body")
	// ErrNotWhatsApp says a JSON body is not a whatsapp_business_account
	// envelope.
	ErrNotWhatsApp = errors.New("meta: not a whatsapp_business_account webhook")
)

// ClassForCode maps a Meta error code and the HTTP status it came with to
// wagate's retry class (PROVIDERS.md). Known codes decide; otherwise HTTP 429
// is a throttle, another 4xx with a code is permanent, and the rest (5xx, or
// code 0: no code could be read) is retried.
func ClassForCode(code int, httpStatus int) provider.Class {
	switch code {
	case 4, 80007, 130429:
		return provider.ClassThrottle
	case 131056:
		return provider.ClassPairThrottle
	case 131048:
		return provider.ClassHoldSender
	case 131049:
		return provider.ClassNoRetry24h
	case 131047, 131026, 131051, 132000, 132001, 100:
		return provider.ClassPermanent
	case 131000, 1, 2, 131016, 133004, 131057:
		return provider.ClassRetry
	case 131031, 368, 190:
		return provider.ClassStopSender
	}
	switch {
	case httpStatus == http.StatusTooManyRequests:
		return provider.ClassThrottle
	case httpStatus >= 400 && httpStatus < 500 && code != 0:
		return provider.ClassPermanent
	}
	return provider.ClassRetry
}

// parseError turns a non-success answer into a *provider.Error. A body that
// is not Meta's error object leaves Code 0: then only the HTTP status says
// anything, and a 4xx without a code is retried since it was likely not Meta
// that answered (a proxy, a load balancer).
func parseError(status int, body, retryAfter []byte, now time.Time) *provider.Error {
	e := &provider.Error{HTTPStatus: status, RetryAfter: httpc.RetryAfter(retryAfter, now)}
	s := scannerPool.Get().(*scanner)
	defer scannerPool.Put(s)
	s.reset(body)
	var k []byte
	if s.object() {
		for first := true; s.key(&k, first); first = false {
			if string(k) != "error" {
				s.skip()
				continue
			}
			if !s.object() {
				continue
			}
			for first := true; s.key(&k, first); first = false {
				switch string(k) {
				case "message":
					e.Title = string(s.str())
				case "code":
					e.Code = int(s.int())
				case "error_subcode":
					e.Subcode = int(s.int())
				case "fbtrace_id":
					e.TraceID = string(s.str())
				case "error_data":
					if s.peek() != '{' {
						// Older answers carry error_data as a string.
						s.skip()
						continue
					}
					s.object()
					for first := true; s.key(&k, first); first = false {
						if string(k) == "details" {
							e.Details = string(s.str())
						} else {
							s.skip()
						}
					}
				default:
					s.skip()
				}
			}
		}
	}
	s.end()
	s.b = nil
	if s.err != nil {
		// Keep what the body says for the logs, but the numbers read from a
		// broken body are not trusted.
		e.Code, e.Subcode = 0, 0
		if e.Title == "" {
			e.Title = http.StatusText(status)
		}
	}
	if e.Title == "" && e.Code == 0 {
		e.Title = http.StatusText(status)
	}
	e.Class = ClassForCode(e.Code, status)
	return e
}
