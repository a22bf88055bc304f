// Package netguard keeps the gateway's outbound requests to addresses a
// tenant names (its webhook, say) off the networks the gateway itself lives
// on: loopback, private, link-local and cloud-metadata addresses, unless
// the operator allows them. A check of the URL when it is configured is not
// enough (a name may resolve elsewhere later, or differently per lookup),
// so the Guard also dials: it resolves the name itself, refuses any
// forbidden address and connects to the address it checked.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ErrForbidden is the class of every refusal: the address is internal and
// not allowed by the operator.
var ErrForbidden = errors.New("internal address")

// forbidden are the ranges no tenant-named request may reach by default.
// IPv4-mapped IPv6 addresses are unmapped before the check.
var forbidden = mustPrefixes(
	"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches the local host
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, broadcast
	"::/128",          // unspecified
	"::1/128",         // loopback
	"64:ff9b::/96",    // NAT64: may embed any IPv4 address
	"64:ff9b:1::/48",  // local NAT64
	"fc00::/7",        // unique local (fd00:ec2::254: AWS metadata)
	"fe80::/10",       // link-local
	"ff00::/8",        // multicast
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4: may embed any IPv4 address
	"100::/64",        // discard
	"192.88.99.0/24",  // 6to4 relays
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"192.0.2.0/24",    // documentation
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guard decides which addresses tenant-named requests may reach, and dials
// only those. The zero Guard refuses every internal address. A Guard is
// safe for concurrent use.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver
	dialer   net.Dialer
}

// New returns a Guard that also lets requests reach the networks in allow
// (CIDR prefixes such as "10.1.0.0/16", or single addresses), which the
// operator trusts: an internal webhook receiver, or loopback in
// development. dialTimeout bounds each connection attempt (10 s when 0).
func New(allow []string, dialTimeout time.Duration) (*Guard, error) {
	g := &Guard{resolver: net.DefaultResolver}
	if dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	g.dialer.Timeout = dialTimeout
	for _, a := range allow {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return nil, fmt.Errorf("netguard: %q is neither a network (10.0.0.0/8) nor an address", a)
			}
			p = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// Loopback is the allow-list of development: this machine's own addresses.
func Loopback() []string { return []string{"127.0.0.0/8", "::1/128"} }

// Allowed reports whether addr may be reached: it is public, or the
// operator allowed its network.
func (g *Guard) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range g.allow {
		if p.Contains(addr) {
			return true
		}
	}
	if !addr.IsValid() {
		return false
	}
	for _, p := range forbidden {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// CheckHost resolves host (a name or an address literal) and returns an
// error wrapping ErrForbidden when any address it resolves to may not be
// reached. A name that does not resolve is not refused here: the dial
// checks again at every connection.
func (g *Guard) CheckHost(ctx context.Context, host string) error {
	if addr, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if !g.Allowed(addr) {
			return fmt.Errorf("%s is an %w", host, ErrForbidden)
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		if !g.Allowed(netip.MustParseAddr("127.0.0.1")) {
			return fmt.Errorf("%s is an %w", host, ErrForbidden)
		}
		return nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !g.Allowed(a) {
			return fmt.Errorf("%s resolves to %s, an %w", host, a.Unmap(), ErrForbidden)
		}
	}
	return nil
}

// Dial connects to addr ("host:port") as fasthttp.Client's Dial does, to
// an address the Guard allows: it resolves the name itself and connects to
// the first allowed address, so that no later lookup can swap in another.
// It refuses (ErrForbidden) when the name resolves to any forbidden
// address: a name that points partly inside is not the tenant's to use.
func (g *Guard) Dial(addr string) (net.Conn, error) {
	return g.DialContext(context.Background(), "tcp", addr)
}

// DialContext is Dial with a context and a network, as net/http's
// Transport takes it.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netguard: dial %s: %w", addr, err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, g.dialer.Timeout)
		addrs, err = g.resolver.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("netguard: resolve %s: %w", host, err)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("netguard: %s resolves to no address", host)
	}
	for _, a := range addrs {
		if !g.Allowed(a) {
			return nil, fmt.Errorf("netguard: %s resolves to %s, an %w", host, a.Unmap(), ErrForbidden)
		}
	}
	var last error
	for _, a := range addrs {
		c, err := g.dialer.DialContext(ctx, "tcp", net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, fmt.Errorf("netguard: dial %s: %w", host, last)
}
