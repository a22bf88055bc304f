package bench

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// DefaultText is the text every generated message carries.
const DefaultText = "Your room 412 is ready. Reply CHECKIN to get your digital key."

// Senders are the demo tenant's numbers of `wagate dev -numbers N`:
// +15550001000, +15550001001, … with phone number ids 100000000000001, ….
type Senders int

// Number is sender i's number in E.164.
func (Senders) Number(i int) string { return "+1555000" + strconv.Itoa(1000+i) }

// Business is sender i's identity in Meta's webhooks.
func (Senders) Business(i int) Business {
	return Business{WABAID: "200000000000001", DisplayPhoneNumber: "1555000" + strconv.Itoa(1000+i),
		PhoneNumberID: "1000000000" + pad5(i+1)}
}

func pad5(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

// sender is which number request seq goes from: spread evenly.
func (n Senders) sender(seq uint64) int { return int(seq % uint64(max(int(n), 1))) }

// appendRecipient appends the guest number of message seq: +447 and nine
// digits of base+seq, so that each message of a run goes to a guest of its
// own (one guest's messages are spaced by the per-pair limit).
func appendRecipient(dst []byte, base, seq uint64) []byte {
	dst = append(dst, "+447"...)
	return appendDigits(dst, (base+seq)%1_000_000_000, 9)
}

// recipientDigits is appendRecipient as Meta writes it: digits, no "+".
func recipientDigits(base, seq uint64) string {
	return string(appendRecipient(nil, base, seq)[1:])
}

func appendDigits(dst []byte, v uint64, n int) []byte {
	var b [20]byte
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:n]...)
}

// sendSource makes POST …/messages/send requests like the seed's, one
// guest each, spread over the senders. With record it keeps the id and
// send time of every accepted message, per worker.
type sendSource struct {
	auth    string
	senders Senders
	base    uint64
	text    []byte
	record  bool

	bufs    [][]byte
	sentAt  []int64 // per worker: when the request being built went out
	records [][]sent
}

// sent is one accepted message: its id, the request it came from, and
// when that request went out (Unix ns).
type sent struct {
	id  string
	seq uint64
	at  int64
}

func newSendSource(token string, senders Senders, base uint64, text string, workers int, record bool) *sendSource {
	s := &sendSource{auth: "Bearer " + token, senders: senders, base: base, record: record,
		bufs: make([][]byte, workers), sentAt: make([]int64, workers), records: make([][]sent, workers)}
	s.text = message.AppendJSONString(nil, text)
	for i := range s.bufs {
		s.bufs[i] = make([]byte, 0, 256)
	}
	return s
}

// appendSendBody appends the send body of message seq.
func (s *sendSource) appendSendBody(dst []byte, seq uint64) []byte {
	dst = append(dst, `{"guest_phone":"`...)
	dst = appendRecipient(dst, s.base, seq)
	dst = append(dst, `","message_type":"text","content":{"text":`...)
	dst = append(dst, s.text...)
	dst = append(dst, `},"from":"`...)
	dst = append(dst, s.senders.Number(s.senders.sender(seq))...)
	return append(dst, `"}`...)
}

// Build makes message seq's send, in worker w's buffer.
func (s *sendSource) Build(w int, seq uint64, req *fasthttp.Request) bool {
	s.bufs[w] = s.appendSendBody(s.bufs[w][:0], seq)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(pathSend)
	req.Header.Set("Authorization", s.auth)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(s.bufs[w])
	if s.record {
		s.sentAt[w] = time.Now().UnixNano()
	}
	return true
}

var errNoMessageID = errors.New("answer without message_id")

// Done wants 202 with a message id, and records it when asked to.
func (s *sendSource) Done(w int, seq uint64, status int, body []byte) (int, error) {
	if status != fasthttp.StatusAccepted {
		return 0, statusError(status, body)
	}
	id := jsonStringBytes(body, "message_id")
	if len(id) == 0 {
		return 0, errNoMessageID
	}
	if s.record {
		s.records[w] = append(s.records[w], sent{id: string(id), seq: seq, at: s.sentAt[w]})
	}
	return 1, nil
}

