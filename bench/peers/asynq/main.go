// Command asynq-gateway is the peer wabench measures wagate against: the
// WhatsApp gateway a Go team would write in an afternoon instead, on
// net/http, github.com/hibiken/asynq (Redis-backed task queue) and
// golang.org/x/time/rate. It takes wagate's messages/send body and answers
// 202 with a message id once asynq holds the task in Redis; its workers
// send each task to the Meta Cloud API (wagate's simulator) at a rate per
// number. No 24-hour window, opt-out, conversations or batches: only what
// the accept path of a send needs. It lives in its own module so that
// wagate's does not depend on asynq.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/time/rate"
)

type sendRequest struct {
	GuestPhone  string `json:"guest_phone"`
	MessageType string `json:"message_type"`
	Content     struct {
		Text string `json:"text"`
	} `json:"content"`
	From string `json:"from"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18085", "listen address")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	simURL := flag.String("sim", "http://127.0.0.1:18090", "Meta Cloud API (wagate's simulator)")
	token := flag.String("token", "dev-staff-token", "the Bearer token API calls carry")
	simToken := flag.String("sim-token", "dev-sim-access-token", "the Meta access token")
	mps := flag.Float64("rate", 80, "messages per second per number")
	workers := flag.Int("workers", 20, "asynq worker concurrency")
	flag.Parse()

	redis := asynq.RedisClientOpt{Addr: *redisAddr}
	client := asynq.NewClient(redis)
	defer client.Close()
	http.HandleFunc("POST /api/v1/whatsapp/messages/send", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+*token {
			http.Error(w, `{"error":{"code":"UNAUTHORIZED"}}`, http.StatusUnauthorized)
			return
		}
		var req sendRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil ||
			!strings.HasPrefix(req.GuestPhone, "+") || len(req.GuestPhone) < 8 || req.MessageType != "text" || req.Content.Text == "" {
			http.Error(w, `{"error":{"code":"INVALID_REQUEST"}}`, http.StatusBadRequest)
			return
		}
		payload, _ := json.Marshal(req)
		info, err := client.EnqueueContext(r.Context(), asynq.NewTask("whatsapp:send", payload), asynq.MaxRetry(5))
		if err != nil {
			http.Error(w, `{"error":{"code":"SERVICE_UNAVAILABLE"}}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"message_id":%q,"status":"queued"}`, info.ID)
	})

	var mu sync.Mutex
	limiters := map[string]*rate.Limiter{}
	limiter := func(from string) *rate.Limiter {
		mu.Lock()
		defer mu.Unlock()
		l := limiters[from]
		if l == nil {
			l = rate.NewLimiter(rate.Limit(*mps), max(1, int(*mps/10)))
			limiters[from] = l
		}
		return l
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	mux := asynq.NewServeMux()
	mux.HandleFunc("whatsapp:send", func(ctx context.Context, t *asynq.Task) error {
		var req sendRequest
		if err := json.Unmarshal(t.Payload(), &req); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		if err := limiter(req.From).Wait(ctx); err != nil {
			return err
		}
		// The simulator's numbers: +15550001000+i is phone number id 100000000000001+i.
		var n int
		fmt.Sscanf(strings.TrimPrefix(req.From, "+1555000"), "%d", &n)
		body, _ := json.Marshal(map[string]any{"messaging_product": "whatsapp", "to": strings.TrimPrefix(req.GuestPhone, "+"),
			"type": "text", "text": map[string]string{"body": req.Content.Text}})
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v23.0/1000000000%05d/messages", *simURL, n-1000+1), bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+*simToken)
		hr.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(hr)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("provider answered %d", resp.StatusCode)
		}
		return nil
	})
	srv := asynq.NewServer(redis, asynq.Config{Concurrency: *workers, LogLevel: asynq.WarnLevel})
	if err := srv.Start(mux); err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Addr: *addr, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.ListenAndServe(); err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Fprintf(os.Stderr, "asynq gateway on http://%s (Redis %s)\n", *addr, *redisAddr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(ctx)
	srv.Shutdown()
}
