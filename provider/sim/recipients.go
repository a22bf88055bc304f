package sim

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Meta's answers for problems of one recipient, by error code, for
// Runtime.RecipientErrors. Titles and details are Meta's.
var recipientErrors = map[int]apiError{
	131026: {status: 400, typ: "OAuthException", code: 131026, message: "(#131026) Message undeliverable",
		details: "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number."},
	131047: {status: 400, typ: "OAuthException", code: 131047, message: "(#131047) Re-engagement message",
		details: "More than 24 hours have passed since the recipient last replied to the sender number."},
	131048: {status: 400, typ: "OAuthException", code: 131048, message: "(#131048) Spam rate limit hit",
		details: "Message failed to send because there are restrictions on how many messages can be sent from this phone number."},
	131049: {status: 400, typ: "OAuthException", code: 131049, message: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
		details: "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."},
	131051: {status: 400, typ: "OAuthException", code: 131051, message: "(#131051) Unsupported message type",
		details: "Unsupported message type."},
	131031: {status: 400, typ: "OAuthException", code: 131031, message: "(#131031) Business Account locked",
		details: "Your WhatsApp Business Account has been locked."},
	368: {status: 400, typ: "OAuthException", code: 368, message: "(#368) Temporarily blocked for policies violations",
		details: "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."},
	131000: errTransient,
	130429: errThroughput,
	131056: errPairRate,
}

// errPairRate is Meta's answer to too many messages to one recipient.
var errPairRate = apiError{status: 400, typ: "OAuthException", code: 131056,
	message: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
	details: "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time."}

// KnownRecipientError reports whether Runtime.RecipientErrors may use code.
func KnownRecipientError(code int) bool { _, ok := recipientErrors[code]; return ok }

// pairLimits holds one number's per-recipient buckets (Runtime.PairRate).
type pairLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// allow takes a token of recipient's bucket at now.
func (p *pairLimits) allow(recipient string, now time.Time, rt *Runtime) bool {
	if rt.PairRate <= 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*rate.Limiter{}
	}
	l := p.m[recipient]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(rt.PairRate), max(1, rt.PairBurst))
		p.m[recipient] = l
	}
	return l.AllowN(now, 1)
}

// recipientError returns the error Runtime.RecipientErrors sets for to.
func recipientError(rt *Runtime, to string) *apiError {
	if len(rt.RecipientErrors) == 0 {
		return nil
	}
	if to != "" && to[0] == '+' {
		to = to[1:]
	}
	code, ok := rt.RecipientErrors[to]
	if !ok {
		return nil
	}
	e, ok := recipientErrors[code]
	if !ok {
		e = apiError{status: 400, typ: "OAuthException", code: code, message: "(#" + strconv.Itoa(code) + ") Error", details: "Error"}
	}
	return &e
}
