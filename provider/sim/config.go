package sim

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/wagate/wagate/message"
)

// Defaults of Config.
const (
	DefaultAddr                   = "127.0.0.1:8090"
	DefaultAccessToken            = "sim-access-token"
	DefaultAppSecret              = "sim-app-secret"
	DefaultSentDelay              = 20 * time.Millisecond
	DefaultDeliveredDelay         = 60 * time.Millisecond
	DefaultReadDelay              = 120 * time.Millisecond
	DefaultMaxStatusesPerWebhook  = 1
	DefaultWebhookFlush           = 10 * time.Millisecond
	DefaultWebhookConcurrency     = 16
	DefaultWebhookTimeout         = 5 * time.Second
	DefaultWebhookRetryFor        = 5 * time.Minute
	DefaultWebhookBackoffMin      = 100 * time.Millisecond
	DefaultWebhookBackoffMax      = 10 * time.Second
	DefaultRecordRequests         = 10000
	DefaultRateHistory            = time.Hour
	DefaultSMSAccountSID          = "ACsim0000000000000000000000000000"
	DefaultSMSAuthToken           = "sim-sms-token"
	DefaultGallaboxAPIKey         = "sim-gallabox-key"
	DefaultGallaboxAPISecret      = "sim-gallabox-secret"
	DefaultGallaboxWebhookSecret  = "sim-gallabox-webhook-secret"
	DefaultChatAppAccessKeyID     = "LTAIsimChatApp000000"
	DefaultChatAppAccessKeySecret = "sim-chatapp-access-key-secret"
)

// OutageMode values.
const (
	// OutageError answers every send during an outage with HTTP 503 and
	// Meta's code 2.
	OutageError = "error"
	// OutageRefuse closes the connection without an answer.
	OutageRefuse = "refuse"
)

// The one number a Config without Numbers gets.
const (
	DefaultPhoneNumberID      = "100000000000001"
	DefaultDisplayPhoneNumber = "15550001000"
	DefaultWABAID             = "200000000000001"
)

// Number is a business phone number the simulator serves.
type Number struct {
	// PhoneNumberID is Meta's id of the number, the path segment of sends.
	PhoneNumberID string
	// DisplayPhoneNumber is the number in digits ("15550001000"), as the
	// webhook metadata carries it.
	DisplayPhoneNumber string
	// WABAID is the WhatsApp Business Account id, the webhook entry id.
	WABAID string
}

// Delays are the times after a send's acceptance at which its statuses
// become due.
type Delays struct {
	Sent, Delivered, Read time.Duration
}

// Window is an outage, relative to Start.
type Window struct {
	Start, End time.Duration
}

