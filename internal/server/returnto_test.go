package server

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, `    returnTo:
      allowedOrigins: [https://docs.example.com]
`))
	a := s.apps[0]
	cases := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/orders?id=7#top", "/orders?id=7#top"},
		{"/a%20b", "/a%20b"},
		{"https://app.example.com/x?y=1", "/x?y=1"}, // same origin: checked and kept as a path
		{"HTTPS://APP.EXAMPLE.COM/x", "/x"},
		{"https://app.example.com", "/"},
		{"https://app.example.com/%2e%2e/x", "/"},
		{"/#/../..//evil.example", "/#/../..//evil.example"}, // a fragment, sent as is
		{"https://docs.example.com/guide", "https://docs.example.com/guide"},
		// protocol-relative and slash tricks
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2f/evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%252F%252Fevil.example", "/%252F%252Fevil.example"}, // stays a path: the browser does not double-decode
		// schemes
		{"javascript:alert(1)", "/"},
		{"JavaScript:alert(1)", "/"},
		{"jAvAsCrIpT:alert(1)", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"vbscript:msgbox", "/"},
		{"http://app.example.com/x", "/"}, // other scheme, other origin
		{"https:evil.example", "/"},
		{"https:/evil.example", "/"},
		{"https://evil.example", "/"},
		{"https://app.example.com.evil.example/", "/"},
		{"https://app.example.com@evil.example/", "/"},
		{"https://user:pw@app.example.com/", "/"},
		{"https://app.example.com:444/", "/"},
		{"https://docs.example.com:8443/", "/"},
		// control characters: browsers strip tab/CR/LF inside URLs
		{"/\t/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"/x\r\nSet-Cookie: a=b", "/"},
		{"/%0d%0aSet-Cookie:a=b", "/%0d%0aSet-Cookie:a=b"}, // encoded: harmless in Location
		{"java\tscript:alert(1)", "/"},
		{" //evil.example", "/"},
		// dot segments and relative forms
		{"/../evil", "/"},
		{"/a/../../evil", "/"},
		{"evil.example", "/"},
		{"./x", "/"},
		{"?x=1", "/"},
		{"#frag", "/"},
		// size
		{"/" + strings.Repeat("a", 3000), "/"},
	}
	for _, c := range cases {
		if got := a.safeReturnTo(c.in); got != c.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSafeReturnToPathPrefix(t *testing.T) {
	t.Parallel()
	cfg, _ := cfgWithURL(t, "https://example.com/shop")
	a := newTestServer(t, cfg).apps[0]
	for in, want := range map[string]string{
		"":                                      "/shop/",
		"/shop/cart":                            "/shop/cart",
		"/shop":                                 "/shop",
		"/shopping":                             "/shop/",
		"/admin":                                "/shop/",
		"/shop/../x":                            "/shop/",
		"https://example.com/admin":             "/shop/",
		"https://example.com/shop/x":            "/shop/x",
		"https://example.com":                   "/shop/",
		"https://example.com/shop/%2e%2e/admin": "/shop/",
		"/shop/%2e%2e/admin":                    "/shop/",
		"/shop/#/../../admin":                   "/shop/#/../../admin",
	} {
		if got := a.safeReturnTo(in); got != want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReturnTo: whatever comes in, the result is a path of the app or a URL
// on an allowed origin, and a browser resolving it against the app stays
// there.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "//evil.example", "/\\evil", "https://app.example.com/x", "javascript:alert(1)",
		"/%2F%2Fevil", "https://app.example.com@evil", "/a/../../b", "\x00", "/\t/x", "https://docs.example.com/"} {
		f.Add(s)
	}
	cfg, err := cfgWithURLExtra("https://app.example.com", `    returnTo:
      allowedOrigins: [https://docs.example.com]
`)
	if err != nil {
		f.Fatal(err)
	}
	s, err := newServerNoT(cfg)
	if err != nil {
		f.Fatal(err)
	}
	a := s.apps[0]
	shopCfg, err := cfgWithURLExtra("https://app.example.com/shop", "")
	if err != nil {
		f.Fatal(err)
	}
	shopServer, err := newServerNoT(shopCfg)
	if err != nil {
		f.Fatal(err)
	}
	shop := shopServer.apps[0]
	base, _ := url.Parse("https://app.example.com/page")
	f.Fuzz(func(t *testing.T, in string) {
		out := a.safeReturnTo(in)
		for _, c := range out {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("safeReturnTo(%q) = %q has a control character or backslash", in, out)
			}
		}
		u, err := base.Parse(out)
		if err != nil {
			t.Fatalf("safeReturnTo(%q) = %q does not parse: %v", in, out, err)
		}
		origin := u.Scheme + "://" + u.Host
		if origin != "https://app.example.com" && origin != "https://docs.example.com" {
			t.Fatalf("safeReturnTo(%q) = %q leaves to %s", in, out, origin)
		}
		if u.User != nil {
			t.Fatalf("safeReturnTo(%q) = %q has userinfo", in, out)
		}
		// An app under /shop never sends the browser elsewhere on its origin.
		out = shop.safeReturnTo(in)
		u, err = base.Parse(out)
		if err != nil {
			t.Fatalf("shop: safeReturnTo(%q) = %q does not parse: %v", in, out, err)
		}
		if u.Host != "app.example.com" || (u.Path != "/shop" && !strings.HasPrefix(u.Path, "/shop/")) {
			t.Fatalf("shop: safeReturnTo(%q) = %q resolves to %s", in, out, u)
		}
	})
}
