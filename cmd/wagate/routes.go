package main

import (
	"fmt"
	"time"

	"github.com/wagate/wagate/dispatcher"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/chatapp"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sms"
	"github.com/wagate/wagate/ratelimit"
)

// router sends each sender number's messages along its route.
type router map[string]*dispatcher.Route

func (r router) Route(sender string) (*dispatcher.Route, bool) {
	rt, ok := r[sender]
	return rt, ok
}

// routes builds every provider account of the config and each sender's
// route: the primary provider is the Meta account of the number, else its
// Gallabox or ChatApp account; the "routes" section adds a secondary
// provider, an SMS account and the fallback chain. media gives the Meta
// accounts the uploaded files (nil: media by link only).
func (fc *fileConfig) routes(media meta.MediaSource) (router, error) {
	byName := map[string]provider.Provider{}
	primary := map[string]provider.Provider{}
	add := func(name string, p provider.Provider, numbers []string) error {
		if _, dup := byName[name]; dup {
			return fmt.Errorf("config: two provider accounts are named %q", name)
		}
		byName[name] = p
		for _, n := range numbers {
			if _, ok := primary[n]; !ok {
				primary[n] = p
			}
		}
		return nil
	}
	for _, a := range fc.Meta.Accounts {
		p, err := meta.New(meta.Config{Name: a.Name, BaseURL: a.BaseURL, Version: a.Version, AccessToken: a.AccessToken,
			PhoneNumberIDs: a.Numbers, WABAID: a.WABAID, Media: media})
		if err != nil {
			return nil, fmt.Errorf("config: meta account %s: %w", a.Name, err)
		}
		if err := add(p.Name(), p, keys(a.Numbers)); err != nil {
			return nil, err
		}
	}
	for _, a := range fc.Gallabox.Accounts {
		p, err := gallabox.New(gallabox.Config{Name: a.Name, BaseURL: a.BaseURL, APIKey: a.APIKey, APISecret: a.APISecret, ChannelID: a.Channels})
		if err != nil {
			return nil, fmt.Errorf("config: gallabox account %s: %w", a.Name, err)
		}
		if err := add(p.Name(), p, keys(a.Channels)); err != nil {
			return nil, err
		}
	}
	for _, a := range fc.ChatApp.Accounts {
		p, err := chatapp.New(chatapp.Config{Name: a.Name, Region: a.Region, Endpoint: a.Endpoint, AccessKeyID: a.AccessKeyID,
			AccessKeySecret: a.AccessKeySecret, CustSpaceID: a.CustSpaceID, TemplateCodes: a.TemplateCodes})
		if err != nil {
			return nil, fmt.Errorf("config: chatapp account %s: %w", a.Name, err)
		}
		if err := add(p.Name(), p, a.Numbers); err != nil {
			return nil, err
		}
	}
	for _, a := range fc.SMS.Accounts {
		p, err := sms.New(sms.Config{Name: a.Name, BaseURL: a.BaseURL, AccountSID: a.AccountSID, AuthToken: a.AuthToken,
			From: a.From, DefaultFrom: a.DefaultFrom})
		if err != nil {
			return nil, fmt.Errorf("config: sms account %s: %w", a.Name, err)
		}
		if err := add(p.Name(), p, nil); err != nil {
			return nil, err
		}
	}
	r := router{}
	for n, p := range primary {
		r[n] = &dispatcher.Route{Primary: p}
	}
	for n, rc := range fc.Routes {
		rt := r[n]
		if rt == nil {
			return nil, fmt.Errorf("config: route for %s, which no account sends for", n)
		}
		if rc.Secondary != "" {
			if rt.Secondary = byName[rc.Secondary]; rt.Secondary == nil {
				return nil, fmt.Errorf("config: route for %s: no account %q", n, rc.Secondary)
			}
		}
		if rc.SMS != "" {
			if rt.SMS = byName[rc.SMS]; rt.SMS == nil {
				return nil, fmt.Errorf("config: route for %s: no account %q", n, rc.SMS)
			}
		}
		for _, s := range rc.Fallback {
			step, err := dispatcher.ParseStep(s)
			if err != nil {
				return nil, fmt.Errorf("config: route for %s: %w", n, err)
			}
			rt.Fallback = append(rt.Fallback, step)
		}
	}
	return r, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// dispatchConfig is the dispatcher's share of the config.
func (fc *fileConfig) dispatchConfig(instance string) (dispatcher.Config, error) {
	c := dispatcher.Config{Instance: instance,
		Rates: ratelimit.Config{DefaultRate: fc.Rates.DefaultMPS, PerNumber: fc.Rates.PerNumber}}
	var err error
	if c.Pairs.Every, err = optDuration(fc.Pairs.Every); err != nil {
		return c, fmt.Errorf("config: pairs.every: %w", err)
	}
	c.Pairs.Burst = fc.Pairs.Burst
	b := fc.Breaker
	if c.Breaker.Window, err = optDuration(b.Window); err != nil {
		return c, fmt.Errorf("config: breaker.window: %w", err)
	}
	if c.Breaker.OpenFor, err = optDuration(b.OpenFor); err != nil {
		return c, fmt.Errorf("config: breaker.open_for: %w", err)
	}
	c.Breaker.MinRequests, c.Breaker.FailureRatio, c.Breaker.Probes = b.MinRequests, b.FailureRatio, b.Probes
	ds := fc.Dispatch
	c.InFlight, c.ReadAhead, c.MaxAttempts = ds.InFlight, ds.ReadAhead, ds.MaxAttempts
	for _, f := range []struct {
		name string
		s    string
		d    *time.Duration
	}{{"lease_ttl", ds.LeaseTTL, &c.LeaseTTL}, {"retry_base", ds.RetryBase, &c.RetryBase},
		{"retry_max", ds.RetryMax, &c.RetryMax}, {"send_timeout", ds.SendTimeout, &c.SendTimeout},
		{"max_age", ds.MaxAge, &c.MaxAge}, {"portfolio_recheck", ds.PortfolioRecheck, &c.PortfolioRecheck}} {
		if *f.d, err = optDuration(f.s); err != nil {
			return c, fmt.Errorf("config: dispatch.%s: %w", f.name, err)
		}
	}
	c.Reporting = map[string]bool{}
	for _, w := range fc.providerWebhooks() {
		c.Reporting[w.Name] = true
	}
	c.Portfolios = map[string]dispatcher.Portfolio{}
	for _, a := range fc.Meta.Accounts {
		limit := a.MessagingLimit
		if limit == 0 {
			limit = dispatcher.UnknownLimit
		}
		for n := range a.Numbers {
			c.Portfolios[n] = dispatcher.Portfolio{ID: a.portfolio(), Limit: limit}
		}
	}
	return c, nil
}

// portfolios maps the Meta accounts' WABA ids to their portfolios, for the
// messaging limits Meta announces by webhook.
func (fc *fileConfig) portfolios() map[string]string {
	out := map[string]string{}
	for _, a := range fc.Meta.Accounts {
		if a.WABAID != "" {
			out[a.WABAID] = a.portfolio()
		}
	}
	return out
}

func optDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
