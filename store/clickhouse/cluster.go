package clickhouse

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// localSuffix names a table's shard on each server of a cluster; the
// Distributed table over the shards keeps the usual name.
const localSuffix = "_local"

// localTables matches the schema's table names, to be given localSuffix.
var localTables = regexp.MustCompile(`\{db\}\.(message_events|message_status_minute_mv|message_status_minute)\b`)

// MigrateCluster is Migrate for cfg.Cluster: on every server of the
// cluster (system.clusters, as the server conn reaches knows it) it makes
// the database, the schema's tables as message_events_local,
// message_status_minute_local and its view, and the Distributed tables
// message_events (sharded by message id, so that an event inserted twice
// lands on one shard and collapses) and message_status_minute over them.
// Every statement is idempotent, as Migrate's. No ZooKeeper is needed (no
// ON CLUSTER): each server is migrated in turn.
func MigrateCluster(ctx context.Context, conn driver.Conn, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	hosts, err := clusterHosts(ctx, conn, cfg.Cluster)
	if err != nil {
		return err
	}
	db := quoteDB(cfg.Database)
	local := localTables.ReplaceAllString(schemaSQL, "{db}.${1}"+localSuffix)
	stmts := splitStatements(local)
	for _, t := range []struct{ table, key string }{{EventsTable, "sipHash64(message_id)"}, {StatusMinuteTable, "rand()"}} {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s AS {db}.%s%s ENGINE = Distributed(%s, %s, %s%s, %s)",
			t.table, t.table, localSuffix, cfg.Cluster, cfg.Database, t.table, localSuffix, t.key))
	}
	for _, h := range hosts {
		c := cfg
		c.Addr = h
		hc, err := Open(ctx, c)
		if err != nil {
			return fmt.Errorf("migrate cluster %s: %w", cfg.Cluster, err)
		}
		err = func() error {
			defer hc.Close()
			if err := hc.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
				return fmt.Errorf("migrate %s on %s: create database: %w", cfg.Database, h, err)
			}
			for i, stmt := range stmts {
				stmt = strings.ReplaceAll(stmt, "{db}", db)
				if err := hc.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("migrate %s on %s: statement %d (%.60q…): %w", cfg.Database, h, i+1, stmt, err)
				}
			}
			for _, col := range addedColumns {
				for _, table := range []string{col.table + localSuffix, col.table} {
					if err := addColumn(ctx, hc, cfg.Database, addedColumn{table, col.name, col.typ}); err != nil {
						return fmt.Errorf("migrate %s on %s: %w", cfg.Database, h, err)
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// clusterHosts are the native-protocol addresses of a cluster's servers.
func clusterHosts(ctx context.Context, conn driver.Conn, cluster string) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT host_address, toUInt16(port) FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cluster, err)
		}
		hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("cluster %s: the server knows no such cluster (remote_servers in its configuration)", cluster)
	}
	return hosts, nil
}

// MigrateFor applies the schema cfg asks for: Migrate on one server, or
// MigrateCluster when cfg.Cluster is set.
func MigrateFor(ctx context.Context, conn driver.Conn, cfg Config) error {
	if cfg.Cluster != "" {
		return MigrateCluster(ctx, conn, cfg)
	}
	return Migrate(ctx, conn, cfg.withDefaults().Database)
}
