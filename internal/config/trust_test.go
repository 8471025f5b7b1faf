package config

import (
	"net/netip"
	"testing"
)

func TestTrustsProxy(t *testing.T) {
	t.Parallel()
	c := mustParse(t, doc(`trustedProxies: ["10.0.0.0/8", "192.168.1.7", "10.1.2.3/8", "2001:db8::/32", "::1", "::ffff:172.16.0.0/108", "fe80::1%eth0"]`), fakeEnv{})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"11.0.0.1", false},
		{"192.168.1.7", true},
		{"192.168.1.8", false},
		{"::ffff:10.2.3.4", true},    // IPv4-mapped peer, IPv4 prefix
		{"::ffff:192.168.1.7", true}, // IPv4-mapped peer, single IP
		{"172.16.5.5", true},         // IPv4 peer, IPv4-mapped prefix
		{"::ffff:172.16.5.5", true},  // both mapped
		{"172.32.0.1", false},        // outside the mapped /108 (= 172.16.0.0/12)
		{"2001:db8:1::5", true},
		{"2001:db9::5", false},
		{"::1", true},
		{"127.0.0.1", false},
		{"fe80::1", true},
		{"fe80::1%eth1", true}, // zones are ignored
		{"fe80::2", false},
	} {
		if got := c.TrustsProxy(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("TrustsProxy(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if none := mustParse(t, doc(""), fakeEnv{}); none.TrustsProxy(netip.MustParseAddr("127.0.0.1")) {
		t.Error("with no trustedProxies, TrustsProxy(127.0.0.1) = true, want false")
	}
}

func TestTrustedProxiesRefused(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"10.0.0.0/33", "10.0.0", "lb.internal", "::ffff:10.0.0.0/64", "2001:db8::/129", "", "10.0.0.0/8/8"} {
		_, p := parse(t, doc(`trustedProxies: ["`+in+`"]`), fakeEnv{})
		if want := `trustedProxies[0]: not a CIDR or IP: "` + in + `"`; len(p) != 1 || p[0] != want {
			t.Errorf("trustedProxies [%q]: problems %v, want [%q]", in, p, want)
		}
	}
}
