package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wagate/wagate/store/clickhouse"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestInboxInARealBrowser runs inbox/e2e/inbox.e2e.mjs: Debian's Chromium,
// headless, driven by playwright-core against `wagate dev`, through a
// receptionist's whole guest conversation (see the script). scripts/test
// installs Chromium and the script's npm package; without them this test
// fails saying so. WAGATE_INBOX_SHOTS names a folder for the screenshots
// (docs/screenshots keeps the README's).
func TestInboxInARealBrowser(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: scripts/test installs it (Debian's nodejs)")
	}
	chromium := os.Getenv("WAGATE_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s: scripts/test installs Debian's chromium", chromium)
	}
	e2e, _ := filepath.Abs("../../inbox/e2e")
	if _, err := os.Stat(filepath.Join(e2e, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci` in %s (scripts/test does)", e2e)
	}
	api, simAddr, ops := freeAddr(t), freeAddr(t), freeAddr(t)
	id := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	db := "wagate_e2e_" + id
	cmd := exec.Command(wagateBinary(t), "dev", "-http", api, "-sim", simAddr, "-ops", ops, "-redis", redistest.URL(),
		"-clickhouse", clickhouseAddr(), "-media-dir", t.TempDir(),
		"-prefix", "e2e"+id, "-clickhouse-db", db, "-instance", "e2e-"+id, "-log-level", "warn")
	var mu sync.Mutex
	var log bytes.Buffer
	out, _ := cmd.StderrPipe()
	cmd.Stdout = cmd.Stderr
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		g := gatewayFlags{clickhouse: clickhouseAddr(), chDatabase: db, chUser: "default"}
		if conn, err := clickhouse.Open(ctx, g.chConfig()); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
			conn.Close()
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("wagate dev's log:\n%s", log.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("wagate dev did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	shots := os.Getenv("WAGATE_INBOX_SHOTS")
	run := exec.Command(node, "inbox.e2e.mjs")
	run.Dir = e2e
	run.Env = append(os.Environ(), "BASE=http://"+api, "SIM=http://"+simAddr, "TENANT="+devTenant, "APP_SECRET="+devAppSecret,
		"PHONE_NUMBER_ID="+devNumbers(1)[0].PhoneNumberID, "SENDER=+"+devNumbers(1)[0].DisplayPhoneNumber,
		"CHROMIUM="+chromium, "SHOTS="+shots)
	res, err := run.CombinedOutput()
	t.Logf("the browser's run:\n%s", res)
	if err != nil {
		t.Fatalf("the inbox failed in the browser: %v", err)
	}
}
