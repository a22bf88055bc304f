package chatapp

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of Config.
const (
	DefaultName = "chatapp"
	// DefaultRegion is Singapore, the one region Alibaba's list of
	// ChatApp (CAMS) endpoints names, and DefaultEndpoint its endpoint.
	DefaultRegion   = "ap-southeast-1"
	DefaultEndpoint = "https://cams.ap-southeast-1.aliyuncs.com"
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 512
)

// RegionEndpoint is the endpoint of a region by the SDK's regional rule,
// https://cams.<region>.aliyuncs.com.
func RegionEndpoint(region string) string { return "https://cams." + region + ".aliyuncs.com" }

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Name is the provider name recorded with every event; "chatapp"
	// unless several Alibaba accounts run side by side.
	Name string
	// Region is the Alibaba Cloud region of the account (DefaultRegion);
	// it gives the endpoint when Endpoint is empty.
	Region string
	// Endpoint is the ChatApp API's root, scheme and host (and an optional
	// path): RegionEndpoint(Region) by default, a test server's address in
	// tests.
	Endpoint string
	// AccessKeyID and AccessKeySecret are the RAM user's AccessKey pair;
	// the secret signs every request and is never sent.
	AccessKeyID     string
	AccessKeySecret string
	// CustSpaceID is the ISV customer's space (CustSpaceId); empty sends
	// none, for an account that sends for itself.
	CustSpaceID string
	// TemplateCodes maps a template's name and language to the code
	// ChatApp gave it (TemplateCode: ChatApp names templates by codes of
	// its own, which its console and ListChatappTemplate show):
	// TemplateCodes["booking_confirmation"]["en_US"] = "744c4b5c79c9…".
	// A template it does not list goes with its name as TemplateCode, as
	// before (an account whose codes are the names).
	TemplateCodes map[string]map[string]string
	// Timeout bounds one send, connection wait included; a context deadline
	// that comes sooner wins.
	Timeout time.Duration
	// MaxConns bounds the open connections to Endpoint's host.
	MaxConns int
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Endpoint == "" {
		c.Endpoint = RegionEndpoint(c.Region)
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
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return fmt.Errorf("chatapp config: endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("chatapp config: endpoint %q is not an http(s) root", c.Endpoint)
	}
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return errors.New("chatapp config: access key id and secret must not be empty")
	}
	if !regionSafe(c.Region) {
		return fmt.Errorf("chatapp config: region %q is not a region id (ap-southeast-1)", c.Region)
	}
	for name, langs := range c.TemplateCodes {
		if name == "" || len(langs) == 0 {
			return fmt.Errorf("chatapp config: template codes: template %q has no name or no languages", name)
		}
		for lang, code := range langs {
			if lang == "" || !codeSafe(code) {
				return fmt.Errorf("chatapp config: template codes: %s/%q: the language is empty or the code %q is not 1 to 128 visible characters", name, lang, code)
			}
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("chatapp config: timeout %v is negative", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("chatapp config: max conns %d is negative", c.MaxConns)
	}
	return nil
}

// regionSafe reports whether s looks like a region id: lower-case letters,
// digits and dashes, so that it makes a host name.
func regionSafe(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// codeSafe reports whether a template code is 1 to 128 visible ASCII
// characters.
func codeSafe(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