// Runtime is the part of the configuration that may change while the
// simulator runs (SetRuntime, POST /_sim/config).
type Runtime struct {
	// Latency is added before a send is answered, plus a uniform random
	// part in [0, LatencyJitter).
	Latency       time.Duration
	LatencyJitter time.Duration
	// ErrorRate is the fraction of valid sends answered with Meta's
	// transient error 131000 (HTTP 500).
	ErrorRate float64
	// Throughput is each number's rate in messages per second (0 =
	// unlimited) and ThroughputBurst its bucket size (0 = one second's
	// worth); sends over it get Meta's 130429 (HTTP 400).
	Throughput      float64
	ThroughputBurst int
	// StatusDelays say when sent, delivered and read become due.
	StatusDelays Delays
	// ReadRatio is the fraction of delivered messages that are read, and
	// FailRatio the fraction of messages that fail (131026) instead of
	// being delivered.
	ReadRatio float64
	FailRatio float64
	// PairRate limits sends from one number to one recipient, messages per
	// second (0: unlimited; Meta: about 1 per 6 s), with PairBurst at once;
	// over it the sim answers Meta's 131056.
	PairRate  float64
	PairBurst int
	// RecipientErrors answers every send to a recipient (digits, no "+")
	// with Meta's error of that code: 131026 undeliverable, 131047 outside
	// the 24-hour window, 131048 spam limit, 131049 marketing cap, 131051
	// unsupported type, 131031 account locked, 368 blocked, 131000, 130429,
	// 131056.
	RecipientErrors map[string]int
}

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" takes a free port, which
	// Server.Addr then tells.
	Addr string
	// Numbers are the phone numbers sends may use; one made of the
	// Default* ids above if none.
	Numbers []Number
	// AccessToken is the only Bearer token sends may carry.
	AccessToken string
	// AppSecret keys the X-Hub-Signature-256 of webhooks.
	AppSecret string
	// WebhookURL receives status and inbound webhooks; empty posts none.
	WebhookURL string

	// Latency, LatencyJitter, ErrorRate, Throughput and ThroughputBurst
	// start Runtime's fields of the same names.
	Latency         time.Duration
	LatencyJitter   time.Duration
	ErrorRate       float64
	Throughput      float64
	ThroughputBurst int
	// StatusDelays default to 20ms, 60ms and 120ms; a zero field takes its
	// default.
	StatusDelays Delays
	// ReadRatio is the fraction of delivered messages that get read. Zero
	// means the default, 1; a negative value means none is read.
	ReadRatio float64
	// FailRatio is the fraction of messages that get a failed status
	// (131026) instead of delivered.
	FailRatio float64
	// PairRate, PairBurst and RecipientErrors start Runtime's fields of the
	// same names.
	PairRate        float64
	PairBurst       int
	RecipientErrors map[string]int

	// MaxStatusesPerWebhook is how many statuses of one number a webhook
	// may carry: 1 (one per POST) as Meta usually does, more to batch.
	MaxStatusesPerWebhook int
	// WebhookFlush is how long a partial batch waits for more statuses.
	WebhookFlush time.Duration
	// WebhookConcurrency bounds the POSTs in flight.
	WebhookConcurrency int
	// WebhookTimeout bounds one POST.
	WebhookTimeout time.Duration
	// WebhookRetryFor is how long a failed webhook is retried (Meta: days),
	// and WebhookMaxAttempts caps its attempts (0 = no cap). A webhook
	// given up on is counted in Stats.WebhooksDropped.
	WebhookRetryFor    time.Duration
	WebhookMaxAttempts int
	// WebhookBackoffMin and WebhookBackoffMax bound the exponential wait
	// between attempts.
	WebhookBackoffMin time.Duration
	WebhookBackoffMax time.Duration

	// Outages are windows, relative to Start, in which sends fail.
	Outages []Window
	// OutageMode is OutageError (default) or OutageRefuse.
	OutageMode string

	// RecordRequests is how many accepted sends per number Requests keeps
	// (negative: none).
	RecordRequests int
	// RateHistory is how far back SendsPerSecond remembers.
	RateHistory time.Duration

	// SMSAccountSID and SMSAuthToken are the only Basic credentials the
	// Twilio-shaped SMS endpoint (POST /2010-04-01/Accounts/{sid}/
	// Messages.json) accepts; the sid is also the only account in its path.
	SMSAccountSID string
	SMSAuthToken  string
	// GallaboxAPIKey and GallaboxAPISecret are the only apiKey and
	// apiSecret headers the Gallabox endpoint (POST
	// /devapi/messages/whatsapp) accepts.
	GallaboxAPIKey    string
	GallaboxAPISecret string
	// GallaboxWebhookURL receives Gallabox's status webhooks of the
	// messages the Gallabox endpoint accepted (delivered, read, or failed:
	// Gallabox sends none for sent), signed with GallaboxWebhookSecret
	// (x-gallabox-signature); empty posts none.
	GallaboxWebhookURL    string
	GallaboxWebhookSecret string
	// ChatAppAccessKeyID and ChatAppAccessKeySecret are the only AccessKey
	// pair the ChatApp endpoint (POST / with Action=SendChatappMessage)
	// accepts; its requests must carry the RPC signature made with the
	// secret.
	ChatAppAccessKeyID     string
	ChatAppAccessKeySecret string
	// ChatAppWebhookURL receives ChatApp's status reports (sent, delivered,
	// read, or failed) of the messages the ChatApp endpoint accepted; the
	// token that verifies them is the URL's own (?token=…), as ChatApp
	// signs nothing; empty posts none.
	ChatAppWebhookURL string

	// Templates are the message templates each WhatsApp Business Account
	// (by WABA id) holds from the start: APPROVED unless their Status says
	// otherwise. Template sends are checked against them and the
	// submitted ones; a simulator without any takes every template send.
	Templates map[string][]message.Template
	// TemplateReviewDelay is how long a submitted template waits for its
	// review (DefaultTemplateReviewDelay): then it is APPROVED, or REJECTED
	// when Meta's reviewers would, and a message_template_status_update
	// webhook goes to WebhookURL.
	TemplateReviewDelay time.Duration
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if len(c.Numbers) == 0 {
		c.Numbers = []Number{{PhoneNumberID: DefaultPhoneNumberID, DisplayPhoneNumber: DefaultDisplayPhoneNumber, WABAID: DefaultWABAID}}
	}
	if c.AccessToken == "" {
		c.AccessToken = DefaultAccessToken
	}
	if c.AppSecret == "" {
		c.AppSecret = DefaultAppSecret
	}
	setDuration(&c.StatusDelays.Sent, DefaultSentDelay)
	setDuration(&c.StatusDelays.Delivered, DefaultDeliveredDelay)
	setDuration(&c.StatusDelays.Read, DefaultReadDelay)
	switch {
	case c.ReadRatio == 0:
		c.ReadRatio = 1
	case c.ReadRatio < 0:
		c.ReadRatio = 0
	}
	if c.MaxStatusesPerWebhook == 0 {
		c.MaxStatusesPerWebhook = DefaultMaxStatusesPerWebhook
	}
	setDuration(&c.WebhookFlush, DefaultWebhookFlush)
	if c.WebhookConcurrency == 0 {
		c.WebhookConcurrency = DefaultWebhookConcurrency
	}
	setDuration(&c.WebhookTimeout, DefaultWebhookTimeout)
	setDuration(&c.WebhookRetryFor, DefaultWebhookRetryFor)
	setDuration(&c.WebhookBackoffMin, DefaultWebhookBackoffMin)
	setDuration(&c.WebhookBackoffMax, DefaultWebhookBackoffMax)
	if c.OutageMode == "" {
		c.OutageMode = OutageError
	}
	if c.RecordRequests == 0 {
		c.RecordRequests = DefaultRecordRequests
	}
	setDuration(&c.RateHistory, DefaultRateHistory)
	setDuration(&c.TemplateReviewDelay, DefaultTemplateReviewDelay)
	if c.SMSAccountSID == "" {
		c.SMSAccountSID = DefaultSMSAccountSID
	}
	if c.SMSAuthToken == "" {
		c.SMSAuthToken = DefaultSMSAuthToken
	}
	if c.GallaboxAPIKey == "" {
		c.GallaboxAPIKey = DefaultGallaboxAPIKey
	}
	if c.GallaboxAPISecret == "" {
		c.GallaboxAPISecret = DefaultGallaboxAPISecret
	}
	if c.GallaboxWebhookSecret == "" {
		c.GallaboxWebhookSecret = DefaultGallaboxWebhookSecret
	}
	if c.ChatAppAccessKeyID == "" {
		c.ChatAppAccessKeyID = DefaultChatAppAccessKeyID
	}
	if c.ChatAppAccessKeySecret == "" {
		c.ChatAppAccessKeySecret = DefaultChatAppAccessKeySecret
	}
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate reports the first problem of a Config whose defaults are set.
func (c *Config) Validate() error {
	seen := make(map[string]bool, len(c.Numbers))
	for _, n := range c.Numbers {
		if !idSafe(n.PhoneNumberID) || seen[n.PhoneNumberID] {
			return fmt.Errorf("sim config: phone number id %q is empty, not a path segment or repeated", n.PhoneNumberID)
		}
		seen[n.PhoneNumberID] = true
		if !digits(n.DisplayPhoneNumber, 7, 15) {
			return fmt.Errorf("sim config: display phone number %q of %s is not 7 to 15 digits", n.DisplayPhoneNumber, n.PhoneNumberID)
		}
		if !idSafe(n.WABAID) {
			return fmt.Errorf("sim config: waba id %q of %s is empty or not a plain id", n.WABAID, n.PhoneNumberID)
		}
	}
	if c.AccessToken == "" || c.AppSecret == "" {
		return errors.New("sim config: access token and app secret must not be empty")
	}
	for _, w := range []string{c.WebhookURL, c.GallaboxWebhookURL, c.ChatAppWebhookURL} {
		if w == "" {
			continue
		}
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted: a callback URL may carry a token.
			return errors.New("sim config: a webhook url is not an http(s) url")
		}
	}
	rt := c.runtime()
	if err := rt.validate(); err != nil {
		return fmt.Errorf("sim config: %w", err)
	}
	if c.MaxStatusesPerWebhook < 1 || c.WebhookConcurrency < 1 {
		return errors.New("sim config: max statuses per webhook and webhook concurrency must be at least 1")
	}
	for _, d := range []time.Duration{c.WebhookFlush, c.WebhookTimeout, c.WebhookRetryFor, c.WebhookBackoffMin, c.WebhookBackoffMax, c.RateHistory} {
		if d < 0 {
			return fmt.Errorf("sim config: negative duration %v", d)
		}
	}
	if c.WebhookMaxAttempts < 0 {
		return errors.New("sim config: webhook max attempts is negative")
	}
	if c.WebhookBackoffMax < c.WebhookBackoffMin {
		return errors.New("sim config: webhook backoff max is below its min")
	}
	for _, w := range c.Outages {
		if w.Start < 0 || w.End <= w.Start {
			return fmt.Errorf("sim config: outage window %v..%v is empty or negative", w.Start, w.End)
		}
	}
	if c.OutageMode != OutageError && c.OutageMode != OutageRefuse {
		return fmt.Errorf("sim config: outage mode %q is neither %q nor %q", c.OutageMode, OutageError, OutageRefuse)
	}
	if err := c.validateAlt(); err != nil {
		return fmt.Errorf("sim config: %w", err)
	}
	if err := c.validateTemplates(); err != nil {
		return fmt.Errorf("sim config: %w", err)
	}
	return nil
}

