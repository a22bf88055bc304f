package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/ctxsleep"
	"github.com/wagate/wagate/store/redis"
)

// liveSource is what the live hub reads: every shard's notices and
// statuses from now on.
type liveSource interface {
	LiveTail(ctx context.Context) (*redis.LiveTail, error)
}

// liveHub fans one tail of Redis's notify and events streams out to the
// inbox clients of this process: it runs while a client listens and stops
// a while after the last one left. Any API process serves any client:
// every process tails the same streams.
type liveHub struct {
	src  liveSource
	log  *slog.Logger
	idle time.Duration

	mu      sync.Mutex
	subs    map[*liveSub]struct{}
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// liveSub is one client's share: the events of its tenant, dropped when
// it does not keep up (the client resynchronises at every reconnection).
type liveSub struct {
	tenant string
	ch     chan redis.LiveEvent
}

func newLiveHub(src liveSource, log *slog.Logger) *liveHub {
	return &liveHub{src: src, log: log, idle: 30 * time.Second, subs: map[*liveSub]struct{}{}}
}

// subscribe adds a client of tenant, starting the tail when none runs.
func (h *liveHub) subscribe(tenant string) *liveSub {
	s := &liveSub{tenant: tenant, ch: make(chan redis.LiveEvent, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s
	}
	h.subs[s] = struct{}{}
	if !h.running {
		h.running = true
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done = cancel, make(chan struct{})
		go h.run(ctx, h.done)
	}
	return s
}

func (h *liveHub) unsubscribe(s *liveSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// close stops the tail and ends every subscription (their streams end
// at once, so that a shutdown does not wait for them).
func (h *liveHub) close() {
	h.mu.Lock()
	h.closed = true
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	h.mu.Lock()
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
	h.mu.Unlock()
}

func (h *liveHub) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	var tail *redis.LiveTail
	var buf []redis.LiveEvent
	lastSub := time.Now()
	for ctx.Err() == nil {
		h.mu.Lock()
		if len(h.subs) > 0 {
			lastSub = time.Now()
		} else if time.Since(lastSub) > h.idle {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		var err error
		if tail == nil {
			if tail, err = h.src.LiveTail(ctx); err != nil {
				h.log.Warn("inbox live tail", "err", err)
				tail = nil
				_ = ctxsleep.Sleep(ctx, time.Second)
				continue
			}
		}
		buf, err = tail.Read(ctx, 2*time.Second, buf[:0])
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("inbox live tail", "err", err)
				_ = ctxsleep.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(buf) == 0 {
			continue
		}
		h.mu.Lock()
		for s := range h.subs {
			for i := range buf {
				if buf[i].TenantID != s.tenant {
					continue
				}
				select {
				case s.ch <- buf[i]:
				default: // a slow client: it resynchronises when it reconnects
				}
			}
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	h.running = false
	h.mu.Unlock()
}

// liveEventJSON is one server-sent event's data.
type liveEventJSON struct {
	Kind           string `json:"kind"`
	ConversationID string `json:"conversation_id,omitempty"`
	MessageID      string `json:"message_id,omitempty"`
	Status         string `json:"status,omitempty"`
	At             string `json:"at"`
}

// handleInboxStream serves GET /api/v1/whatsapp/inbox/stream: the
// tenant's conversation changes as server-sent events (event: the kind;
// data: its conversation, message and status), for the inbox page. A
// stream lasts a few seconds less than the server's write timeout and the
// browser reconnects at once (retry: 1000): every (re)connection starts
// with an event "ready", at which the page reloads what it shows, so that
// nothing in between is missed. Events carry ids only; what they point to
// is read through the API, with its rules.
func (s *Server) handleInboxStream(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	sub := s.live.subscribe(p.Tenant.ID)
	lasts := max(s.cfg.WriteTimeout-2*time.Second, time.Second)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.live.unsubscribe(sub)
		w.WriteString("retry: 1000\nevent: ready\ndata: {}\n\n")
		if w.Flush() != nil {
			return
		}
		end := time.NewTimer(lasts)
		defer end.Stop()
		for {
			select {
			case ev, ok := <-sub.ch:
				if !ok {
					return
				}
				b, _ := json.Marshal(liveEventJSON{Kind: ev.Kind, ConversationID: ev.ConversationID, MessageID: ev.MessageID,
					Status: ev.Status, At: rfc3339(ev.AtMS)})
				w.WriteString("event: ")
				w.WriteString(ev.Kind)
				w.WriteString("\ndata: ")
				w.Write(b)
				w.WriteString("\n\n")
				if w.Flush() != nil {
					return
				}
			case <-end.C:
				return
			}
		}
	})
}
