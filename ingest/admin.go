package ingest

import (
	"context"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// handleDeadLetterRequeue serves
// POST /api/v1/whatsapp/admin/dead-letters/{message_id}/requeue.
func (s *Server) handleDeadLetterRequeue(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	id := ps[0]
	err := s.store.Requeue(rctx, p.Tenant.ID, id)
	switch {
	case errors.Is(err, redis.ErrNotFound):
		writeError(ctx, &apiError{Code: message.CodeMessageNotFound, Message: "No message with this id",
			Details: map[string]any{"message_id": id}})
		return
	case errors.Is(err, redis.ErrNotFailed):
		writeError(ctx, &apiError{Code: message.CodeNotDeadLettered, Message: "This message is not in the dead-letter stream",
			Details: map[string]any{"message_id": id}, RecoveryOptions: []string{"Check its status: only failed messages can be requeued"}})
		return
	case err != nil:
		s.log.Warn("requeue", "err", err)
		writeError(ctx, unavailable("requeued"))
		return
	}
	out := append([]byte(`{"message_id":`), message.AppendJSONString(nil, id)...)
	out = append(out, `,"status":"queued"}`...)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// handleDeadLetterList serves
// GET /api/v1/whatsapp/admin/dead-letters?limit=50&cursor=<next_cursor>.
func (s *Server) handleDeadLetterList(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	defer cancel()
	s.listDeadLetters(rctx, ctx, p)
}

func (s *Server) listDeadLetters(rctx context.Context, ctx *fasthttp.RequestCtx, p Principal) {
	args := ctx.QueryArgs()
	limit := 50
	if v := args.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 500 {
			writeError(ctx, invalidRequest("limit must be from 1 to 500", map[string]any{"field": "limit"}))
			return
		}
		limit = n
	}
	dls, next, err := s.store.DeadLetters(rctx, p.Tenant.ID, limit, string(args.Peek("cursor")))
	if errors.Is(err, redis.ErrBadCursor) {
		writeError(ctx, invalidRequest("cursor must be the next_cursor of a previous page", map[string]any{"field": "cursor"}))
		return
	}
	if err != nil {
		s.log.Warn("dead letters", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := append(make([]byte, 0, 256*len(dls)+64), `{"dead_letters":[`...)
	for i, d := range dls {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"message_id":`...)
		out = message.AppendJSONString(out, d.MessageID)
		out = append(out, `,"guest_phone":`...)
		out = message.AppendJSONString(out, d.Recipient)
		out = append(out, `,"from":`...)
		out = message.AppendJSONString(out, d.Sender)
		out = append(out, `,"attempts":`...)
		out = appendInt(out, int64(d.Attempts))
		// null when there is none, as the message status answers.
		out = append(out, `,"error_code":`...)
		if d.ErrorCode != 0 {
			out = appendInt(out, int64(d.ErrorCode))
		} else {
			out = append(out, "null"...)
		}
		out = append(out, `,"failure_reason":`...)
		out = appendStringOrNull(out, d.ErrorTitle)
		out = append(out, `,"dead_lettered_at":`...)
		out = appendTimeMS(out, d.AtMS)
		out = append(out, '}')
	}
	out = append(out, `],"next_cursor":`...)
	out = appendStringOrNull(out, next)
	out = append(out, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}
