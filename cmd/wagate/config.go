package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/wagate/wagate/inbound"
	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/templatesync"
)

// fileConfig is the JSON file named by WAGATE_CONFIG (or -config): tenants,
// their tokens and numbers, provider accounts and rates. Secrets may be
// given as "env:NAME" to read them from the environment instead.
type fileConfig struct {
	Tenants  []tenantConfig `json:"tenants"`
	Meta     metaConfig     `json:"meta"`
	Gallabox struct {
		Accounts []gallaboxAccount `json:"accounts"`
	} `json:"gallabox"`
	ChatApp struct {
		Accounts []chatappAccount `json:"accounts"`
	} `json:"chatapp"`
	SMS struct {
		Accounts []smsAccount `json:"accounts"`
	} `json:"sms"`
	// Routes gives a sender number its secondary provider, its SMS account
	// and its fallback chain ("secondary", "sms", "hold").
	Routes   map[string]routeConfig `json:"routes"`
	Rates    rateConfig             `json:"rates"`
	Pairs    pairConfig             `json:"pairs"`
	Breaker  breakerConfig          `json:"breaker"`
	Dispatch dispatchSettings       `json:"dispatch"`
}

// dispatchSettings tune the dispatcher (durations as "5s"); zero keeps the
// defaults.
type dispatchSettings struct {
	LeaseTTL    string `json:"lease_ttl"`
	InFlight    int    `json:"in_flight"`
	ReadAhead   int    `json:"read_ahead"`
	MaxAttempts int    `json:"max_attempts"`
	RetryBase   string `json:"retry_base"`
	RetryMax    string `json:"retry_max"`
	SendTimeout string `json:"send_timeout"`
	MaxAge      string `json:"max_age"`
	// PortfolioRecheck is how often a send held by its portfolio's
	// messaging limit looks again ("1m").
	PortfolioRecheck string `json:"portfolio_recheck"`
}

