package sms

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// ClassForCode maps a Twilio error code and the HTTP status it came with to
// wagate's retry class. Rate limits are throttles whatever the status; then
// 429 is a throttle, 401 and 403 (bad credentials, suspended account) stop
// the sender, another 4xx is permanent and the rest (5xx) is retried.
func ClassForCode(code int, httpStatus int) provider.Class {
	switch code {
	case 20429, // too many requests
		14107, // SMS send rate limit exceeded
		21611: // the From number's queue is full
		return provider.ClassThrottle
	}
	switch {
	case httpStatus == http.StatusTooManyRequests:
		return provider.ClassThrottle
	case httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden:
		return provider.ClassStopSender
	case httpStatus >= 400 && httpStatus < 500:
		return provider.ClassPermanent
	}
	return provider.ClassRetry
}

// twilioError is Twilio's error body:
// {"code":21211,"message":"…","more_info":"https://www.twilio.com/docs/errors/21211","status":400}.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	Detail   string `json:"detail"`
	MoreInfo string `json:"more_info"`
}

// parseError turns a non-success answer into a *provider.Error. A body
// that is not Twilio's error object leaves Code 0 and the status's text
// as the Title.
func parseError(status int, body, retryAfter []byte, now time.Time) *provider.Error {
	e := &provider.Error{HTTPStatus: status, RetryAfter: httpc.RetryAfter(retryAfter, now)}
	var te twilioError
	if json.Unmarshal(body, &te) == nil {
		e.Code = te.Code
		e.Title = te.Message
		e.Details = te.Detail
		if e.Details == "" {
			e.Details = te.MoreInfo
		}
	}
	if e.Title == "" {
		e.Title = http.StatusText(status)
	}
	e.Class = ClassForCode(e.Code, status)
	return e
}
