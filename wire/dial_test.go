package wire_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// silentServer listens on loopback, accepts connections, optionally reads
// the upgrade request, and never answers. It returns the listener's
// address.
func silentServer(t *testing.T, readRequest bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			if readRequest {
				go http.ReadRequest(bufio.NewReader(nc))
			}
		}
	}()
	return ln.Addr().String()
}

// TestDialHandshakeTimeout: Dial with a context that has no deadline gives
// up after HandshakeTimeout on a server that accepts and never answers,
// whether it is waiting for the TLS handshake or for the 101 response; a
// context with an earlier deadline ends it first.
func TestDialHandshakeTimeout(t *testing.T) {
	tests := []struct {
		name        string
		scheme      string
		readRequest bool
		ctxTimeout  time.Duration // 0: context.Background
		timeout     time.Duration
		want        string // in the error
	}{
		{"silent ws", "ws", false, 0, 100 * time.Millisecond, "HandshakeTimeout"},
		{"request read, no answer", "ws", true, 0, 100 * time.Millisecond, "HandshakeTimeout"},
		{"silent wss", "wss", false, 0, 100 * time.Millisecond, "HandshakeTimeout"},
		{"context earlier", "ws", true, 100 * time.Millisecond, time.Hour, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.scheme + "://" + silentServer(t, tt.readRequest) + "/"
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := wire.Dial(ctx, url, &wire.DialOptions{
					HandshakeTimeout: tt.timeout,
					TLSConfig:        &tls.Config{InsecureSkipVerify: true},
				})
				done <- err
			}()
			err := await(t, done, "Dial", hang)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial = %v, want a deadline error saying %q", err, tt.want)
			}
		})
	}
}

// TestDialChecksResponse: the handshake fails on a 101 response that does
// not prove the server read our key, or that chooses what we did not
// offer, however it spreads its header lines; and on a response header
// without end.
func TestDialChecksResponse(t *testing.T) {
	plain := func(extra string) func(string) string {
		return func(key string) string { return respond101(key, extra) }
	}
	tests := []struct {
		name    string
		offer   []string
		respond func(key string) string
		want    string // in the error; "" for success
		sub     string // the subprotocol chosen, on success
	}{
		{"plain", nil, plain(""), "", ""},
		{"offered subprotocol", []string{"a", "b"}, plain("Sec-WebSocket-Protocol: b\r\n"), "", "b"},
		{"wrong accept", nil, func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
		}, "Sec-WebSocket-Accept", ""},
		{"second accept line", nil, plain("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "Sec-WebSocket-Accept", ""},
		{"no Upgrade", nil, func(key string) string {
			return strings.Replace(respond101(key, ""), "Upgrade: websocket\r\n", "", 1)
		}, "Upgrade", ""},
		{"subprotocol not offered", []string{"a"}, plain("Sec-WebSocket-Protocol: b\r\n"), "not offered", ""},
		{"subprotocol when none offered", nil, plain("Sec-WebSocket-Protocol: a\r\n"), "not offered", ""},
		{"subprotocol list", []string{"a", "b"}, plain("Sec-WebSocket-Protocol: a, b\r\n"), "not offered", ""},
		{"two subprotocol lines", []string{"a", "b"}, plain("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n"), "more than one", ""},
		{"extension", nil, plain("Sec-WebSocket-Extensions: permessage-deflate\r\n"), "extension", ""},
		{"extension after an empty line", nil, plain("Sec-WebSocket-Extensions: \r\nSec-WebSocket-Extensions: permessage-deflate\r\n"), "extension", ""},
		{"extension after an empty token", nil, plain("Sec-WebSocket-Extensions: , permessage-deflate\r\n"), "extension", ""},
		{"header without end", nil, plain(strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 2<<10)), "longer than 1 MiB", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := dialPeer(t, "tcp", &wire.DialOptions{Subprotocols: tt.offer}, tt.respond)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if c.Subprotocol() != tt.sub {
					t.Fatalf("Subprotocol = %q, want %q", c.Subprotocol(), tt.sub)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestDialURLWithoutHost: a URL without a host fails before anything is
// dialled (net.Dial would take an empty host for this machine).
func TestDialURLWithoutHost(t *testing.T) {
	for _, url := range []string{"ws:///path", "ws://:80/", "wss://"} {
		dialled := false
		_, _, err := wire.Dial(context.Background(), url, &wire.DialOptions{
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				dialled = true
				return nil, errors.New("dialled")
			},
		})
		if err == nil || dialled {
			t.Errorf("Dial(%q) = %v, dialled = %v; want an error before dialling", url, err, dialled)
		}
	}
}