// accepted returns every recorded message, in no particular order.
func (s *sendSource) accepted() []sent {
	var n int
	for _, r := range s.records {
		n += len(r)
	}
	out := make([]sent, 0, n)
	for _, r := range s.records {
		out = append(out, r...)
	}
	return out
}

// bulkSource makes POST …/messages/batch-send requests of size messages
// each (the contract of issue 5's batch endpoint), one number per batch.
type bulkSource struct {
	auth    string
	senders Senders
	base    uint64
	size    int
	text    string

	bufs    [][]byte
	batches [][]batchSent
}

// batchSent is one accepted batch.
type batchSent struct {
	id       string
	accepted int64
}

func newBulkSource(token string, senders Senders, base uint64, size int, text string, workers int) *bulkSource {
	s := &bulkSource{auth: "Bearer " + token, senders: senders, base: base, size: size, text: text,
		bufs: make([][]byte, workers), batches: make([][]batchSent, workers)}
	return s
}

// Build makes batch seq: messages seq×size onwards, from one number.
func (s *bulkSource) Build(w int, seq uint64, req *fasthttp.Request) bool {
	b := appendBatchBody(s.bufs[w][:0], s.base, seq*uint64(s.size), s.size, s.text, s.senders.Number(s.senders.sender(seq)))
	s.bufs[w] = b
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(pathBatchSend)
	req.Header.Set("Authorization", s.auth)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(b)
	return true
}

// appendBatchBody appends a batch-send's body: n messages of text from
// number from, to the guests of messages first onwards (appendRecipient).
func appendBatchBody(dst []byte, base, first uint64, n int, text, from string) []byte {
	dst = append(dst, `{"messages":[`...)
	for i := range uint64(n) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"phone":"`...)
		dst = appendRecipient(dst, base, first+i)
		dst = append(dst, `","content":`...)
		dst = message.AppendJSONString(dst, text)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"from":"`...)
	dst = append(dst, from...)
	return append(dst, `"}`...)
}

var errNoBatch = errors.New("answer without batch_id or accepted")

// Done wants 202 with a batch id and the accepted count, and records them.
func (s *bulkSource) Done(w int, seq uint64, status int, body []byte) (int, error) {
	if status != fasthttp.StatusAccepted {
		return 0, statusError(status, body)
	}
	id := jsonStringField(body, "batch_id")
	n, ok := jsonIntField(body, "accepted")
	if id == "" || !ok {
		return 0, errNoBatch
	}
	s.batches[w] = append(s.batches[w], batchSent{id: id, accepted: n})
	return int(n), nil
}

func (s *bulkSource) accepted() []batchSent {
	var out []batchSent
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

// webhookSource posts prepared, signed webhook bodies in order, once each,
// or round and round when cycle is set (for the ceiling).
type webhookSource struct {
	bodies   [][]byte
	sigs     []string
	statuses []int // statuses in each body
	cycle    bool
	posted   []atomic.Bool
}

func newWebhookSource(bodies [][]byte, sigs []string, statuses []int, cycle bool) *webhookSource {
	return &webhookSource{bodies: bodies, sigs: sigs, statuses: statuses, cycle: cycle, posted: make([]atomic.Bool, len(bodies))}
}

// Build posts body seq (round and round with cycle), signed.
func (s *webhookSource) Build(w int, seq uint64, req *fasthttp.Request) bool {
	if len(s.bodies) == 0 || !s.cycle && seq >= uint64(len(s.bodies)) {
		return false
	}
	i := seq % uint64(len(s.bodies))
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(pathWebhook)
	req.Header.SetContentType("application/json")
	req.Header.Set(SignatureHeader, s.sigs[i])
	req.SetBodyRaw(s.bodies[i])
	return true
}

// Done wants 200 and marks the body posted.
func (s *webhookSource) Done(w int, seq uint64, status int, body []byte) (int, error) {
	if status != fasthttp.StatusOK {
		return 0, statusError(status, body)
	}
	i := seq % uint64(len(s.bodies))
	s.posted[i].Store(true)
	return s.statuses[i], nil
}
