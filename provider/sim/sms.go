package sim

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// The SMS endpoint answers as Twilio's Messages API does:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json
//	Authorization: Basic base64(AccountSid:AuthToken)
//	To=+4915112345678&From=+15557770000&Body=…   (form-encoded)
//
// 201 with the message resource on success; errors are Twilio's
// {"code","message","more_info","status"}.

const (
	smsPathPrefix   = "/2010-04-01/Accounts/"
	smsMaxBodyChars = 1600
)

// SMSRequest is one SMS the SMS endpoint accepted.
type SMSRequest struct {
	AccountSID string
	To, From   string
	Body       string
	// SID is the message sid the endpoint answered with ("SM…").
	SID string
	At  time.Time
}

// smsState is the SMS endpoint's outage switch, record and counts.
type smsState struct {
	outage           outageSwitch
	accepted, downed atomic.Int64

	mu       sync.Mutex
	reqs     ring[SMSRequest]
	rejected map[int]int64
}

func (st *smsState) reject(code int) {
	st.mu.Lock()
	if st.rejected == nil {
		st.rejected = make(map[int]int64)
	}
	st.rejected[code]++
	st.mu.Unlock()
}

func (st *smsState) stats(out *Stats) {
	out.SMSAccepted = st.accepted.Load()
	out.SMSOutage = st.downed.Load()
	out.SMSRejected = make(map[int]int64)
	st.mu.Lock()
	for k, v := range st.rejected {
		out.SMSRejected[k] = v
	}
	st.mu.Unlock()
}

// SetSMSOutage makes the SMS endpoint, and only it, fail until the given
// time (503, or a closed connection in OutageRefuse mode); the zero time
// ends the outage. Meta's outages (SetOutage, Config.Outages) do not touch
// it.
func (s *Server) SetSMSOutage(until time.Time) { s.sms.outage.set(until) }

// SMSRequests returns the most recent accepted SMS, oldest first (at most
// Config.RecordRequests of them).
func (s *Server) SMSRequests() []SMSRequest {
	s.sms.mu.Lock()
	defer s.sms.mu.Unlock()
	return s.sms.reqs.all(func(r SMSRequest) SMSRequest { return r })
}

// twilioError is one of Twilio's error answers.
type twilioError struct {
	status  int
	code    int
	message string
}

func (s *Server) smsError(ctx *fasthttp.RequestCtx, e twilioError) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"code":`...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = append(b, `,"message":`...)
	b = message.AppendJSONString(b, e.message)
	b = append(b, `,"more_info":"https://www.twilio.com/docs/errors/`...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, '}')
	if e.status == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
	s.sms.reject(e.code)
}

