package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
)

const maxTime = math.MaxInt64

// scheduler holds what is due later: the next status of each accepted
// message and the webhooks waiting for a retry, in one min-heap ordered by
// due time, driven by one goroutine (runScheduler).
type scheduler struct {
	mu   sync.Mutex
	heap []item
	seq  uint64
	// nextWake is when runScheduler will look next; a push due sooner
	// wakes it.
	nextWake int64
	wake     chan struct{}
}

// item is one heap entry: a webhook to retry, or a message whose stage is
// due. Items are values so the heap does not allocate per message.
type item struct {
	due  int64 // unix ns
	seq  uint64
	post *post
	num  *number
	// wamid and to (digits) name the message, accepted is when (unix ns).
	wamid    string
	to       string
	accepted int64
	stage    uint8
	pricing  uint8
}

// Message stages, one status each.
const (
	stageSent uint8 = iota
	stageDelivered
	stageRead
)

// Status kinds in webhooks.
const (
	statusSent uint8 = iota
	statusDelivered
	statusRead
	statusFailed
)

var statusNames = [...]string{"sent", "delivered", "read", "failed"}

// statusEvent is one status waiting in a post.
type statusEvent struct {
	wamid, to string
	kind      uint8
	pricing   uint8
	at        int64 // unix s
	accepted  int64 // unix s
}

// post is one webhook delivery: statuses of one number, or one inbound
// message. Its body and signature are built once and resent as they are on
// every retry, as Meta does. A post belongs to whoever holds it: the open
// batch of its number, the posts channel, a poster, or the heap.
type post struct {
	num      *number
	statuses []statusEvent
	inbound  bool
	body     []byte
	sig      []byte
	attempts int
	first    int64 // unix ns of the first attempt
	due      int64 // unix ns at which an open batch is flushed
}

var postPool = sync.Pool{New: func() any { return new(post) }}

func newPost(num *number) *post {
	p := postPool.Get().(*post)
	p.num = num
	return p
}

func releasePost(p *post) {
	clear(p.statuses)
	*p = post{statuses: p.statuses[:0], body: p.body[:0], sig: p.sig[:0]}
	postPool.Put(p)
}

// size is what a post counts for in the statistics.
func (p *post) size() int64 {
	if p.inbound {
		return 1
	}
	return int64(len(p.statuses))
}

