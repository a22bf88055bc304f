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
	for _, c := range addedColumns {
		if err := addColumn(ctx, conn, database, c); err != nil {
			return fmt.Errorf("migrate %s: %w", database, err)
		}
	}
	return nil
}

// addedColumn is a column schema.sql's CREATE TABLE has that a table made
// by an earlier release lacks.
type addedColumn struct{ table, name, typ string }

// addedColumns are added to existing tables by Migrate, in order (each
// after the one before it, as in schema.sql). ClickHouse 18.16 has no ADD
// COLUMN IF NOT EXISTS: system.columns says whether a column is there.
var addedColumns = [...]addedColumn{
	{EventsTable, "pricing_model", "String"},
	{EventsTable, "pricing_type", "String"},
	{EventsTable, "campaign_id", "String"},
	{EventsTable, "template_name", "String"},
}

// addColumn adds c to its table unless it is there already. Two instances
// migrating at once may both try: the loser's error is forgiven once the
// column is found.
func addColumn(ctx context.Context, conn driver.Conn, database string, c addedColumn) error {
	has := func() (bool, error) {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT toUInt64(count()) FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			database, c.table, c.name).Scan(&n)
		return n > 0, err
	}
	ok, err := has()
	if err != nil {
		return fmt.Errorf("column %s.%s: %w", c.table, c.name, err)
	}
	if ok {
		return nil
	}
	q := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", quoteDB(database), c.table, c.name, c.typ)
	if err := conn.Exec(ctx, q); err != nil {
		if ok, _ := has(); ok {
			return nil
		}
		return fmt.Errorf("add column %s.%s: %w", c.table, c.name, err)
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
