package sim

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/gallabox"
)

// The fallback providers' status callbacks. Gallabox posts one
// Message.WA.Status.Received (delivered, read) or Message.WA.Status.Failed
// webhook per status, signed with x-gallabox-signature (it sends none for
// "sent"); ChatApp pushes ChatAppStatus reports (sent, delivered, read,
// failed) to its callback URL, whose token is the credential. Their
// messages are few (fallbacks and secondary numbers), so they have a
// small min-heap and goroutine of their own beside Meta's batching
// scheduler (webhook.go); the statuses follow the Runtime's delays and
// ratios as Meta's do, and a failed post is retried with the same backoff
// until WebhookRetryFor or WebhookMaxAttempts.

// Providers of status callbacks.
const (
	altGallabox uint8 = iota
	altChatApp
)

// altPosters is how many callbacks are posted at once.
const altPosters = 2

// altHook is one status callback, waiting for its time or a retry.
type altHook struct {
	due      int64 // unix ns
	seq      uint64
	provider uint8
	status   uint8 // statusSent … statusFailed
	// id is the provider's message id; to and from the numbers' digits;
	// frame ChatApp's MsgFrameType (template or message).
	id, to, from, frame string
	atMS                int64 // when the status happened, set when first due
	attempts            int
	first               int64 // unix ns of the first attempt
}

// altHooks schedules and posts the callbacks. Its channels are made by
// startAlt, before any send can schedule one.
type altHooks struct {
	mu    sync.Mutex
	heap  []*altHook
	seq   uint64
	wake  chan struct{}
	posts chan *altHook

	posted, failed, retried, dropped, abandoned atomic.Int64
}

