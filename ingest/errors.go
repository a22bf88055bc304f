package ingest

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// apiError is an error answer in the hotel seed's format:
// {"error":{"code","message","details","recovery_options"}}.
type apiError struct {
	Code            message.Code
	Message         string
	Details         map[string]any
	RecoveryOptions []string
	// RetryAfter, in seconds, is sent as a Retry-After header when > 0.
	RetryAfter int
	// Allow is sent as the Allow header of a 405.
	Allow string
}

// errorBody is the JSON shape of an apiError.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code            message.Code   `json:"code"`
	Message         string         `json:"message"`
	Details         map[string]any `json:"details"`
	RecoveryOptions []string       `json:"recovery_options"`
}

// writeError answers ctx with e, with the HTTP status of its code.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	ctx.Response.Reset()
	ctx.SetStatusCode(e.Code.HTTPStatus())
	ctx.SetContentType("application/json")
	if e.RetryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Allow != "" {
		ctx.Response.Header.Set("Allow", e.Allow)
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	recovery := e.RecoveryOptions
	if recovery == nil {
		recovery = []string{}
	}
	body, _ := json.Marshal(errorBody{Error: errorObject{e.Code, e.Message, details, recovery}})
	ctx.SetBody(body)
}

// Common answers.
var (
	errUnauthorized = &apiError{
		Code:            message.CodeUnauthorized,
		Message:         "Missing or invalid API token",
		RecoveryOptions: []string{"Send the tenant's API token as 'Authorization: Bearer <token>'"},
	}
	errNotFound = &apiError{Code: message.CodeNotFound, Message: "No such endpoint",
		RecoveryOptions: []string{"API paths begin with /api/v1/whatsapp/; GET /openapi.yaml describes every one"}}
)

func methodNotAllowed(allow string) *apiError {
	return &apiError{
		Code:    message.CodeMethodNotAllowed,
		Message: "Method not allowed on this endpoint",
		Details: map[string]any{"allow": allow},
		Allow:   allow,
	}
}

func invalidRequest(msg string, details map[string]any) *apiError {
	return &apiError{Code: message.CodeInvalidRequest, Message: msg, Details: details, RecoveryOptions: fixRequest}
}

// fixRequest is the recovery option of every invalid request.
var fixRequest = []string{"Correct what the message names (details.field) and send the request again: nothing was queued or changed"}

// article is "a" or "an" for word, for messages naming a media type.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func unavailable(op string) *apiError {
	return &apiError{
		Code:            message.CodeServiceUnavailable,
		Message:         "The message store is unavailable; nothing was " + op,
		RecoveryOptions: []string{"Retry the same request (with the same Idempotency-Key) after the Retry-After delay"},
		RetryAfter:      1,
	}
}

// unconfirmed answers a send whose write Redis did not confirm in time: it
// may have been queued, and saying otherwise would invite a duplicate.
func unconfirmed() *apiError {
	return &apiError{
		Code:    message.CodeServiceUnavailable,
		Message: "The message store did not confirm the write in time: the message may or may not have been queued",
		RecoveryOptions: []string{
			"Retry with the same Idempotency-Key: a queued message is answered with its message_id, one that was not is queued now",
			"Without an Idempotency-Key, check the guest's conversation before sending again",
		},
		RetryAfter: 1,
	}
}
