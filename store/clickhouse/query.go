package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/wagate/wagate/message"
)

// ErrTenantRequired says a query that reads one tenant's data was given none.
var ErrTenantRequired = errors.New("tenant id required")

// ErrTimeRange says a query's time range is empty or reversed.
var ErrTimeRange = errors.New("time range: from must be before to")

// The queries below cast every aggregate in SQL (toUInt64(count()),
// toFloat64(quantile…)) because result types differ between ClickHouse
// releases, and scan into fixed Go types. Values are bound with "?", which
// clickhouse-go substitutes client side, so they work on 18.16 too (it has no
// server-side parameters); database names, which cannot be bound, are checked
// by checkDatabase.

// eventsSQL selects a message's events. FINAL collapses an event inserted
// twice; the event_date bound, from the id's creation time, prunes partitions.
const eventsSQL = `SELECT event_ms, message_id, tenant_id, sender, recipient, status,
    channel, provider, provider_message_id, message_type, lane, attempt,
    error_code, error_title, pricing_category, billable, conversation_id, staff_member_id,
    provider_conversation_id, shard, stream_id, pricing_model, pricing_type, campaign_id, template_name
FROM %s.message_events FINAL
WHERE message_id = ? AND event_date >= toDate(?)
ORDER BY event_ms, attempt`

// Events returns the status events of one message, oldest first, each once
// even if the loader inserted it twice. It returns an empty slice for a
// message with no events, and an error wrapping message.ErrBadID for a
// string that is not a wagate message id.
func Events(ctx context.Context, conn driver.Conn, db, messageID string) ([]message.Event, error) {
	if err := checkDatabase(db); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if _, err := message.ShardOf(messageID); err != nil {
		return nil, fmt.Errorf("events of %q: %w", messageID, err)
	}
	// A day of slack for provider clocks that run behind ours.
	since := time.UnixMilli(message.IDTimeMS(messageID)).Add(-24 * time.Hour)
	rows, err := conn.Query(ctx, fmt.Sprintf(eventsSQL, quoteDB(db)), messageID, day(since))
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", messageID, err)
	}
	defer rows.Close()
	evs := []message.Event{}
	for rows.Next() {
		var (
			ev                message.Event
			ms                uint64
			status, typ, lane string
			attempt, shard    uint16
			errorCode         int32
			billable          uint8
		)
		if err := rows.Scan(&ms, &ev.MessageID, &ev.TenantID, &ev.Sender, &ev.Recipient, &status,
			&ev.Channel, &ev.Provider, &ev.ProviderMessageID, &typ, &lane, &attempt,
			&errorCode, &ev.ErrorTitle, &ev.PricingCategory, &billable, &ev.ConversationID, &ev.StaffMemberID,
			&ev.ProviderConversationID, &shard, &ev.StreamID, &ev.PricingModel, &ev.PricingType,
			&ev.Campaign, &ev.TemplateName); err != nil {
			return nil, fmt.Errorf("events of %s: scan: %w", messageID, err)
		}
		ev.AtMS = int64(ms)
		ev.Status, ev.Type, ev.Lane = message.Status(status), message.Type(typ), message.Lane(lane)
		ev.Attempt, ev.Shard, ev.ErrorCode = int(attempt), int(shard), int(errorCode)
		ev.Billable = billable != 0
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of %s: %w", messageID, err)
	}
	// Within one millisecond, the life order (sent before delivered) is the
	// useful one; SQL cannot know it.
	slices.SortStableFunc(evs, func(a, b message.Event) int {
		return cmp.Or(cmp.Compare(a.AtMS, b.AtMS), cmp.Compare(message.Rank(a.Status), message.Rank(b.Status)))
	})
	return evs, nil
}

const countByStatusSQL = `SELECT status, toUInt64(uniqExact(message_id)) AS messages
FROM %s.message_events
WHERE tenant_id = ? AND event_date >= toDate(?) AND event_ms >= ?
GROUP BY status`

