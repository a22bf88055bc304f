package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wagate/wagate/store/clickhouse"
)

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var g gatewayFlags
	g.register(fs)
	configPath := fs.String("config", env("WAGATE_CONFIG", ""), "tenants and provider accounts, JSON (WAGATE_CONFIG)")
	fs.Parse(args)
	if *configPath == "" {
		return errors.New("serve needs -config (or WAGATE_CONFIG): see README, 'Configuration'")
	}
	fc, err := loadFileConfig(*configPath)
	if err != nil {
		return err
	}
	log, err := startLogging(&g, fs, os.Stderr)
	if err != nil {
		return err
	}
	gw, err := startGateway(&g, fc, log)
	if err != nil {
		return err
	}
	bi := readBuildInfo()
	log.Info("wagate serving", "api", gw.api.Addr(), "ops", gw.opsAddr(), "redis", redactURL(g.redisURL), "clickhouse", redactURL(g.clickhouse),
		"instance", g.instance, "version", bi.Version, "commit", bi.Commit)
	waitForSignal()
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return gw.shutdown(ctx)
}

// waitForSignal returns on SIGINT or SIGTERM.
func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	signal.Stop(ch)
}

func cmdMigrate(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	var g gatewayFlags
	g.register(fs)
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := g.chConfig()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := clickhouse.MigrateFor(ctx, conn, cfg); err != nil {
		return err
	}
	fmt.Printf("clickhouse schema up to date in database %s at %s\n", cfg.Database, cfg.Addr)
	return nil
}
