package chatapp

import (
	"net/http"
	"strings"

	"github.com/wagate/wagate/provider"
)

// ClassForCode maps an Alibaba error code (the answer's Code) and the HTTP
// status it came with to wagate's retry class:
//
//   - Throttling… and HTTP 429: a throttle;
//   - ServiceUnavailable, InternalError, SignatureNonceUsed (a fresh nonce
//     fixes it) and 5xx: retried;
//   - InvalidAccessKeyId…, InvalidAccessKeySecret, SignatureDoesNotMatch,
//     Forbidden… and HTTP 401/403: the account's credentials or rights are
//     wrong, so the sender stops;
//   - any other code: permanent. With no code at all, a 4xx is permanent
//     and anything else retried.
func ClassForCode(code string, httpStatus int) provider.Class {
	switch {
	case strings.HasPrefix(code, "Throttling"):
		return provider.ClassThrottle
	case code == "ServiceUnavailable" || code == "InternalError" || code == "UnknownError" || code == "SignatureNonceUsed":
		return provider.ClassRetry
	case strings.HasPrefix(code, "InvalidAccessKeyId") || code == "InvalidAccessKeySecret" ||
		code == "SignatureDoesNotMatch" || strings.HasPrefix(code, "Forbidden"):
		return provider.ClassStopSender
	}
	switch {
	case httpStatus == http.StatusTooManyRequests:
		return provider.ClassThrottle
	case httpStatus >= 500:
		return provider.ClassRetry
	case httpStatus == http.StatusUnauthorized || httpStatus == http.StatusForbidden:
		return provider.ClassStopSender
	case code != "" || httpStatus >= 400 && httpStatus < 500:
		return provider.ClassPermanent
	}
	return provider.ClassRetry
}