// CountByStatus returns, for each status, how many distinct messages of
// tenantID had an event with that status at or after since. Distinct
// messages rather than rows, so that an event inserted twice, or a message
// failing on several attempts, counts once. Statuses with no messages are
// absent from the map.
func CountByStatus(ctx context.Context, conn driver.Conn, db, tenantID string, since time.Time) (map[message.Status]uint64, error) {
	if err := checkDatabase(db); err != nil {
		return nil, fmt.Errorf("count by status: %w", err)
	}
	if tenantID == "" {
		return nil, fmt.Errorf("count by status: %w", ErrTenantRequired)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(countByStatusSQL, quoteDB(db)), tenantID, day(since), epochMS(since))
	if err != nil {
		return nil, fmt.Errorf("count by status of %s: %w", tenantID, err)
	}
	defer rows.Close()
	out := make(map[message.Status]uint64)
	for rows.Next() {
		var (
			status string
			n      uint64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count by status of %s: scan: %w", tenantID, err)
		}
		out[message.Status(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count by status of %s: %w", tenantID, err)
	}
	return out, nil
}

// SenderStats is how one sender number's messages fared: of the messages
// whose "sent" event falls in the range asked for, how many were later
// delivered and read (whenever that was), and how long delivery took.
type SenderStats struct {
	Sender string
	// Sent counts messages with a "sent" event in the range.
	Sent uint64
	// Delivered counts those that were delivered or read (a "read" proves
	// delivery even when the provider's "delivered" never came).
	Delivered uint64
	// Read counts those that were read.
	Read uint64
	// Failed counts those with a "failed" event and no delivery.
	Failed uint64
	// DeliveredRatio is Delivered/Sent; ReadRatio is Read/Delivered, as in
	// Meta's analytics. Both are 0 when their denominator is.
	DeliveredRatio float64
	ReadRatio      float64
	// DeliveryP50 and DeliveryP95 are quantiles (approximate, as ClickHouse's
	// quantile) of the time from "sent" to delivery; 0 when none was
	// delivered.
	DeliveryP50 time.Duration
	DeliveryP95 time.Duration
}

// deliveryStatsSQL folds each message's events into its sent, delivered,
// read and failed times (minIf over rows is the same with or without
// duplicates, so no FINAL is needed), keeps the messages sent in [from, to)
// and aggregates them per sender. Events are read from an hour before from,
// for provider clocks that run behind ours; deliveries after to still count.
const deliveryStatsSQL = `SELECT sender,
    toUInt64(count()) AS sent,
    toUInt64(countIf(delivered_ms > 0)) AS delivered,
    toUInt64(countIf(read_ms > 0)) AS read,
    toUInt64(countIf(failed_ms > 0 AND delivered_ms = 0)) AS failed,
    toFloat64(quantileIf(0.5)(toFloat64(greatest(toInt64(delivered_ms) - toInt64(sent_ms), 0)), delivered_ms > 0)) AS p50_ms,
    toFloat64(quantileIf(0.95)(toFloat64(greatest(toInt64(delivered_ms) - toInt64(sent_ms), 0)), delivered_ms > 0)) AS p95_ms
FROM
(
    SELECT sender, message_id,
        toUInt64(countIf(status = 'sent')) AS sent_events,
        minIf(event_ms, status = 'sent') AS sent_ms,
        minIf(event_ms, status IN ('delivered', 'read')) AS delivered_ms,
        minIf(event_ms, status = 'read') AS read_ms,
        minIf(event_ms, status = 'failed') AS failed_ms
    FROM %s.message_events
    WHERE tenant_id = ? AND event_date >= toDate(?) AND event_ms >= ?
    GROUP BY sender, message_id
    HAVING sent_events > 0 AND sent_ms >= ? AND sent_ms < ?
)
GROUP BY sender
ORDER BY sender`

// DeliveryStats returns per-sender delivery statistics of tenantID's
// messages sent in [from, to), ordered by sender; senders with no message
// sent in the range are absent.
func DeliveryStats(ctx context.Context, conn driver.Conn, db, tenantID string, from, to time.Time) ([]SenderStats, error) {
	if err := checkDatabase(db); err != nil {
		return nil, fmt.Errorf("delivery stats: %w", err)
	}
	if tenantID == "" {
		return nil, fmt.Errorf("delivery stats: %w", ErrTenantRequired)
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("delivery stats: %w (from %v, to %v)", ErrTimeRange, from, to)
	}
	scanFrom := from.Add(-time.Hour)
	rows, err := conn.Query(ctx, fmt.Sprintf(deliveryStatsSQL, quoteDB(db)),
		tenantID, day(scanFrom), epochMS(scanFrom), epochMS(from), epochMS(to))
	if err != nil {
		return nil, fmt.Errorf("delivery stats of %s: %w", tenantID, err)
	}
	defer rows.Close()
	var out []SenderStats
	for rows.Next() {
		var (
			s        SenderStats
			p50, p95 float64
		)
		if err := rows.Scan(&s.Sender, &s.Sent, &s.Delivered, &s.Read, &s.Failed, &p50, &p95); err != nil {
			return nil, fmt.Errorf("delivery stats of %s: scan: %w", tenantID, err)
		}
		s.DeliveredRatio = ratio(s.Delivered, s.Sent)
		s.ReadRatio = ratio(s.Read, s.Delivered)
		s.DeliveryP50, s.DeliveryP95 = msDuration(p50), msDuration(p95)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery stats of %s: %w", tenantID, err)
	}
	return out, nil
}

// DropPartitionsBefore is wagate's retention: it drops the partitions (whole
// days, UTC) of message_events and message_status_minute older than before's
// day, and returns how many it dropped. Dropping a partition is cheap and
// immediate, unlike a TTL or a DELETE.
func DropPartitionsBefore(ctx context.Context, conn driver.Conn, db string, before time.Time) (int, error) {
	if err := checkDatabase(db); err != nil {
		return 0, fmt.Errorf("drop partitions: %w", err)
	}
	cutoff, _ := strconv.Atoi(before.UTC().Format("20060102"))
	rows, err := conn.Query(ctx, `SELECT DISTINCT table, partition_id FROM system.parts
WHERE database = ? AND active AND table IN (?, ?, ?, ?)`, db, EventsTable, StatusMinuteTable,
		EventsTable+localSuffix, StatusMinuteTable+localSuffix)
	if err != nil {
		return 0, fmt.Errorf("drop partitions of %s: list: %w", db, err)
	}
	type part struct{ table, id string }
	var old []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("drop partitions of %s: scan: %w", db, err)
		}
		// Partition ids of a Date key are YYYYMMDD; anything else is not ours.
		if n, err := strconv.Atoi(p.id); err == nil && len(p.id) == 8 && n < cutoff {
			old = append(old, p)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("drop partitions of %s: list: %w", db, err)
	}
	for i, p := range old {
		q := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", quoteDB(db), p.table, p.id)
		if err := conn.Exec(ctx, q); err != nil {
			return i, fmt.Errorf("drop partition %s of %s.%s: %w", p.id, db, p.table, err)
		}
	}
	return len(old), nil
}

// day is t's UTC date as ClickHouse's toDate reads it; event_date is UTC too.
func day(t time.Time) string {
	if t.Before(time.Unix(0, 0)) {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format(time.DateOnly)
}

// epochMS is t in Unix milliseconds, never negative (event_ms is unsigned).
func epochMS(t time.Time) uint64 { return uint64(max(t.UnixMilli(), 0)) }

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// msDuration converts quantile milliseconds; NaN (no value) becomes 0.
func msDuration(ms float64) time.Duration {
	if math.IsNaN(ms) || ms <= 0 {
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}
