package clickhouse

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wagate/wagate/message"
)

// eventColumns are message_events' columns in the order the loader's INSERT
// names them and eventRows.appendTo fills them. They must stay in step.
var eventColumns = [...]string{
	"event_date", "event_time", "event_ms",
	"message_id", "tenant_id", "sender", "recipient", "status",
	"channel", "provider", "provider_message_id", "message_type", "lane",
	"attempt", "error_code", "error_title", "pricing_category", "billable",
	"conversation_id", "staff_member_id", "provider_conversation_id",
	"shard", "stream_id", "inserted_ms", "pricing_model", "pricing_type",
	"campaign_id", "template_name",
}

// insertEventsSQL is the loader's INSERT, with the explicit column list that
// PrepareBatch needs on 18.16 and that keeps it working when columns are added.
func insertEventsSQL(database string) string {
	return "INSERT INTO " + quoteDB(database) + "." + EventsTable +
		" (" + strings.Join(eventColumns[:], ", ") + ")"
}

// eventRows is a batch of events laid out column by column. The loader owns
// one and reuses its slices from batch to batch, so building a batch does not
// allocate per event; appendTo hands whole columns to clickhouse-go, which
// copies them into its own block, so nothing here is kept by the driver.
type eventRows struct {
	eventDate, eventTime                            []time.Time
	eventMS, insertedMS                             []uint64
	messageID, tenantID, sender, recipient, status  []string
	channel, provider, providerMessageID, msgType   []string
	lane, errorTitle, pricingCategory, conversation []string
	staffMember, providerConversation, streamID     []string
	pricingModel, pricingType, campaign, template   []string
	attempt, shard                                  []uint16
	errorCode                                       []int32
	billable                                        []uint8
}

// len is the number of rows held.
func (r *eventRows) len() int { return len(r.eventMS) }

// reset empties r, keeping its capacity. Strings are cleared so that the
// events of the last batch can be collected.
func (r *eventRows) reset() {
	for _, s := range []*[]string{
		&r.messageID, &r.tenantID, &r.sender, &r.recipient, &r.status,
		&r.channel, &r.provider, &r.providerMessageID, &r.msgType,
		&r.lane, &r.errorTitle, &r.pricingCategory, &r.conversation, &r.streamID,
		&r.staffMember, &r.providerConversation, &r.pricingModel, &r.pricingType, &r.campaign, &r.template,
	} {
		clear(*s)
		*s = (*s)[:0]
	}
	r.eventDate, r.eventTime = r.eventDate[:0], r.eventTime[:0]
	r.eventMS, r.insertedMS = r.eventMS[:0], r.insertedMS[:0]
	r.attempt, r.shard = r.attempt[:0], r.shard[:0]
	r.errorCode, r.billable = r.errorCode[:0], r.billable[:0]
}

// add appends ev as one row. insertedMS is the batch's version for
// ReplacingMergeTree. Out-of-range numbers are clamped rather than refused:
// an event is never dropped, and a clamped value is visibly wrong.
func (r *eventRows) add(ev *message.Event, insertedMS int64) {
	ms := max(ev.AtMS, 0)
	at := time.UnixMilli(ms).UTC()
	r.eventDate = append(r.eventDate, at)
	r.eventTime = append(r.eventTime, at)
	r.eventMS = append(r.eventMS, uint64(ms))
	r.messageID = append(r.messageID, ev.MessageID)
	r.tenantID = append(r.tenantID, ev.TenantID)
	r.sender = append(r.sender, ev.Sender)
	r.recipient = append(r.recipient, ev.Recipient)
	r.status = append(r.status, string(ev.Status))
	r.channel = append(r.channel, ev.Channel)
	r.provider = append(r.provider, ev.Provider)
	r.providerMessageID = append(r.providerMessageID, ev.ProviderMessageID)
	r.msgType = append(r.msgType, string(ev.Type))
	r.lane = append(r.lane, string(ev.Lane))
	r.attempt = append(r.attempt, uint16(min(max(ev.Attempt, 0), math.MaxUint16)))
	r.errorCode = append(r.errorCode, int32(min(max(ev.ErrorCode, math.MinInt32), math.MaxInt32)))
	r.errorTitle = append(r.errorTitle, ev.ErrorTitle)
	r.pricingCategory = append(r.pricingCategory, ev.PricingCategory)
	var billable uint8
	if ev.Billable {
		billable = 1
	}
	r.billable = append(r.billable, billable)
	r.conversation = append(r.conversation, ev.ConversationID)
	r.staffMember = append(r.staffMember, ev.StaffMemberID)
	r.providerConversation = append(r.providerConversation, ev.ProviderConversationID)
	r.pricingModel = append(r.pricingModel, ev.PricingModel)
	r.pricingType = append(r.pricingType, ev.PricingType)
	r.campaign = append(r.campaign, ev.Campaign)
	r.template = append(r.template, ev.TemplateName)
	r.shard = append(r.shard, uint16(min(max(ev.Shard, 0), math.MaxUint16)))
	r.streamID = append(r.streamID, ev.StreamID)
	r.insertedMS = append(r.insertedMS, uint64(max(insertedMS, 0)))
}

// appendTo appends every row to b, a batch prepared with insertEventsSQL,
// one column at a time.
func (r *eventRows) appendTo(b driver.Batch) error {
	cols := [len(eventColumns)]any{
		r.eventDate, r.eventTime, r.eventMS,
		r.messageID, r.tenantID, r.sender, r.recipient, r.status,
		r.channel, r.provider, r.providerMessageID, r.msgType, r.lane,
		r.attempt, r.errorCode, r.errorTitle, r.pricingCategory, r.billable,
		r.conversation, r.staffMember, r.providerConversation, r.shard, r.streamID, r.insertedMS,
		r.pricingModel, r.pricingType, r.campaign, r.template,
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %s: %w", eventColumns[i], err)
		}
	}
	return nil
}
