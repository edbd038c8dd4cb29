package wire_test

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shockwave-go/shockwave/wire"
)

// TestAcceptKeyRFC checks the example of RFC 6455 section 1.3.
func TestAcceptKeyRFC(t *testing.T) {
	var dst [28]byte
	if got := string(wire.AcceptKey(&dst, "dGhlIHNhbXBsZSBub25jZQ==")); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q, want s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", got)
	}
}

// TestAcceptKeyRandom compares AcceptKey with the definition on random keys.
func TestAcceptKeyRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100 {
		var raw [16]byte
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		key := base64.StdEncoding.EncodeToString(raw[:])
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		want := base64.StdEncoding.EncodeToString(sum[:])
		var dst [28]byte
		if got := string(wire.AcceptKey(&dst, key)); got != want {
			t.Fatalf("AcceptKey(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestAcceptChecksRecorder runs Accept's request checks against a
// ResponseRecorder, for cases accept_test.go does not cover over TCP, and
// checks the headers that go with a refusal. A recorder cannot be hijacked,
// so a request that passes every check ends in 500.
func TestAcceptChecksRecorder(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := func(mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/ws", nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", key)
		if mod != nil {
			mod(r)
		}
		return r
	}
	const passed = http.StatusInternalServerError
	tests := []struct {
		name       string
		r          *http.Request
		opts       *wire.AcceptOptions
		wantStatus int
		wantHeader map[string]string
	}{
		{"valid", upgrade(nil), nil, passed, nil},
		{"HTTP/1.0", upgrade(func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }), nil,
			http.StatusBadRequest, nil},
		{"Connection on two lines", upgrade(func(r *http.Request) { r.Header["Connection"] = []string{"keep-alive", "upgrade"} }), nil,
			passed, nil},
		{"Upgrade h2c", upgrade(func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }), nil,
			http.StatusUpgradeRequired, nil},
		{"Upgrade in capitals", upgrade(func(r *http.Request) { r.Header.Set("Upgrade", "WebSocket") }), nil,
			passed, nil},
		{"version 8", upgrade(func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }), nil,
			http.StatusUpgradeRequired, map[string]string{"Sec-WebSocket-Version": "13"}},
		{"no version", upgrade(func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }), nil,
			http.StatusUpgradeRequired, nil},
		{"key without padding", upgrade(func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA") }), nil,
			http.StatusBadRequest, nil},
		{"same origin", upgrade(func(r *http.Request) { r.Header.Set("Origin", "https://example.com") }), nil,
			passed, nil},
		{"same origin, other case", upgrade(func(r *http.Request) { r.Header.Set("Origin", "https://EXAMPLE.com") }), nil,
			passed, nil},
		{"malformed origin", upgrade(func(r *http.Request) { r.Header.Set("Origin", "::") }), nil,
			http.StatusForbidden, nil},
		{"origin pattern miss", upgrade(func(r *http.Request) { r.Header.Set("Origin", "https://example.org.evil.test") }),
			&wire.AcceptOptions{OriginPatterns: []string{"*.example.org"}}, http.StatusForbidden, nil},
		{"CheckOrigin true", upgrade(func(r *http.Request) { r.Header.Set("Origin", "https://evil.test") }),
			&wire.AcceptOptions{CheckOrigin: func(*http.Request) bool { return true }}, passed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, err := wire.Accept(w, tt.r, tt.opts)
			if c != nil {
				t.Fatal("Accept returned a connection")
			}
			var he *wire.HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want a *HandshakeError", err)
			}
			if he.Status != tt.wantStatus || w.Code != tt.wantStatus {
				t.Fatalf("status %d (written %d), want %d: %v", he.Status, w.Code, tt.wantStatus, err)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