func (c *Config) runtime() Runtime {
	return Runtime{
		Latency:         c.Latency,
		LatencyJitter:   c.LatencyJitter,
		ErrorRate:       c.ErrorRate,
		Throughput:      c.Throughput,
		ThroughputBurst: c.ThroughputBurst,
		StatusDelays:    c.StatusDelays,
		ReadRatio:       c.ReadRatio,
		FailRatio:       c.FailRatio,
		PairRate:        c.PairRate,
		PairBurst:       c.PairBurst,
		RecipientErrors: c.RecipientErrors,
	}
}

func (r *Runtime) validate() error {
	switch {
	case r.Latency < 0 || r.LatencyJitter < 0:
		return errors.New("latency is negative")
	case r.ErrorRate < 0 || r.ErrorRate > 1 || r.ReadRatio < 0 || r.ReadRatio > 1 || r.FailRatio < 0 || r.FailRatio > 1:
		return errors.New("error rate, read ratio and fail ratio must be within 0..1")
	case r.Throughput < 0 || r.ThroughputBurst < 0:
		return errors.New("throughput is negative")
	case r.StatusDelays.Sent < 0 || r.StatusDelays.Delivered < 0 || r.StatusDelays.Read < 0:
		return errors.New("status delay is negative")
	case r.PairRate < 0 || r.PairBurst < 0:
		return errors.New("pair rate is negative")
	}
	for to, code := range r.RecipientErrors {
		if !KnownRecipientError(code) {
			return fmt.Errorf("recipient %s: unknown error code %d", to, code)
		}
	}
	return nil
}

// idSafe reports whether s is a non-empty id of letters, digits, dots,
// dashes and underscores, so it needs no escaping in paths or JSON.
func idSafe(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return s != "." && s != ".."
}

func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
