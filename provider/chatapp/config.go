package chatapp

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of Config.
const (
	DefaultName     = "chatapp"
	DefaultEndpoint = "https://chatapp.cn-shanghai.aliyuncs.com"
	DefaultTimeout  = 10 * time.Second
	DefaultMaxConns = 512
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Name is the provider name recorded with every event; "chatapp"
	// unless several Alibaba accounts run side by side.
	Name string
	// Endpoint is the ChatApp API's root, scheme and host (and an optional
	// path); the regional endpoint, or a test server's address.
	Endpoint string
	// AccessKeyID and AccessKeySecret are the RAM user's AccessKey pair;
	// the secret signs every request and is never sent.
	AccessKeyID     string
	AccessKeySecret string
	// CustSpaceID is the ISV customer's space (CustSpaceId); empty sends
	// none, for an account that sends for itself.
	CustSpaceID string
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
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
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
	if c.Timeout < 0 {
		return fmt.Errorf("chatapp config: timeout %v is negative", c.Timeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("chatapp config: max conns %d is negative", c.MaxConns)
	}
	return nil
}