func (h *altHooks) less(i, j int) bool {
	a, b := h.heap[i], h.heap[j]
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

// pushLocked adds it to the heap.
func (h *altHooks) pushLocked(it *altHook) {
	h.seq++
	it.seq = h.seq
	h.heap = append(h.heap, it)
	for i := len(h.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.heap[i], h.heap[p] = h.heap[p], h.heap[i]
		i = p
	}
}

func (h *altHooks) popLocked() *altHook {
	it := h.heap[0]
	last := len(h.heap) - 1
	h.heap[0] = h.heap[last]
	h.heap[last] = nil
	h.heap = h.heap[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.heap[i], h.heap[m] = h.heap[m], h.heap[i]
		i = m
	}
	return it
}

// push schedules its and wakes the scheduler.
func (h *altHooks) push(its ...*altHook) {
	h.mu.Lock()
	for _, it := range its {
		h.pushLocked(it)
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// altURL is where provider's callbacks go ("" none).
func (s *Server) altURL(provider uint8) string {
	if provider == altGallabox {
		return s.cfg.GallaboxWebhookURL
	}
	return s.cfg.ChatAppWebhookURL
}

// scheduleAlt schedules the statuses of a message provider accepted at
// now, to (and from) in digits; typ is ChatApp's Type of the send.
func (s *Server) scheduleAlt(provider uint8, id, to, from, typ string, now time.Time) {
	if s.altURL(provider) == "" {
		return
	}
	rt := s.rt.Load()
	at := now.UnixNano()
	hook := func(status uint8, delay time.Duration) *altHook {
		return &altHook{due: at + int64(delay), provider: provider, status: status, id: id, to: to, from: from, frame: typ}
	}
	var its []*altHook
	if provider == altChatApp {
		its = append(its, hook(statusSent, rt.StatusDelays.Sent))
	}
	switch {
	case rt.FailRatio > 0 && rand.Float64() < rt.FailRatio:
		its = append(its, hook(statusFailed, rt.StatusDelays.Delivered))
	default:
		its = append(its, hook(statusDelivered, rt.StatusDelays.Delivered))
		if rt.ReadRatio >= 1 || rand.Float64() < rt.ReadRatio {
			its = append(its, hook(statusRead, rt.StatusDelays.Read))
		}
	}
	s.alt.push(its...)
}

// startAlt starts the callbacks' scheduler and posters; Start calls it.
func (s *Server) startAlt() {
	s.alt.wake = make(chan struct{}, 1)
	s.alt.posts = make(chan *altHook, 4*altPosters)
	s.wg.Add(1 + altPosters)
	go s.runAltScheduler()
	for i := 0; i < altPosters; i++ {
		go s.runAltPoster()
	}
}

// runAltScheduler hands due callbacks to the posters and sleeps until the
// next is due or one is pushed.
func (s *Server) runAltScheduler() {
	defer s.wg.Done()
	h := &s.alt
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*altHook
	for {
		now := time.Now().UnixNano()
		next := int64(maxTime)
		h.mu.Lock()
		for len(h.heap) > 0 && h.heap[0].due <= now {
			ready = append(ready, h.popLocked())
		}
		if len(h.heap) > 0 {
			next = h.heap[0].due
		}
		h.mu.Unlock()
		for i, it := range ready {
			select {
			case h.posts <- it:
				ready[i] = nil
			case <-s.stop:
				s.alt.abandoned.Add(int64(len(ready) - i))
				return
			}
		}
		ready = ready[:0]
		if !sleepUntil(timer, next, h.wake, s.stop) {
			return
		}
	}
}

func (s *Server) runAltPoster() {
	defer s.wg.Done()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var body []byte
	for {
		select {
		case <-s.stop:
			return
		case it := <-s.alt.posts:
			body = s.postAlt(it, req, resp, body[:0])
		}
	}
}

// postAlt posts one callback, retrying it later when the receiver does not
// take it; it returns body's buffer for reuse.
func (s *Server) postAlt(it *altHook, req *fasthttp.Request, resp *fasthttp.Response, body []byte) []byte {
	now := time.Now()
	if it.first == 0 {
		it.first = now.UnixNano()
		it.atMS = now.UnixMilli()
	}
	it.attempts++
	req.Reset()
	req.SetRequestURI(s.altURL(it.provider))
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentTypeBytes(contentTypeJSON)
	if it.provider == altGallabox {
		body = appendGallaboxStatus(body, it)
		event := gallabox.EventStatusReceived
		if it.status == statusFailed {
			event = gallabox.EventStatusFailed
		}
		req.Header.SetUserAgent("Gallabox-Webhooks (wagate-sim)")
		req.Header.Set(gallabox.EventHeader, event)
		req.Header.Set(gallabox.SignatureHeader, string(gallabox.AppendSignature(nil, body, []byte(s.cfg.GallaboxWebhookSecret))))
	} else {
		body = appendChatAppReport(body, it)
		req.Header.SetUserAgent("ChatApp-Receipts (wagate-sim)")
	}
	req.SetBodyRaw(body)
	err := s.client.DoTimeout(req, resp, s.cfg.WebhookTimeout)
	req.ResetBody()
	if err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
		s.alt.posted.Add(1)
		return body
	}
	s.alt.failed.Add(1)
	if s.cfg.WebhookMaxAttempts > 0 && it.attempts >= s.cfg.WebhookMaxAttempts || now.UnixNano()-it.first >= int64(s.cfg.WebhookRetryFor) {
		s.alt.dropped.Add(1)
		return body
	}
	s.alt.retried.Add(1)
	it.due = time.Now().UnixNano() + int64(s.backoff(it.attempts))
	s.alt.push(it)
	return body
}

// abandonAlt counts the callbacks never posted once the goroutines are
// gone; Shutdown calls it.
func (s *Server) abandonAlt() {
	h := &s.alt
	h.mu.Lock()
	h.abandoned.Add(int64(len(h.heap)))
	h.heap = nil
	h.mu.Unlock()
	for {
		select {
		case <-h.posts:
			h.abandoned.Add(1)
		default:
			return
		}
	}
}

// appendGallaboxStatus appends a status webhook body in the shape of
// Gallabox's API reference.
func appendGallaboxStatus(b []byte, h *altHook) []byte {
	b = append(b, `{"id":`...)
	b = message.AppendJSONString(b, h.id)
	b = append(b, `,"status":"`...)
	b = append(b, statusNames[h.status]...)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, h.atMS/1000, 10)
	b = append(b, `","errors":[`...)
	if h.status == statusFailed {
		b = append(b, `{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}`...)
	}
	b = append(b, `],"message":{"recipient_id":`...)
	b = message.AppendJSONString(b, h.to)
	b = append(b, `},"recipient_id":`...)
	b = message.AppendJSONString(b, h.to)
	b = append(b, `,"localMessageId":`...)
	b = message.AppendJSONString(b, h.id)
	return append(b, '}')
}
