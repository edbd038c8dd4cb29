package interop

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

// exchange sends one message each way, to show that a connection works.
func exchange(t testing.TB, p *pair) {
	t.Helper()
	p.startReader()
	if err := p.ours.WriteMessage(wire.OpText, []byte("to gws")); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), wire.OpText, []byte("to gws"))
	if err := p.peer.WriteString("to ours"); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, recv(t, p.msgs, "our side to receive"), wire.OpText, []byte("to ours"))
}

// TestSubprotocolOurServer negotiates subprotocols between a gws client and
// our server: our server picks its most preferred one that the client
// offers.
func TestSubprotocolOurServer(t *testing.T) {
	cases := []struct {
		name    string
		offered []string // by the gws client
		ours    []string // supported by our server, preferred first
		want    string
		peerErr error // what gws's NewClient fails with
	}{
		{"server-preference", []string{"b", "a"}, []string{"a", "b"}, "a", nil},
		{"one-common", []string{"x", "chat"}, []string{"chat", "y"}, "chat", nil},
		{"none-offered", nil, []string{"chat"}, "", nil},
		{"none-supported", []string{"chat"}, nil, "", gws.ErrSubprotocolNegotiation},
		{"no-common", []string{"x"}, []string{"chat"}, "", gws.ErrSubprotocolNegotiation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tryOpenOurServer(t, config{peerSub: tc.offered, oursSub: tc.ours})
			if tc.peerErr != nil {
				// Our server accepted with no subprotocol and the client,
				// which required one, gave up.
				if !errors.Is(err, tc.peerErr) {
					t.Fatalf("gws client: %v, want %v", err, tc.peerErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.ours.Subprotocol(); got != tc.want {
				t.Errorf("our Subprotocol() = %q, want %q", got, tc.want)
			}
			if got := p.peer.SubProtocol(); got != tc.want {
				t.Errorf("gws SubProtocol() = %q, want %q", got, tc.want)
			}
			exchange(t, p)
		})
	}
}

// TestSubprotocolGWSServer negotiates subprotocols between our client and a
// gws server, which refuses with 400 when it supports some and none is
// offered.
func TestSubprotocolGWSServer(t *testing.T) {
	cases := []struct {
		name       string
		ours       []string // offered by our client
		peer       []string // supported by the gws server
		want       string
		wantStatus int // of a refused handshake
	}{
		{"server-preference", []string{"b", "a"}, []string{"a", "b"}, "a", 0},
		{"one-common", []string{"chat"}, []string{"x", "chat"}, "chat", 0},
		{"neither", nil, nil, "", 0},
		{"server-supports-none", []string{"chat"}, nil, "", 0},
		{"no-common", []string{"x"}, []string{"chat"}, "", http.StatusBadRequest},
		{"none-offered", nil, []string{"chat"}, "", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tryOpenGWSServer(t, config{oursSub: tc.ours, peerSub: tc.peer})
			if tc.wantStatus != 0 {
				var he *wire.HandshakeError
				if !errors.As(err, &he) || he.Status != tc.wantStatus {
					t.Fatalf("Dial: %v, want a HandshakeError with status %d", err, tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.ours.Subprotocol(); got != tc.want {
				t.Errorf("our Subprotocol() = %q, want %q", got, tc.want)
			}
			if got := p.peer.SubProtocol(); got != tc.want {
				t.Errorf("gws SubProtocol() = %q, want %q", got, tc.want)
			}
			exchange(t, p)
		})
	}
}

// TestOrigin has gws clients with various Origin headers connect to our
// server: another site's origin is refused with 403 unless a pattern or
// CheckOrigin allows it.
func TestOrigin(t *testing.T) {
	const self = "{self}" // replaced by the server's own origin
	cases := []struct {
		name     string
		origin   string // "" sends none
		patterns []string
		check    func(*http.Request) bool
		ok       bool
	}{
		{name: "no-origin", ok: true},
		{name: "same-origin", origin: "http://" + self, ok: true},
		{name: "same-origin-https", origin: "https://" + self, ok: true},
		{name: "cross-origin", origin: "http://evil.example"},
		{name: "other-port", origin: "http://127.0.0.1:1"},
		{name: "null", origin: "null"},
		{name: "pattern-allows", origin: "https://app.example.com", patterns: []string{"*.example.com"}, ok: true},
		{name: "pattern-ignores-case", origin: "https://APP.Example.com", patterns: []string{"*.example.com"}, ok: true},
		{name: "pattern-refuses", origin: "https://example.com.evil.org", patterns: []string{"*.example.com"}},
		{name: "check-origin-allows", origin: "http://evil.example", check: func(*http.Request) bool { return true }, ok: true},
		{name: "check-origin-refuses", origin: "http://" + self, check: func(*http.Request) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			url, accepted := serveOurs(t, &wire.AcceptOptions{
				Options:        p.options(wire.Options{}),
				OriginPatterns: tc.patterns,
				CheckOrigin:    tc.check,
			})
			t.Cleanup(p.cleanup)
			cfg := config{header: http.Header{}}
			if tc.origin != "" {
				cfg.header.Set("Origin", strings.ReplaceAll(tc.origin, self, strings.TrimPrefix(url, "ws://")))
			}
			peer, resp, err := dialGWS(t, p.ev, gwsClientOption(url, cfg))
			r := recv(t, accepted, "our server's Accept")
			if !tc.ok {
				if err == nil {
					p.peer = peer
					t.Fatal("gws client connected, want it refused")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Errorf("gws client: %v, response %v; want 403", err, resp)
				}
				var he *wire.HandshakeError
				if !errors.As(r.err, &he) || he.Status != http.StatusForbidden {
					t.Errorf("Accept: %v, want a HandshakeError with status 403", r.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("gws client: %v", err)
			}
			p.peer = peer
			if r.err != nil {
				t.Fatalf("Accept: %v", r.err)
			}
			p.ours = r.c
			exchange(t, p)
		})
	}
}
