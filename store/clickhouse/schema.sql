-- wagate's ClickHouse schema, applied by Migrate (migrate.go).
--
-- Rules, because tests run on ClickHouse 18.16 and users run current releases:
-- every statement is idempotent (IF NOT EXISTS) and ends with ";" at the end
-- of a line (Migrate splits there); {db} is replaced by the quoted database
-- name; no DateTime64, LowCardinality or table TTL (retention is
-- DropPartitionsBefore, dropping whole days); new-style MergeTree syntax only.

-- One row per status transition of a message (message.Event). The loader may
-- insert a batch twice (a crash or a failed ack between insert and ack), so
-- the sorting key identifies an event and ReplacingMergeTree keeps one row per
-- key on merge; readers that need exact numbers use FINAL or uniqExact.
-- Duplicates of one event share event_date, so they share a partition and
-- always collapse.
CREATE TABLE IF NOT EXISTS {db}.message_events
(
    event_date          Date,
    event_time          DateTime,
    event_ms            UInt64,
    message_id          String,
    tenant_id           String,
    sender              String,
    recipient           String,
    status              String,
    channel             String,
    provider            String,
    provider_message_id String,
    message_type        String,
    lane                String,
    attempt             UInt16,
    error_code          Int32,
    error_title         String,
    pricing_category    String,
    billable            UInt8,
    conversation_id     String,
    staff_member_id     String,
    provider_conversation_id String,
    shard               UInt16,
    stream_id           String,
    inserted_ms         UInt64,
    pricing_model       String,
    pricing_type        String,
    campaign_id         String,
    template_name       String
)
ENGINE = ReplacingMergeTree(inserted_ms)
PARTITION BY event_date
ORDER BY (tenant_id, message_id, status, attempt);

-- Events per minute for Grafana. A materialized view counts rows as they are
-- inserted, so a batch the loader inserted twice is counted twice here (it
-- collapses only in message_events): good for rates and trends; exact figures
-- come from message_events.
CREATE TABLE IF NOT EXISTS {db}.message_status_minute
(
    minute    DateTime,
    tenant_id String,
    sender    String,
    status    String,
    channel   String,
    events    UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toDate(minute)
ORDER BY (minute, tenant_id, sender, status, channel);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.message_status_minute_mv
TO {db}.message_status_minute
AS SELECT
    toStartOfMinute(event_time) AS minute,
    tenant_id,
    sender,
    status,
    channel,
    toUInt64(count()) AS events
FROM {db}.message_events
GROUP BY minute, tenant_id, sender, status, channel;