func (h *scheduler) less(i, j int) bool {
	a, b := &h.heap[i], &h.heap[j]
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

// pushLocked adds it and reports whether the scheduler must wake for it.
func (h *scheduler) pushLocked(it item) bool {
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
	if it.due < h.nextWake {
		h.nextWake = it.due
		return true
	}
	return false
}

func (h *scheduler) popLocked() item {
	it := h.heap[0]
	last := len(h.heap) - 1
	h.heap[0] = h.heap[last]
	h.heap[last] = item{}
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

func (s *Server) push(it item) {
	s.sched.mu.Lock()
	wake := s.sched.pushLocked(it)
	s.sched.mu.Unlock()
	if wake {
		select {
		case s.sched.wake <- struct{}{}:
		default:
		}
	}
}

// scheduleMessage schedules the first status of an accepted message.
func (s *Server) scheduleMessage(num *number, wamid, to string, at time.Time, rt *Runtime, pricing uint8) {
	ns := at.UnixNano()
	s.stats.statusesScheduled.Add(1)
	s.push(item{due: ns + int64(rt.StatusDelays.Sent), num: num, wamid: wamid, to: to, accepted: ns, stage: stageSent, pricing: pricing})
}

// How a message is priced, as Meta's per-message pricing (PMP, since July
// 2025) does: a template is charged by its category; a free-form message,
// which only the customer service window allows, is free.
const (
	pricingService uint8 = iota
	pricingUtility
	pricingMarketing
	pricingAuthentication
)

// pricingObjects are the status webhook's pricing objects by pricing.
var pricingObjects = [...]string{
	pricingService:        `"pricing":{"billable":false,"pricing_model":"PMP","category":"service","type":"free_customer_service"}`,
	pricingUtility:        `"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}`,
	pricingMarketing:      `"pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}`,
	pricingAuthentication: `"pricing":{"billable":true,"pricing_model":"PMP","category":"authentication","type":"regular"}`,
}

// originTypes are the conversation object's origin by pricing.
var originTypes = [...]string{pricingService: "service", pricingUtility: "utility",
	pricingMarketing: "marketing", pricingAuthentication: "authentication"}

// pricingOf is how a template of category c is priced.
func pricingOf(c message.TemplateCategory) uint8 {
	switch c {
	case message.CategoryMarketing:
		return pricingMarketing
	case message.CategoryAuthentication:
		return pricingAuthentication
	case message.CategoryUtility:
		return pricingUtility
	}
	return pricingService
}

// runScheduler moves due statuses into their number's batch, hands full or
// expired batches and due retries to the posters, and sleeps until the
// next due time or a wake.
func (s *Server) runScheduler() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*post
	h := &s.sched
	for {
		now := time.Now().UnixNano()
		rt := s.rt.Load()
		h.mu.Lock()
		for len(h.heap) > 0 && h.heap[0].due <= now {
			it := h.popLocked()
			if it.post != nil {
				ready = append(ready, it.post)
				continue
			}
			ready = s.fireLocked(&it, now, rt, ready)
		}
		next := int64(maxTime)
		if len(h.heap) > 0 {
			next = h.heap[0].due
		}
		for _, n := range s.numList {
			switch p := n.open; {
			case p == nil:
			case p.due <= now:
				ready = append(ready, p)
				n.open = nil
			case p.due < next:
				next = p.due
			}
		}
		h.nextWake = next
		h.mu.Unlock()

		for i, p := range ready {
			select {
			case s.posts <- p:
				ready[i] = nil
			case <-s.stop:
				for _, p := range ready[i:] {
					s.stats.abandoned.Add(p.size())
				}
				return
			}
		}
		ready = ready[:0]
		if !sleepUntil(timer, next, h.wake, s.stop) {
			return
		}
	}
}

// fireLocked emits the status of a due stage and schedules the next.
func (s *Server) fireLocked(it *item, now int64, rt *Runtime, ready []*post) []*post {
	next := it.stage + 1
	var kind uint8
	switch it.stage {
	case stageSent:
		kind = statusSent
	case stageDelivered:
		kind = statusDelivered
		if rt.FailRatio > 0 && rand.Float64() < rt.FailRatio {
			kind = statusFailed
			next = 0
		} else if rt.ReadRatio < 1 && rand.Float64() >= rt.ReadRatio {
			next = 0
		}
	default:
		kind = statusRead
		next = 0
	}
	if next != 0 {
		delay := rt.StatusDelays.Delivered
		if next == stageRead {
			delay = rt.StatusDelays.Read
		}
		s.stats.statusesScheduled.Add(1)
		s.sched.pushLocked(item{due: max(it.accepted+int64(delay), now), num: it.num, wamid: it.wamid, to: it.to, accepted: it.accepted, stage: next, pricing: it.pricing})
	}
	p := it.num.open
	if p == nil {
		p = newPost(it.num)
		p.due = now + int64(s.cfg.WebhookFlush)
		it.num.open = p
	}
	p.statuses = append(p.statuses, statusEvent{wamid: it.wamid, to: it.to, kind: kind, pricing: it.pricing, at: now / 1e9, accepted: it.accepted / 1e9})
	if len(p.statuses) >= s.cfg.MaxStatusesPerWebhook {
		ready = append(ready, p)
		it.num.open = nil
	}
	return ready
}

// runPoster delivers posts until Shutdown.
func (s *Server) runPoster() {
	defer s.wg.Done()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	mac := hmac.New(sha256.New, []byte(s.cfg.AppSecret))
	for {
		select {
		case <-s.stop:
			return
		case p := <-s.posts:
			s.deliver(p, req, resp, mac)
		}
	}
}

var (
	headerSignature = []byte(meta.SignatureHeader)
	contentTypeJSON = []byte("application/json")
)

func (s *Server) deliver(p *post, req *fasthttp.Request, resp *fasthttp.Response, mac hash.Hash) {
	if len(p.sig) == 0 {
		if !p.inbound {
			p.body = s.appendStatusBody(p.body[:0], p)
		}
		mac.Reset()
		mac.Write(p.body)
		var sum [sha256.Size]byte
		p.sig = append(p.sig[:0], "sha256="...)
		p.sig = hex.AppendEncode(p.sig, mac.Sum(sum[:0]))
		p.first = time.Now().UnixNano()
	}
	p.attempts++
	req.Reset()
	req.SetRequestURI(s.cfg.WebhookURL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentTypeBytes(contentTypeJSON)
	req.Header.SetBytesKV(headerSignature, p.sig)
	req.SetBodyRaw(p.body)
	err := s.client.DoTimeout(req, resp, s.cfg.WebhookTimeout)
	req.ResetBody()
	// The post's own counts first, the webhooks' last: whoever sees a
	// webhook counted sees its statuses counted too.
	if err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300 {
		if p.inbound {
			s.stats.inbounds.Add(1)
		} else {
			s.stats.statusesPosted.Add(int64(len(p.statuses)))
			s.metrics.statuses.Add(float64(len(p.statuses)))
		}
		s.stats.posted.Add(1)
		s.metrics.posted.Inc()
		releasePost(p)
		return
	}
	s.stats.failed.Add(1)
	s.metrics.failed.Inc()
	now := time.Now().UnixNano()
	if s.cfg.WebhookMaxAttempts > 0 && p.attempts >= s.cfg.WebhookMaxAttempts || now-p.first >= int64(s.cfg.WebhookRetryFor) {
		if !p.inbound {
			s.stats.statusesDropped.Add(int64(len(p.statuses)))
		}
		s.stats.dropped.Add(1)
		s.metrics.dropped.Inc()
		releasePost(p)
		return
	}
	s.stats.retried.Add(1)
	s.push(item{due: now + int64(s.backoff(p.attempts)), post: p})
}

// backoff is the wait before attempt n+1: exponential from
// WebhookBackoffMin up to WebhookBackoffMax, with ±20% jitter.
func (s *Server) backoff(attempts int) time.Duration {
	d := s.cfg.WebhookBackoffMin
	for i := 1; i < attempts && d < s.cfg.WebhookBackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.WebhookBackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// abandonRest counts what was never posted once the goroutines are gone.
func (s *Server) abandonRest() {
	h := &s.sched
	h.mu.Lock()
	for _, it := range h.heap {
		if it.post != nil {
			s.stats.abandoned.Add(it.post.size())
		} else {
			s.stats.abandoned.Add(1)
		}
	}
	h.heap = nil
	for _, n := range s.numList {
		if n.open != nil {
			s.stats.abandoned.Add(n.open.size())
			n.open = nil
		}
	}
	h.mu.Unlock()
	for {
		select {
		case p := <-s.posts:
			s.stats.abandoned.Add(p.size())
		default:
			return
		}
	}
}

// appendEnvelopeHead writes Meta's envelope up to the value's own fields.
func appendEnvelopeHead(b []byte, n *number) []byte {
	b = append(b, `{"object":"whatsapp_business_account","entry":[{"id":`...)
	b = message.AppendJSONString(b, n.WABAID)
	b = append(b, `,"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":`...)
	b = message.AppendJSONString(b, n.DisplayPhoneNumber)
	b = append(b, `,"phone_number_id":`...)
	b = message.AppendJSONString(b, n.PhoneNumberID)
	return append(b, `},`...)
}

const envelopeTail = `},"field":"messages"}]}]}`

// appendStatusBody writes a status webhook of p's statuses.
func (s *Server) appendStatusBody(b []byte, p *post) []byte {
	b = appendEnvelopeHead(b, p.num)
	b = append(b, `"statuses":[`...)
	for i := range p.statuses {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStatus(b, p.num, &p.statuses[i])
	}
	b = append(b, ']')
	return append(b, envelopeTail...)
}

func appendStatus(b []byte, n *number, e *statusEvent) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, e.wamid...)
	b = append(b, `","status":"`...)
	b = append(b, statusNames[e.kind]...)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, e.at, 10)
	if message.ValidBSUID(e.to) {
		b = append(b, `","recipient_user_id":"`...)
	} else {
		b = append(b, `","recipient_id":"`...)
	}
	b = append(b, e.to...)
	b = append(b, '"')
	switch e.kind {
	case statusSent, statusDelivered:
		// One conversation per number, recipient and day, as a 24-hour
		// service window would give.
		day := e.accepted / 86400
		b = append(b, `,"conversation":{"id":"`...)
		b = appendConversationID(b, n.PhoneNumberID, e.to, day)
		b = append(b, `","expiration_timestamp":"`...)
		b = strconv.AppendInt(b, (day+1)*86400, 10)
		b = append(b, `","origin":{"type":"`...)
		b = append(b, originTypes[e.pricing]...)
		b = append(b, `"}},`...)
		b = append(b, pricingObjects[e.pricing]...)
	case statusFailed:
		b = append(b, `,"errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]`...)
	}
	return append(b, '}')
}

