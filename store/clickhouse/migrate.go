package clickhouse

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// schemaSQL is applied by Migrate; see its header for the rules it keeps to.
//
//go:embed schema.sql
var schemaSQL string

// Tables and views that Migrate creates.
const (
	// EventsTable holds one row per message status transition (message.Event).
	EventsTable = "message_events"
	// StatusMinuteTable holds events counted per minute, tenant, sender,
	// status and channel, filled by StatusMinuteView.
	StatusMinuteTable = "message_status_minute"
	// StatusMinuteView is the materialized view that fills StatusMinuteTable.
	StatusMinuteView = "message_status_minute_mv"
)

// Migrate creates database (if missing) and applies schema.sql to it. Every
// statement is idempotent, so running it again, or from several instances at
// once, changes nothing.
func Migrate(ctx context.Context, conn driver.Conn, database string) error {
	if err := checkDatabase(database); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := quoteDB(database)
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return fmt.Errorf("migrate: create database %s: %w", database, err)
	}
	for i, stmt := range splitStatements(schemaSQL) {
		stmt = strings.ReplaceAll(stmt, "{db}", db)
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("migrate %s: statement %d (%.60q…): %w", database, i+1, stmt, err)
		}
	}
	return nil
}

// splitStatements splits a SQL script into statements: a statement ends at a
// line whose last non-blank character is ";" (so a ";" inside a line, as in a
// string literal, does not split), and lines that start with "--" are
// comments. The ";" is dropped because the native protocol takes one
// statement without it. Text after the last ";" is a statement too.
func splitStatements(script string) []string {
	var (
		out []string
		cur strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for line := range strings.Lines(script) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		if before, ok := strings.CutSuffix(t, ";"); ok {
			cur.WriteString(before)
			flush()
			continue
		}
		cur.WriteString(strings.TrimRight(line, "\r\n"))
		cur.WriteByte('\n')
	}
	flush()
	return out
}
