package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestAllowed(t *testing.T) {
	def, err := New(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := New(append(Loopback(), "10.1.0.0/16", "192.168.7.9"), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr         string
		def, allowed bool
	}{
		{"8.8.8.8", true, true},
		{"2a03:2880:f10c:83:face:b00c:0:25de", true, true}, // graph.facebook.com
		{"127.0.0.1", false, true},
		{"127.1.2.3", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"10.0.0.5", false, false},
		{"10.1.200.3", false, true},
		{"172.16.0.1", false, false},
		{"172.31.255.255", false, false},
		{"172.32.0.1", true, true},
		{"192.168.7.9", false, true},
		{"192.168.7.10", false, false},
		{"169.254.169.254", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"fd00:ec2::254", false, false},
		{"fe80::1", false, false},
		{"100.64.0.1", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
		{"64:ff9b::7f00:1", false, false},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := def.Allowed(a); got != tt.def {
			t.Errorf("default Allowed(%s) = %v, want %v", tt.addr, got, tt.def)
		}
		if got := lo.Allowed(a); got != tt.allowed {
			t.Errorf("with an allow-list Allowed(%s) = %v, want %v", tt.addr, got, tt.allowed)
		}
	}
}

func TestNewRefusesWhatIsNoNetwork(t *testing.T) {
	for _, a := range []string{"10.0.0.0/33", "intranet", "10.0.0"} {
		if _, err := New([]string{a}, 0); err == nil {
			t.Errorf("New(%q) took it", a)
		}
	}
}

func TestCheckHost(t *testing.T) {
	g, _ := New(nil, 0)
	ctx := context.Background()
	tests := []struct {
		host   string
		refuse bool
	}{
		{"127.0.0.1", true},
		{"10.0.0.5", true},
		{"169.254.169.254", true},
		{"[::1]", true},
		{"::ffff:7f00:1", true},
		{"localhost", true},
		{"api.localhost", true},
		{"93.184.216.34", false},
		// A name that does not resolve here is left to the dial.
		{"no-such-host.invalid", false},
	}
	for _, tt := range tests {
		err := g.CheckHost(ctx, tt.host)
		if got := errors.Is(err, ErrForbidden); got != tt.refuse {
			t.Errorf("CheckHost(%s) = %v, want refused %v", tt.host, err, tt.refuse)
		}
	}
}

// TestDialReachesOnlyWhatIsAllowed: a listener on loopback cannot be
// reached by default, by address or by a name that resolves to it, and
// can once the operator allows loopback.
func TestDialReachesOnlyWhatIsAllowed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	def, _ := New(nil, 0)
	dev, _ := New(Loopback(), 0)
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port} {
		if c, err := def.Dial(addr); !errors.Is(err, ErrForbidden) {
			if c != nil {
				c.Close()
			}
			t.Errorf("default Dial(%s) = %v, want ErrForbidden", addr, err)
		}
		c, err := dev.Dial(addr)
		if err != nil {
			t.Errorf("Dial(%s) with loopback allowed: %v", addr, err)
			continue
		}
		c.Close()
	}
}
