package gallabox

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/wagate/wagate/message"
)

// Defaults of Config.
const (
	DefaultName     = "gallabox"
	DefaultBaseURL  = "https://server.gallabox.com"
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 512
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Name is the provider name recorded with every event; "gallabox"
	// unless several Gallabox accounts run side by side.
	Name string
	// BaseURL is the API root, scheme and host (and an optional path
	// prefix); the simulator's address in tests.
	BaseURL string
	// APIKey and APISecret are the account's credentials, sent as the
	// apiKey and apiSecret headers.
	APIKey    string
	APISecret string
	// ChannelID maps each sender number in E.164 to the Gallabox channel
	// (a WhatsApp number connected to Gallabox) that sends for it.
	ChannelID map[string]string
	// DefaultChannelID sends for the senders ChannelID does not list;
	// empty refuses them.
	DefaultChannelID string
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
		return fmt.Errorf("gallabox config: base url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("gallabox config: base url %q is not an http(s) root", c.BaseURL)
	}
	for _, h := range []struct{ name, v string }{{"api key", c.APIKey}, {"api secret", c.APISecret}} {
		if h.v == "" {
			return fmt.Errorf("gallabox config: %s is empty", h.name)
		}
		for i := 0; i < len(h.v); i++ {
			if b := h.v[i]; b <= ' ' || b >= 0x7f {
				return fmt.Errorf("gallabox config: %s has characters a header cannot carry", h.name)
			}
		}
	}
	if len(c.ChannelID) == 0 && c.DefaultChannelID == "" {
		return errors.New("gallabox config: no channel ids and no default channel id")
	}
	for sender, id := range c.ChannelID {
		if !message.ValidE164(sender) {
			return fmt.Errorf("gallabox config: sender %q is not E.164", sender)
		}
		if !idSafe(id) {
			return fmt.Errorf("gallabox config: channel id %q of %s is empty or not a plain id", id, sender)
		}
	}
	if c.DefaultChannelID != "" && !idSafe(c.DefaultChannelID) {
		return fmt.Errorf("gallabox config: default channel id %q is not a plain id", c.DefaultChannelID)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("gallabox config: timeout %v is negative", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("gallabox config: max conns %d is negative", c.MaxConns)
	}
	return nil
}

// idSafe reports whether s is a non-empty id of letters, digits, dots,
// dashes and underscores, so that it needs no escaping in JSON.
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
	return true
}