type gallaboxAccount struct {
	Name      string `json:"name"`
	BaseURL   string `json:"base_url"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
	// Channels maps sender numbers (E.164) to Gallabox channel ids.
	Channels map[string]string `json:"channels"`
	// WebhookSecret is the Secret set on the account's Gallabox webhook:
	// it verifies the status callbacks POST /webhooks/gallabox takes.
	// Without it the account's callbacks are refused.
	WebhookSecret string `json:"webhook_secret"`
}

type chatappAccount struct {
	Name            string `json:"name"`
	Endpoint        string `json:"endpoint"`
	AccessKeyID     string `json:"access_key_id"`
	AccessKeySecret string `json:"access_key_secret"`
	CustSpaceID     string `json:"cust_space_id"`
	// Region is the account's Alibaba Cloud region (ap-southeast-1); it
	// gives the endpoint when Endpoint is empty.
	Region string `json:"region"`
	// Numbers are the sender numbers (E.164) this account sends for.
	Numbers []string `json:"numbers"`
	// TemplateCodes maps a template's name and language to the code
	// ChatApp gave it: {"booking_confirmation": {"en_US": "744c4b5c…"}}.
	// An unmapped template goes with its name as the code.
	TemplateCodes map[string]map[string]string `json:"template_codes"`
	// WebhookToken is the token of the account's ChatApp callback URL,
	// https://<gateway>/webhooks/chatapp?token=<webhook_token>: ChatApp
	// signs nothing, so it verifies the status reports. Without it the
	// account's reports are refused.
	WebhookToken string `json:"webhook_token"`
}

type smsAccount struct {
	Name       string `json:"name"`
	BaseURL    string `json:"base_url"`
	AccountSID string `json:"account_sid"`
	AuthToken  string `json:"auth_token"`
	// From maps sender numbers to the SMS sender used for them.
	From        map[string]string `json:"from"`
	DefaultFrom string            `json:"default_from"`
}

type routeConfig struct {
	// Secondary names a Gallabox or ChatApp account sending for the same
	// number while the primary's breaker is open.
	Secondary string `json:"secondary"`
	// SMS names the SMS account carrying the fallback text.
	SMS      string   `json:"sms"`
	Fallback []string `json:"fallback"`
}

type pairConfig struct {
	// Every is the steady interval between messages to one recipient ("6s").
	Every string `json:"every"`
	Burst int    `json:"burst"`
}

type breakerConfig struct {
	Window       string  `json:"window"`
	MinRequests  uint32  `json:"min_requests"`
	FailureRatio float64 `json:"failure_ratio"`
	OpenFor      string  `json:"open_for"`
	Probes       uint32  `json:"probes"`
}

type tenantConfig struct {
	ID string `json:"id"`
	// Senders are the tenant's numbers (E.164); the first is the default.
	Senders []string      `json:"senders"`
	Tokens  []tokenConfig `json:"tokens"`
	// MaxQueued caps the tenant's messages not sent yet (1 000 000); past
	// it sends are refused with 429 until the queue drains.
	MaxQueued int64 `json:"max_queued"`
}

type tokenConfig struct {
	// Token in clear (prefer "env:NAME"), or SHA256 as 64 hex digits.
	Token  string      `json:"token,omitempty"`
	SHA256 string      `json:"sha256,omitempty"`
	Role   ingest.Role `json:"role"`
}

type metaConfig struct {
	// AppSecret verifies webhook signatures; VerifyToken answers the
	// subscription handshake.
	AppSecret   string        `json:"app_secret"`
	VerifyToken string        `json:"verify_token"`
	Accounts    []metaAccount `json:"accounts"`
}

type metaAccount struct {
	Name        string `json:"name"`
	BaseURL     string `json:"base_url"`
	Version     string `json:"version"`
	AccessToken string `json:"access_token"`
	// Numbers maps sender numbers (E.164) to Meta phone number ids.
	Numbers map[string]string `json:"numbers"`
	// WABAID is the WhatsApp Business Account id holding the numbers and
	// their templates; without it the account's templates are not synced.
	WABAID string `json:"waba_id"`
	// Portfolio names the business portfolio the account belongs to
	// (default: its WABA id, else its name): accounts of one portfolio
	// share its messaging limit.
	Portfolio string `json:"portfolio"`
	// MessagingLimit is the portfolio's messaging limit, the unique guests
	// its numbers may start conversations with in 24 hours (250, 2000,
	// 10000, 100000; -1 unlimited; 0 or absent: none until Meta announces
	// one by webhook, which then takes its place).
	MessagingLimit int `json:"messaging_limit"`
}

// portfolio is the account's business portfolio id.
func (a *metaAccount) portfolio() string {
	switch {
	case a.Portfolio != "":
		return a.Portfolio
	case a.WABAID != "":
		return a.WABAID
	}
	return a.Name
}

type rateConfig struct {
	// DefaultMPS is a number's messages per second (80).
	DefaultMPS float64 `json:"default_mps"`
	// PerNumber overrides it (E.164 → mps).
	PerNumber map[string]float64 `json:"per_number"`
}

// loadFileConfig reads and checks a config file. It is strict: a field
// wagate does not know is refused with where it is, rather than ignored,
// and a secret "env:NAME" whose variable is not set is refused by name.
func loadFileConfig(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var fc fileConfig
	if err := json.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, withLine(b, err))
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := unknownFields(doc, reflect.TypeFor[fileConfig]()); err != nil {
		return nil, err
	}
	if err := fc.resolveSecrets(); err != nil {
		return nil, err
	}
	return &fc, fc.validate()
}

// withLine adds the line and column to a JSON syntax error, which
// encoding/json gives as a byte offset.
func withLine(b []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) || se.Offset > int64(len(b)) {
		return err
	}
	before := b[:se.Offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(se.Offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// resolveSecrets replaces every secret written "env:NAME" with $NAME. An
// unset or empty variable is an error naming it and the field (never the
// value); all of them are reported at once.
func (fc *fileConfig) resolveSecrets() error {
	var errs []error
	res := func(v *string, path string, args ...any) {
		if err := resolveSecret(v, fmt.Sprintf(path, args...)); err != nil {
			errs = append(errs, err)
		}
	}
	res(&fc.Meta.AppSecret, "meta.app_secret")
	res(&fc.Meta.VerifyToken, "meta.verify_token")
	for i := range fc.Meta.Accounts {
		res(&fc.Meta.Accounts[i].AccessToken, "meta.accounts[%d].access_token", i)
	}
	for i := range fc.Gallabox.Accounts {
		a := &fc.Gallabox.Accounts[i]
		res(&a.APIKey, "gallabox.accounts[%d].api_key", i)
		res(&a.APISecret, "gallabox.accounts[%d].api_secret", i)
		res(&a.WebhookSecret, "gallabox.accounts[%d].webhook_secret", i)
	}
	for i := range fc.ChatApp.Accounts {
		a := &fc.ChatApp.Accounts[i]
		res(&a.AccessKeyID, "chatapp.accounts[%d].access_key_id", i)
		res(&a.AccessKeySecret, "chatapp.accounts[%d].access_key_secret", i)
		res(&a.WebhookToken, "chatapp.accounts[%d].webhook_token", i)
	}
	for i := range fc.SMS.Accounts {
		res(&fc.SMS.Accounts[i].AuthToken, "sms.accounts[%d].auth_token", i)
	}
	for i := range fc.Tenants {
		for j := range fc.Tenants[i].Tokens {
			res(&fc.Tenants[i].Tokens[j].Token, "tenants[%d].tokens[%d].token", i, j)
		}
	}
	return errors.Join(errs...)
}

// resolveSecret resolves *v if it is "env:NAME"; path names the field in
// errors.
func resolveSecret(v *string, path string) error {
	name, ok := strings.CutPrefix(*v, "env:")
	if !ok {
		return nil
	}
	if name == "" {
		return fmt.Errorf("config: %s: \"env:\" names no environment variable", path)
	}
	val, set := os.LookupEnv(name)
	switch {
	case !set:
		return fmt.Errorf("config: %s: environment variable %s is not set", path, name)
	case val == "":
		return fmt.Errorf("config: %s: environment variable %s is empty", path, name)
	}
	*v = val
	return nil
}

func (fc *fileConfig) validate() error {
	if len(fc.Tenants) == 0 {
		return fmt.Errorf("config: no tenants")
	}
	if len(fc.Meta.Accounts) > 0 && (fc.Meta.AppSecret == "" || fc.Meta.VerifyToken == "") {
		return fmt.Errorf("config: meta.app_secret and meta.verify_token are required: without them Meta's webhooks cannot be verified")
	}
	if err := fc.validateWebhookSecrets(); err != nil {
		return err
	}
	routed := map[string]bool{}
	for _, a := range fc.Meta.Accounts {
		if a.AccessToken == "" {
			return fmt.Errorf("config: meta account %q has no access_token", a.Name)
		}
		if a.MessagingLimit < -1 {
			return fmt.Errorf("config: meta account %q: messaging_limit %d is neither a number of guests nor -1 (unlimited)", a.Name, a.MessagingLimit)
		}
		if !validTenantID(a.portfolio()) {
			return fmt.Errorf("config: meta account %q: portfolio %q is not letters, digits, '.', '_' and '-' (at most 64)", a.Name, a.portfolio())
		}
		for n := range a.Numbers {
			routed[n] = true
		}
	}
	for _, a := range fc.Gallabox.Accounts {
		for n := range a.Channels {
			routed[n] = true
		}
	}
	for _, a := range fc.ChatApp.Accounts {
		for _, n := range a.Numbers {
			routed[n] = true
		}
	}
	for _, t := range fc.Tenants {
		for _, s := range t.Senders {
			if !message.ValidE164(s) {
				return fmt.Errorf("config: tenant %s: sender %q is not E.164", t.ID, s)
			}
			if !routed[s] {
				return fmt.Errorf("config: tenant %s: no provider account sends for %s", t.ID, s)
			}
		}
	}
	return nil
}

// tokens builds the API's token set.
func (fc *fileConfig) tokens() (*ingest.Tokens, error) {
	ts := ingest.NewTokens()
	seen := map[string]string{}
	for _, tc := range fc.Tenants {
		if prev, ok := seen[tc.ID]; ok || !validTenantID(tc.ID) {
			return nil, fmt.Errorf("config: tenant id %q is empty, used twice (%s), or not letters, digits, '.', '_' and '-' (at most 64)", tc.ID, prev)
		}
		seen[tc.ID] = tc.ID
		t := &ingest.Tenant{ID: tc.ID, Senders: tc.Senders, MaxQueued: tc.MaxQueued}
		// A tenant's staff may sign in even if it has no API token.
		if len(t.Senders) > 0 {
			if err := ts.AddTenant(t); err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
		}
		for _, tok := range tc.Tokens {
			p := ingest.Principal{Tenant: t, Role: tok.Role}
			var err error
			switch {
			case tok.Token != "":
				err = ts.Add(tok.Token, p)
			case len(tok.SHA256) == 64:
				var h [32]byte
				if _, err = hex.Decode(h[:], []byte(tok.SHA256)); err == nil {
					err = ts.AddHash(h, p)
				}
			default:
				err = fmt.Errorf("tenant %s: a token needs token or sha256", tc.ID)
			}
			if err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
		}
	}
	return ts, nil
}

// validTenantID reports whether id can name a tenant: it goes into Redis
// keys and hash tags.
func validTenantID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// numbers maps each Meta phone number id to its business number and the
// tenant that owns it, for the guests' inbound messages.
func (fc *fileConfig) numbers() map[string]inbound.NumberRef {
	tenantOf := map[string]string{}
	for _, t := range fc.Tenants {
		for _, s := range t.Senders {
			tenantOf[s] = t.ID
		}
	}
	out := map[string]inbound.NumberRef{}
	for _, a := range fc.Meta.Accounts {
		for sender, pnid := range a.Numbers {
			if t, ok := tenantOf[sender]; ok {
				out[pnid] = inbound.NumberRef{Tenant: t, Sender: sender}
			}
		}
	}
	return out
}

// templateAccounts builds the template client of each Meta account with a
// waba_id: a tenant submits through the first account serving one of its
// numbers, and takes the template webhooks of every such account.
func (fc *fileConfig) templateAccounts() (map[string]templatesync.Account, map[string][]string, error) {
	accounts, wabaTenants := map[string]templatesync.Account{}, map[string][]string{}
	for _, a := range fc.Meta.Accounts {
		if a.WABAID == "" {
			continue
		}
		c, err := meta.NewTemplates(meta.Config{Name: a.Name, BaseURL: a.BaseURL, Version: a.Version,
			AccessToken: a.AccessToken, PhoneNumberIDs: a.Numbers, WABAID: a.WABAID})
		if err != nil {
			return nil, nil, fmt.Errorf("config: meta account %s: %w", a.Name, err)
		}
		for _, t := range fc.Tenants {
			for _, s := range t.Senders {
				if _, ok := a.Numbers[s]; ok {
					if _, has := accounts[t.ID]; !has {
						accounts[t.ID] = c
					}
					wabaTenants[a.WABAID] = append(wabaTenants[a.WABAID], t.ID)
					break
				}
			}
		}
	}
	return accounts, wabaTenants, nil
}

// env returns $name or def.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// envBool reports whether $name is set to a true value (1, true, yes).
func envBool(name string) bool {
	v, err := strconv.ParseBool(os.Getenv(name))
	return err == nil && v || os.Getenv(name) == "yes"
}
