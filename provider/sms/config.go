package sms

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/wagate/wagate/message"
)

// Defaults of Config.
const (
	DefaultName     = "sms"
	DefaultBaseURL  = "https://api.twilio.com"
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 512
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Name is the provider name recorded with every event; "sms" unless
	// several SMS accounts run side by side.
	Name string
	// BaseURL is the API root, scheme and host (and an optional path
	// prefix): Twilio's, or another provider's that speaks the same
	// Messages API; the simulator's address in tests.
	BaseURL string
	// AccountSID is the account ("AC…"): the Basic auth user and a path
	// segment of the send URL.
	AccountSID string
	// AuthToken is the account's secret, the Basic auth password.
	AuthToken string
	// From maps each WhatsApp sender number in E.164 to the SMS "From" of
	// its fallback: an E.164 number or an alphanumeric sender id ("Hotel").
	From map[string]string
	// DefaultFrom is the "From" of senders that From does not list; empty
	// refuses them.
	DefaultFrom string
	// Timeout bounds one send, connection wait included; a context deadline
	// that comes sooner wins.
	Timeout time.Duration
	// MaxConns bounds the open connections to BaseURL's host.
	MaxConns int
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
}

// Validate reports the first problem of a Config whose defaults are set.
func (c *Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("sms config: base url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("sms config: base url %q is not an http(s) root", c.BaseURL)
	}
	if !pathSafe(c.AccountSID) {
		return fmt.Errorf("sms config: account sid %q is empty or not a path segment", c.AccountSID)
	}
	if c.AuthToken == "" {
		return errors.New("sms config: auth token is empty")
	}
	for i := 0; i < len(c.AuthToken); i++ {
		if b := c.AuthToken[i]; b <= ' ' || b >= 0x7f {
			return errors.New("sms config: auth token has characters Basic auth cannot carry")
		}
	}
	if len(c.From) == 0 && c.DefaultFrom == "" {
		return errors.New("sms config: no From numbers and no DefaultFrom")
	}
	for sender, from := range c.From {
		if !message.ValidE164(sender) {
			return fmt.Errorf("sms config: sender %q is not E.164", sender)
		}
		if !ValidFrom(from) {
			return fmt.Errorf("sms config: From %q of %s is neither E.164 nor an alphanumeric sender id", from, sender)
		}
	}
	if c.DefaultFrom != "" && !ValidFrom(c.DefaultFrom) {
		return fmt.Errorf("sms config: DefaultFrom %q is neither E.164 nor an alphanumeric sender id", c.DefaultFrom)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("sms config: timeout %v is negative", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("sms config: max conns %d is negative", c.MaxConns)
	}
	return nil
}

// ValidFrom reports whether s can be an SMS sender: an E.164 number, or an
// alphanumeric sender id of 1 to 11 letters, digits and spaces with at
// least one letter (Twilio's rule; an all-digit id would read as a number).
func ValidFrom(s string) bool {
	if message.ValidE164(s) {
		return true
	}
	if len(s) == 0 || len(s) > 11 || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
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

// pathSafe reports whether s is a non-empty path segment that needs no
// escaping.
func pathSafe(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
