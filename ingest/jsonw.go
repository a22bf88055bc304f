package ingest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// appendTimeMS appends a Unix-ms time as an RFC 3339 UTC string with
// milliseconds, or null when ms is 0.
func appendTimeMS(dst []byte, ms int64) []byte {
	if ms == 0 {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, apiTime)
	return append(dst, '"')
}

// appendStringOrNull appends s as a JSON string, or null when empty.
func appendStringOrNull(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return message.AppendJSONString(dst, s)
}

// appendInt appends n.
func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// writeJSON answers ctx with status and v encoded as JSON, for the calls
// off the hot path where building the answer by hand buys nothing.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, &apiError{Code: message.CodeInternal, Message: "The answer could not be encoded"})
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}
