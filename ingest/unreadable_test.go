package ingest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/internal/syncbuf"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestUnreadableRequestsNeverShowTheirSecrets: a request fasthttp cannot
// read is answered 400 in the API's format, and neither the answer nor any
// log line (at debug level) quotes its bytes: its bearer token stays
// secret.
func TestUnreadableRequestsNeverShowTheirSecrets(t *testing.T) {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2})
	must(t, err)
	t.Cleanup(store.Close)
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	srv, err := NewServer(Config{Addr: "127.0.0.1:0"}, store, NewTokens(), reg, reg,
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	must(t, err)
	must(t, srv.Start())
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	const secret = "wgt_live_s3cr3t_t0k3n_9f8e7d"
	tests := []struct{ name, raw string }{
		{"a broken header line", "POST /api/v1/whatsapp/messages/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nthis is no header\r\n\r\n"},
		{"a bad content length", "POST /api/v1/whatsapp/messages/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: -5\r\n\r\n"},
		{"a header too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nX-Pad: " + strings.Repeat("a", 9000) + "\r\n\r\n"},
		{"no HTTP at all", "Authorization: Bearer " + secret + "\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr())
			must(t, err)
			defer c.Close()
			io.WriteString(c, tt.raw)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			answer, _ := io.ReadAll(bufio.NewReader(c))
			if !bytes.Contains(answer, []byte(" 400 ")) && !bytes.Contains(answer, []byte(" 431 ")) {
				t.Fatalf("answer %q, want 400", answer)
			}
			if bytes.Contains(answer, []byte(secret)) {
				t.Fatalf("the answer shows the token: %q", answer)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the server's last log lines
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("a log line shows the token:\n%s", logs.String())
	}
}