// appendConversationID appends 32 hex digits derived from the number, the
// recipient and the day (two FNV-1a hashes).
func appendConversationID(b []byte, phoneID, to string, day int64) []byte {
	h1, h2 := uint64(14695981039346656037), uint64(0x9e3779b97f4a7c15)
	mix := func(c byte) {
		h1 = (h1 ^ uint64(c)) * 1099511628211
		h2 = (h2 ^ uint64(c)) * 1099511628211
	}
	for i := 0; i < len(phoneID); i++ {
		mix(phoneID[i])
	}
	mix('/')
	for i := 0; i < len(to); i++ {
		mix(to[i])
	}
	for i := 0; i < 8; i++ {
		mix(byte(day >> (8 * i)))
	}
	var raw [16]byte
	for i := 0; i < 8; i++ {
		raw[i] = byte(h1 >> (8 * i))
		raw[8+i] = byte(h2 >> (8 * i))
	}
	return hex.AppendEncode(b, raw[:])
}

// Errors of Inbound.
var (
	ErrUnknownNumber = errors.New("sim: unknown phone number id")
	ErrNoWebhook     = errors.New("sim: no webhook url configured")
	ErrBadInbound    = errors.New("sim: inbound message needs a from number of 7 to 15 digits and a text")
)

// Inbound makes the simulator post an inbound text message from a guest
// ("+" and 7 to 15 digits, or the digits alone) with profile name name to
// the number's webhook, as Meta does when a guest writes. It returns the
// message's wamid.
func (s *Server) Inbound(phoneNumberID, from, name, text string) (string, error) {
	if text == "" {
		return "", ErrBadInbound
	}
	id, _, err := s.InboundMessage(phoneNumberID, from, name, InboundMessage{Type: "text", Text: text})
	return id, err
}

// sleepUntil waits until next (Unix ns; maxTime: an hour at most), a wake
// or stop, and reports false on stop. A next already past returns at once.
func sleepUntil(timer *time.Timer, next int64, wake, stop <-chan struct{}) bool {
	if next == maxTime {
		timer.Reset(time.Hour)
	} else if d := time.Duration(next - time.Now().UnixNano()); d > 0 {
		timer.Reset(d)
	} else {
		return true
	}
	select {
	case <-timer.C:
	case <-wake:
		timer.Stop()
	case <-stop:
		return false
	}
	return true
}
