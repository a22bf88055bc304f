package meta

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/wagate/wagate/message"
)

// Defaults of Config.
const (
	DefaultName     = "meta"
	DefaultBaseURL  = "https://graph.facebook.com"
	DefaultVersion  = "v23.0"
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 512
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Name is the provider name recorded with every event; "meta" unless
	// several Meta accounts run side by side.
	Name string
	// BaseURL is the Graph API root, scheme and host (and an optional path
	// prefix); the simulator's address in tests and benchmarks.
	BaseURL string
	// Version is the Graph API version in the path, "v23.0".
	Version string
	// AccessToken is the system user's token, sent as a Bearer token.
	AccessToken string
	// PhoneNumberIDs maps each sender number in E.164 ("+15550001000") to
	// Meta's id of that phone number ("100000000000001").
	PhoneNumberIDs map[string]string
	// Timeout bounds one send, connection wait included; a context deadline
	// that comes sooner wins.
	Timeout time.Duration
	// MaxConns bounds the open connections to BaseURL's host; a send that
	// finds none free waits for one until its deadline.
	MaxConns int
	// WABAID is the WhatsApp Business Account id that owns the numbers and
	// the message templates; template calls need it.
	WABAID string
	// Media gives the client the files behind wagate media ids, uploaded to
	// Meta on first use; nil sends media by link only.
	Media MediaSource
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Version == "" {
		c.Version = DefaultVersion
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
		return fmt.Errorf("meta config: base url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("meta config: base url %q is not an http(s) root", c.BaseURL)
	}
	if !pathSafe(c.Version) {
		return fmt.Errorf("meta config: version %q is not a path segment", c.Version)
	}
	if c.AccessToken == "" {
		return errors.New("meta config: access token is empty")
	}
	for i := 0; i < len(c.AccessToken); i++ {
		if b := c.AccessToken[i]; b <= ' ' || b >= 0x7f {
			return errors.New("meta config: access token has characters a header cannot carry")
		}
	}
	if len(c.PhoneNumberIDs) == 0 {
		return errors.New("meta config: no phone number ids")
	}
	for sender, id := range c.PhoneNumberIDs {
		if !message.ValidE164(sender) {
			return fmt.Errorf("meta config: sender %q is not E.164", sender)
		}
		if !pathSafe(id) {
			return fmt.Errorf("meta config: phone number id %q of %s is not a path segment", id, sender)
		}
	}
	if c.WABAID != "" && !pathSafe(c.WABAID) {
		return fmt.Errorf("meta config: waba id %q is not a path segment", c.WABAID)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("meta config: timeout %v is negative", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("meta config: max conns %d is negative", c.MaxConns)
	}
	return nil
}

// pathSafe reports whether s is a non-empty path segment that needs no
// escaping: ids and versions are letters, digits, dots, dashes, underscores.
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
