// Command wabench loads a running wagate gateway with the scenarios of
// issue 5 and measures this machine's own ceilings for the same work in
// the same run:
//
//	wabench -scenario single -target http://127.0.0.1:38080 -numbers 16 -json out.json -md out.md
//
// Scenarios: single, bulk, webhooks, e2e, backlog, bare (against a
// `wabench -bare` server), or all (the first four). It prints a progress line per run on stderr and a closing table on
// stdout, and writes the report as JSON (-json) and Markdown (-md).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wagate/wagate/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wabench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	fs := flag.NewFlagSet("wabench", flag.ExitOnError)
	scenario := fs.String("scenario", "all", "what to run, comma-separated: "+strings.Join(bench.Scenarios, ", ")+", or all (the first four)")
	fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:38080", "the gateway's API")
	fs.StringVar(&cfg.Sim, "sim", "http://127.0.0.1:38090", "the gateway's provider simulator (\"\" for none)")
	fs.StringVar(&cfg.Peer, "peer", "", "the peer gateway to compare the single scenario with (bench/peers/asynq, e.g. http://127.0.0.1:18085; \"\" for none)")
	fs.StringVar(&cfg.Token, "token", "dev-staff-token", "a staff token of the tenant")
	fs.StringVar(&cfg.AdminToken, "admin-token", "dev-admin-token", "an admin token of the tenant: the run turns its 24-hour window rule off and back")
	fs.StringVar(&cfg.AppSecret, "app-secret", "dev-app-secret", "the Meta app secret webhooks are signed with")
	fs.IntVar(&cfg.Numbers, "numbers", 1, "sender numbers to spread over (the gateway's `dev -numbers`)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "each timed load run")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "workers, each with one keep-alive connection")
	fs.DurationVar(&cfg.CeilingDuration, "ceiling-duration", 10*time.Second, "each ceiling run")
	fs.BoolVar(&cfg.NoCeilings, "no-ceilings", false, "skip the ceilings (no ratios)")
	fs.StringVar(&cfg.Text, "text", bench.DefaultText, "every message's text")
	fs.IntVar(&cfg.VerifySample, "verify-sample", 0, "check so many accepted messages through the status endpoint (0: all)")
	fs.IntVar(&cfg.VerifyConcurrency, "verify-concurrency", 32, "status checks in flight")
	fs.StringVar(&cfg.RedisURL, "redis", "redis://127.0.0.1:6379/0", "the gateway's Redis (Redis ceiling)")
	fs.StringVar(&cfg.ClickHouse.Addr, "clickhouse", "127.0.0.1:9000", "the gateway's ClickHouse, native protocol (ClickHouse ceiling, e2e)")
	fs.StringVar(&cfg.ClickHouse.Database, "clickhouse-db", "wagate", "the gateway's ClickHouse database (`dev -clickhouse-db`)")
	fs.StringVar(&cfg.ClickHouse.Username, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&cfg.ClickHouse.Password, "clickhouse-password", "", "ClickHouse password")
	fs.IntVar(&cfg.BulkSize, "bulk-size", 1000, "messages per batch-send")
	fs.IntVar(&cfg.BulkConcurrency, "bulk-concurrency", 4, "batch-sends in flight (and Redis ceiling writers)")
	fs.IntVar(&cfg.BulkMessages, "bulk-messages", 500_000, "most messages the bulk run sends (the tenant's queue cap is 1 000 000)")
	fs.IntVar(&cfg.WebhookMessages, "webhook-messages", 50_000, "messages each webhooks sub-run reports delivered and read")
	fs.IntVar(&cfg.WebhookBatch, "webhook-batch", 50, "statuses per envelope of the batched webhooks run")
	fs.DurationVar(&cfg.E2EDuration, "e2e-duration", 60*time.Second, "how long e2e sends")
	fs.Float64Var(&cfg.E2ERate, "e2e-rate", 10_000, "e2e sends per second (0: as fast as the API answers)")
	fs.DurationVar(&cfg.E2EWait, "e2e-wait", 60*time.Second, "e2e gives up on the read rows after so long without a new one")
	rates := fs.String("rates", "1000,80", "the rates scenario: the messages per second of the tenant's first numbers, as the gateway runs them (wagate dev -numbers 2 -rates 1000,80)")
	fs.DurationVar(&cfg.RatesDuration, "rates-duration", 60*time.Second, "how long the rates scenario measures each number's sends")
	fs.IntVar(&cfg.BacklogMessages, "backlog", 1_000_000, "messages the backlog scenario queues")
	fs.BoolVar(&cfg.BacklogSingle, "backlog-single", false, "queue the backlog with single sends instead of batch-sends")
	fs.StringVar(&cfg.Ops, "ops", "http://127.0.0.1:38060", "the gateway's ops listener (its -ops address), where its /metrics is read (\"\" for none)")
	fs.StringVar(&cfg.ProfileURL, "profile", "", "the gateway's ops listener (its -ops address, http://127.0.0.1:38060): save a CPU profile of each timed run")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", ".", "where -profile saves <run>.pprof")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	mdOut := fs.String("md", "", "write the report as Markdown to this file")
	gatewayCmd := fs.String("gateway-cmd", "", "the gateway's command line, recorded in the report")
	quiet := fs.Bool("quiet", false, "no progress lines")
	bare := fs.String("bare", "", "only serve the HTTP ceiling's bare handler on this address until interrupted (the ceiling across processes: point -target of another wabench at it)")
	fs.Parse(os.Args[1:])
	for _, f := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("-rates %q: want positive messages per second, comma-separated", *rates)
		}
		cfg.RatesMPS = append(cfg.RatesMPS, v)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *bare != "" {
		ln, err := net.Listen("tcp", *bare)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bare fasthttp handler on http://%s (answers 202 %s)\n", ln.Addr(), "to every request")
		return bench.ServeBare(ctx, ln)
	}

	if !*quiet {
		cfg.Progress = bench.NewProgress(os.Stderr, bench.IsTerminal(os.Stderr))
	}
	s, err := bench.NewSuite(cfg, "wabench "+strings.Join(os.Args[1:], " "), *gatewayCmd)
	if err != nil {
		return err
	}
	defer s.Close()
	runErr := s.Run(ctx, strings.Split(*scenario, ","))

	// Whatever ran is reported, also after an error or Ctrl-C.
	rep := s.Report()
	fmt.Println()
	rep.WriteTable(os.Stdout)
	if err := writeFile(*jsonOut, rep.WriteJSON); err != nil {
		return err
	}
	if err := writeFile(*mdOut, rep.WriteMarkdown); err != nil {
		return err
	}
	return runErr
}

func writeFile(path string, write func(w io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