// handleSMS serves the SMS endpoint; rest is the path after
// /2010-04-01/Accounts/.
func (s *Server) handleSMS(ctx *fasthttp.RequestCtx, rest []byte) {
	now := time.Now()
	if s.sms.outage.on(now) {
		s.sms.downed.Add(1)
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.smsError(ctx, twilioError{503, 20503, "Service Unavailable"})
		return
	}
	sid, tail, _ := bytes.Cut(rest, []byte("/"))
	if string(tail) != "Messages.json" {
		s.smsError(ctx, twilioError{404, 20404, "The requested resource " + string(ctx.Path()) + " was not found"})
		return
	}
	if !ctx.IsPost() {
		s.smsError(ctx, twilioError{405, 20004, "Method not allowed"})
		return
	}
	switch user, pass, ok := basicAuth(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)); {
	case !ok:
		s.smsError(ctx, twilioError{401, 20003, "Authentication Error - No credentials provided"})
		return
	case subtle.ConstantTimeCompare(user, []byte(s.cfg.SMSAccountSID)) != 1 ||
		subtle.ConstantTimeCompare(pass, []byte(s.cfg.SMSAuthToken)) != 1:
		s.smsError(ctx, twilioError{401, 20003, "Authentication Error - invalid username"})
		return
	}
	if string(sid) != s.cfg.SMSAccountSID {
		s.smsError(ctx, twilioError{404, 20404, "The requested resource " + string(ctx.Path()) + " was not found"})
		return
	}
	args := ctx.PostArgs()
	to, from, body := args.Peek("To"), args.Peek("From"), args.Peek("Body")
	switch {
	case len(to) == 0:
		s.smsError(ctx, twilioError{400, 21604, "A 'To' phone number is required."})
		return
	case !message.ValidE164Bytes(to):
		s.smsError(ctx, twilioError{400, 21211, "The 'To' number " + string(to) + " is not a valid phone number."})
		return
	case len(from) == 0:
		s.smsError(ctx, twilioError{400, 21603, "A 'From' phone number is required."})
		return
	case !validSMSFrom(from):
		s.smsError(ctx, twilioError{400, 21212, "The 'From' number " + string(from) + " is not a valid phone number, shortcode, or alphanumeric sender ID."})
		return
	case len(body) == 0:
		s.smsError(ctx, twilioError{400, 21602, "Message body is required."})
		return
	case utf8.RuneCount(body) > smsMaxBodyChars:
		s.smsError(ctx, twilioError{400, 21617, "The concatenated message body exceeds the 1600 character limit."})
		return
	}

	msid := s.newSMSSID()
	if keep := s.cfg.RecordRequests; keep > 0 {
		s.sms.mu.Lock()
		*s.sms.reqs.slot(keep) = SMSRequest{AccountSID: string(sid), To: string(to), From: string(from), Body: string(body), SID: msid, At: now}
		s.sms.mu.Unlock()
	}
	s.sms.accepted.Add(1)

	bp := bufPool.Get().(*[]byte)
	date := now.UTC().AppendFormat(make([]byte, 0, 32), time.RFC1123Z)
	uri := append(append(append(append([]byte(smsPathPrefix), sid...), "/Messages/"...), msid...), ".json"...)
	b := append((*bp)[:0], `{"account_sid":`...)
	b = message.AppendJSONString(b, string(sid))
	b = append(b, `,"api_version":"2010-04-01","body":`...)
	b = message.AppendJSONString(b, string(body))
	b = append(b, `,"date_created":"`...)
	b = append(b, date...)
	b = append(b, `","date_sent":null,"date_updated":"`...)
	b = append(b, date...)
	b = append(b, `","direction":"outbound-api","error_code":null,"error_message":null,"from":`...)
	b = message.AppendJSONString(b, string(from))
	b = append(b, `,"messaging_service_sid":null,"num_media":"0","num_segments":"`...)
	b = strconv.AppendInt(b, int64(smsSegments(body)), 10)
	b = append(b, `","price":null,"price_unit":"USD","sid":"`...)
	b = append(b, msid...)
	b = append(b, `","status":"queued","subresource_uris":{"media":"`...)
	b = append(b, uri[:len(uri)-len(".json")]...)
	b = append(b, `/Media.json"},"to":`...)
	b = message.AppendJSONString(b, string(to))
	b = append(b, `,"uri":"`...)
	b = append(b, uri...)
	b = append(b, `"}`...)
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
}

// basicAuth splits an "Authorization: Basic …" header.
func basicAuth(h []byte) (user, pass []byte, ok bool) {
	const prefix = "Basic "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return nil, nil, false
	}
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(h)-len(prefix)))
	n, err := base64.StdEncoding.Decode(dec, h[len(prefix):])
	if err != nil {
		return nil, nil, false
	}
	user, pass, ok = bytes.Cut(dec[:n], []byte(":"))
	return user, pass, ok
}

// validSMSFrom reports whether from is E.164 or an alphanumeric sender id
// of 1 to 11 letters, digits and spaces with at least one letter.
func validSMSFrom(from []byte) bool {
	if message.ValidE164Bytes(from) {
		return true
	}
	if len(from) == 0 || len(from) > 11 || from[0] == ' ' || from[len(from)-1] == ' ' {
		return false
	}
	letter := false
	for _, c := range from {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == ' ':
		default:
			return false
		}
	}
	return letter
}

// smsSegments approximates the parts an SMS of body is split into: 160
// characters in one part or 153 per part for ASCII (as GSM-7), 70 or 67 for
// anything else (UCS-2). GSM-7's escaped characters are not counted twice.
func smsSegments(body []byte) int {
	n := utf8.RuneCount(body)
	single, multi := 160, 153
	for _, c := range body {
		if c >= utf8.RuneSelf {
			single, multi = 70, 67
			break
		}
	}
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}

// newSMSSID returns a unique message sid: "SM" and 32 hex digits of this
// server's random prefix, a sequence number and noise.
func (s *Server) newSMSSID() string {
	var raw [16]byte
	copy(raw[:6], s.idPrefix[:])
	binary.BigEndian.PutUint64(raw[6:14], s.idSeq.Add(1))
	binary.BigEndian.PutUint16(raw[14:], uint16(rand.Uint32()))
	var out [2 + 32]byte
	copy(out[:], "SM")
	hex.Encode(out[2:], raw[:])
	return string(out[:])
}
