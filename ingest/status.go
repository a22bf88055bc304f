package ingest

import (
	"context"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// handleStatus answers GET /api/v1/whatsapp/messages/{id}/status with the
// seed's fields (status, sent_at, delivered_at, read_at, failure_reason) and
// a few more a caller needs to act on a failure.
func (s *Server) handleStatus(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	id := ps[0]
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
	st, err := s.store.State(sctx, id)
	cancel()
	if errors.Is(err, redis.ErrNotFound) || (err == nil && st.TenantID != p.Tenant.ID) {
		// Another tenant's message is "not found" too: its existence is
		// not this caller's business.
		writeError(ctx, &apiError{Code: message.CodeMessageNotFound, Message: "No message with this id",
			Details: map[string]any{"message_id": id}})
		return
	}
	if err != nil {
		s.log.Warn("message state", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := make([]byte, 0, 512)
	out = append(out, `{"message_id":`...)
	out = message.AppendJSONString(out, st.ID)
	out = append(out, `,"status":`...)
	out = message.AppendJSONString(out, string(st.Status))
	out = append(out, `,"guest_phone":`...)
	out = message.AppendJSONString(out, st.Recipient)
	out = append(out, `,"from":`...)
	out = message.AppendJSONString(out, st.Sender)
	out = append(out, `,"message_type":`...)
	out = message.AppendJSONString(out, string(st.Type))
	out = append(out, `,"conversation_id":`...)
	out = appendStringOrNull(out, st.ConversationID)
	out = append(out, `,"staff_member_id":`...)
	out = appendStringOrNull(out, st.StaffMemberID)
	out = append(out, `,"created_at":`...)
	out = appendTimeMS(out, st.QueuedMS)
	out = append(out, `,"sent_at":`...)
	out = appendTimeMS(out, st.SentMS)
	out = append(out, `,"delivered_at":`...)
	out = appendTimeMS(out, st.DeliveredMS)
	out = append(out, `,"read_at":`...)
	out = appendTimeMS(out, st.ReadMS)
	out = append(out, `,"failed_at":`...)
	out = appendTimeMS(out, st.FailedMS)
	out = appendFailure(out, st.Status, st.ErrorCode, st.ErrorTitle)
	out = append(out, `,"attempts":`...)
	out = appendInt(out, int64(st.Attempts))
	out = append(out, `,"provider_message_id":`...)
	out = appendStringOrNull(out, st.ProviderMessageID)
	out = append(out, `,"priority":`...)
	if st.Lane == message.LaneBulk {
		out = append(out, `"bulk"`...)
	} else {
		out = append(out, `"transactional"`...)
	}
	out = append(out, `,"campaign_id":`...)
	out = appendStringOrNull(out, st.Campaign)
	out = append(out, `,"send_at":`...)
	out = appendTimeMS(out, st.DueMS)
	out = append(out, `,"expires_at":`...)
	out = appendTimeMS(out, st.ExpiresMS)
	out = append(out, `,"expired_at":`...)
	out = appendTimeMS(out, st.ExpiredMS)
	out = append(out, `,"pricing":`...)
	out = appendPricing(out, st)
	out = append(out, `,"fallback":`...)
	if st.FallbackMS == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, `{"channel":`...)
		out = message.AppendJSONString(out, st.FallbackChannel)
		out = append(out, `,"provider":`...)
		out = message.AppendJSONString(out, st.FallbackProvider)
		out = append(out, `,"provider_message_id":`...)
		out = appendStringOrNull(out, st.FallbackMessageID)
		out = append(out, `,"sent_at":`...)
		out = appendTimeMS(out, st.FallbackMS)
		out = append(out, '}')
	}
	out = append(out, '}')
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

// failureReason is why a message in status st whose last error was title
// did not arrive: "" unless it ended failed or expired, the status itself
// when no error was recorded.
func failureReason(st message.Status, title string) string {
	if st != message.StatusFailed && st != message.StatusExpired {
		return ""
	}
	if title == "" {
		return string(st)
	}
	return title
}

// appendFailure appends `,"failure_reason":…,"error_code":…` for a message
// in status st whose last error was code and title (null for none).
func appendFailure(out []byte, st message.Status, code int, title string) []byte {
	reason := failureReason(st, title)
	out = append(out, `,"failure_reason":`...)
	out = appendStringOrNull(out, reason)
	out = append(out, `,"error_code":`...)
	if reason != "" && code != 0 {
		return appendInt(out, int64(code))
	}
	return append(out, "null"...)
}

// appendPricing appends the provider's pricing object of the message's
// latest status that had one (Meta's: category, pricing_model, type,
// billable), or null.
func appendPricing(out []byte, st *redis.State) []byte {
	if st.PricingCategory == "" {
		return append(out, "null"...)
	}
	out = append(out, `{"category":`...)
	out = message.AppendJSONString(out, st.PricingCategory)
	out = append(out, `,"pricing_model":`...)
	out = appendStringOrNull(out, st.PricingModel)
	out = append(out, `,"type":`...)
	out = appendStringOrNull(out, st.PricingType)
	out = append(out, `,"billable":`...)
	out = append(out, strconv.FormatBool(st.Billable == "1")...)
	return append(out, '}')
}
