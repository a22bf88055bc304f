package ingest

import (
	"encoding/json"
	"strconv"

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
	errNotFound = &apiError{Code: message.CodeNotFound, Message: "No such endpoint"}
)

func methodNotAllowed(allow string) *apiError {
	return &apiError{
		Code:    message.CodeMethodNotAllowed,
		Message: "Method not allowed on this endpoint",
		Details: map[string]any{"allow": allow},
	}
}

func invalidRequest(msg string, details map[string]any) *apiError {
	return &apiError{Code: message.CodeInvalidRequest, Message: msg, Details: details}
}

func unavailable(op string) *apiError {
	return &apiError{
		Code:            message.CodeServiceUnavailable,
		Message:         "The message store is unavailable; nothing was " + op,
		RecoveryOptions: []string{"Retry the same request (with the same Idempotency-Key) after the Retry-After delay"},
		RetryAfter:      1,
	}
}
