package sim

import (
	"sync"
	"sync/atomic"
	"time"
)

// Request is one accepted send as the simulator received it.
type Request struct {
	PhoneNumberID string
	// Body is the raw request body.
	Body []byte
	// Authorization is the header the send carried.
	Authorization string
	At            time.Time
	// WAMID is the message id the simulator answered with.
	WAMID string
	// To is the recipient as sent.
	To string
}

// record keeps an accepted send in the number's ring and counts it in its
// second. Ring slots keep their body buffers, so a warm ring does not
// allocate.
func (n *number) record(keep int, body []byte, auth string, at time.Time, wamid, to string) {
	sec := at.Unix()
	n.mu.Lock()
	defer n.mu.Unlock()
	i := int(sec % int64(len(n.secs)))
	if n.secs[i] != sec {
		n.secs[i], n.perS[i] = sec, 0
	}
	n.perS[i]++
	if keep <= 0 {
		return
	}
	if len(n.reqs) < keep {
		n.reqs = append(n.reqs, Request{})
	}
	r := &n.reqs[n.next]
	r.PhoneNumberID = n.PhoneNumberID
	r.Body = append(r.Body[:0], body...)
	r.Authorization = auth
	r.At = at
	r.WAMID = wamid
	r.To = to
	n.next = (n.next + 1) % keep
	n.count++
}

// Requests returns copies of the number's most recent accepted sends,
// oldest first (at most Config.RecordRequests of them).
func (s *Server) Requests(phoneNumberID string) []Request {
	n := s.numbers[phoneNumberID]
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Request, 0, len(n.reqs))
	start := 0
	if n.count > len(n.reqs) { // the ring has wrapped
		start = n.next
	}
	for i := 0; i < len(n.reqs); i++ {
		r := n.reqs[(start+i)%len(n.reqs)]
		r.Body = append([]byte(nil), r.Body...)
		out = append(out, r)
	}
	return out
}

// SendsPerSecond returns the number's accepted sends per Unix second, for
// the seconds within Config.RateHistory that had any.
func (s *Server) SendsPerSecond(phoneNumberID string) map[int64]int {
	n := s.numbers[phoneNumberID]
	if n == nil {
		return nil
	}
	oldest := time.Now().Unix() - int64(len(n.secs))
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[int64]int)
	for i, sec := range n.secs {
		if sec > oldest && n.perS[i] > 0 {
			out[sec] = int(n.perS[i])
		}
	}
	return out
}

// Stats are the simulator's counts since New.
type Stats struct {
	// Accepted sends, and refused ones by Meta error code (throttled,
	// injected and outage answers included).
	Accepted int64         `json:"accepted"`
	Rejected map[int]int64 `json:"rejected_by_code"`
	// Throttled (130429), Injected (ErrorRate's 131000) and Outage
	// (answered 503 or refused) sends.
	Throttled int64 `json:"throttled"`
	// PairThrottled counts 131056 answers (Runtime.PairRate).
	PairThrottled int64 `json:"pair_throttled"`
	Injected      int64 `json:"injected_errors"`
	Outage        int64 `json:"outage"`
	// MediaUploads accepted.
	MediaUploads int64 `json:"media_uploads"`
	// Webhook POSTs that succeeded, failed (each failed attempt), were
	// scheduled again after a failure, and were given up on.
	WebhooksPosted  int64 `json:"webhooks_posted"`
	WebhooksFailed  int64 `json:"webhooks_failed"`
	WebhooksRetried int64 `json:"webhooks_retried"`
	WebhooksDropped int64 `json:"webhooks_dropped"`
	// Statuses scheduled, delivered to the receiver, and lost with a
	// dropped webhook; InboundPosted counts inbound message webhooks.
	StatusesScheduled int64 `json:"statuses_scheduled"`
	StatusesPosted    int64 `json:"statuses_posted"`
	StatusesDropped   int64 `json:"statuses_dropped"`
	InboundPosted     int64 `json:"inbound_posted"`
	// Abandoned statuses and inbound messages not posted at Shutdown.
	Abandoned int64 `json:"abandoned"`

	// The SMS endpoint's accepted sends, refusals by Twilio error code and
	// sends answered during its own outage (SetSMSOutage).
	SMSAccepted int64         `json:"sms_accepted"`
	SMSRejected map[int]int64 `json:"sms_rejected_by_code"`
	SMSOutage   int64         `json:"sms_outage"`
	// The Gallabox endpoint's accepted sends, refusals by HTTP status and
	// sends answered during its own outage (SetGallaboxOutage).
	GallaboxAccepted int64         `json:"gallabox_accepted"`
	GallaboxRejected map[int]int64 `json:"gallabox_rejected_by_status"`
	GallaboxOutage   int64         `json:"gallabox_outage"`
	// The ChatApp endpoint's accepted sends, refusals by Alibaba error
	// code and sends answered during its own outage (SetChatAppOutage).
	ChatAppAccepted int64            `json:"chatapp_accepted"`
	ChatAppRejected map[string]int64 `json:"chatapp_rejected_by_code"`
	ChatAppOutage   int64            `json:"chatapp_outage"`
	// Gallabox's and ChatApp's status callbacks: taken by the receiver,
	// failed attempts, attempts scheduled again, given up on, and not
	// posted at Shutdown.
	CallbacksPosted    int64 `json:"callbacks_posted"`
	CallbacksFailed    int64 `json:"callbacks_failed"`
	CallbacksRetried   int64 `json:"callbacks_retried"`
	CallbacksDropped   int64 `json:"callbacks_dropped"`
	CallbacksAbandoned int64 `json:"callbacks_abandoned"`
}

type counters struct {
	accepted, throttled, injected, outage, media                 atomic.Int64
	pairThrottled                                                atomic.Int64
	posted, failed, retried, dropped                             atomic.Int64
	statusesScheduled, statusesPosted, statusesDropped, inbounds atomic.Int64
	abandoned                                                    atomic.Int64

	mu       sync.Mutex
	rejected map[int]int64
}

func (c *counters) reject(code int) {
	c.mu.Lock()
	if c.rejected == nil {
		c.rejected = make(map[int]int64)
	}
	c.rejected[code]++
	c.mu.Unlock()
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Accepted:          c.accepted.Load(),
		Throttled:         c.throttled.Load(),
		PairThrottled:     c.pairThrottled.Load(),
		Injected:          c.injected.Load(),
		Outage:            c.outage.Load(),
		MediaUploads:      c.media.Load(),
		WebhooksPosted:    c.posted.Load(),
		WebhooksFailed:    c.failed.Load(),
		WebhooksRetried:   c.retried.Load(),
		WebhooksDropped:   c.dropped.Load(),
		StatusesScheduled: c.statusesScheduled.Load(),
		StatusesPosted:    c.statusesPosted.Load(),
		StatusesDropped:   c.statusesDropped.Load(),
		InboundPosted:     c.inbounds.Load(),
		Abandoned:         c.abandoned.Load(),
		Rejected:          make(map[int]int64),
	}
	c.mu.Lock()
	for k, v := range c.rejected {
		st.Rejected[k] = v
	}
	c.mu.Unlock()
	s.sms.stats(&st)
	s.gallabox.stats(&st)
	s.chatapp.stats(&st)
	st.CallbacksPosted, st.CallbacksFailed = s.alt.posted.Load(), s.alt.failed.Load()
	st.CallbacksRetried, st.CallbacksDropped = s.alt.retried.Load(), s.alt.dropped.Load()
	st.CallbacksAbandoned = s.alt.abandoned.Load()
	return st
}
