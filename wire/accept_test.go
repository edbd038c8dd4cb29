package wire_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

func TestAcceptRefusals(t *testing.T) {
	good := func() http.Header {
		return http.Header{
			"Connection":            {"keep-alive, Upgrade"},
			"Upgrade":               {"WebSocket"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		}
	}
	tests := []struct {
		name   string
		method string
		edit   func(h http.Header)
		opts   *wire.AcceptOptions
		status int
	}{
		{"ok", "GET", nil, nil, http.StatusSwitchingProtocols},
		{"post", "POST", nil, nil, http.StatusMethodNotAllowed},
		{"no upgrade", "GET", func(h http.Header) { h.Del("Upgrade") }, nil, http.StatusUpgradeRequired},
		{"no connection upgrade", "GET", func(h http.Header) { h.Set("Connection", "keep-alive") }, nil, http.StatusUpgradeRequired},
		{"version 8", "GET", func(h http.Header) { h.Set("Sec-Websocket-Version", "8") }, nil, http.StatusUpgradeRequired},
		{"no key", "GET", func(h http.Header) { h.Del("Sec-Websocket-Key") }, nil, http.StatusBadRequest},
		{"short key", "GET", func(h http.Header) { h.Set("Sec-Websocket-Key", "c2hvcnQ=") }, nil, http.StatusBadRequest},
		{"key not base64", "GET", func(h http.Header) { h.Set("Sec-Websocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, nil, http.StatusBadRequest},
		{"cross origin", "GET", func(h http.Header) { h.Set("Origin", "http://evil.example") }, nil, http.StatusForbidden},
		{"origin pattern", "GET", func(h http.Header) { h.Set("Origin", "https://app.example.com") },
			&wire.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, http.StatusSwitchingProtocols},
		{"check origin refuses", "GET", nil,
			&wire.AcceptOptions{CheckOrigin: func(*http.Request) bool { return false }}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := wire.Accept(w, r, tt.opts)
				if err != nil {
					var he *wire.HandshakeError
					if !errors.As(err, &he) || he.Status != tt.status {
						t.Errorf("Accept error %v, want status %d", err, tt.status)
					}
					return
				}
				c.Close(wire.StatusNormalClosure, "")
			}))
			defer srv.Close()
			h := good()
			if tt.edit != nil {
				tt.edit(h)
			}
			resp := rawRequest(t, srv.Listener.Addr().String(), tt.method, h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == http.StatusSwitchingProtocols {
				if got := resp.Header.Get("Sec-Websocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
					t.Fatalf("Sec-WebSocket-Accept %q", got)
				}
			}
		})
	}
}

// rawRequest sends an upgrade request by hand and reads the response head.
func rawRequest(t *testing.T, addr, method string, h http.Header) *http.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s /ws HTTP/1.1\r\nHost: %s\r\n", method, addr)
	h.Write(&b)
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestSubprotocol(t *testing.T) {
	url := echoServer(t, &wire.AcceptOptions{Subprotocols: []string{"v2.chat", "v1.chat"}})
	tests := []struct {
		offer []string
		want  string
	}{
		{[]string{"v1.chat", "v2.chat"}, "v2.chat"}, // the server's preference wins
		{[]string{"v1.chat"}, "v1.chat"},
		{[]string{"other"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		c := dial(t, url, &wire.DialOptions{Subprotocols: tt.offer})
		if got := c.Subprotocol(); got != tt.want {
			t.Errorf("offer %v: chose %q, want %q", tt.offer, got, tt.want)
		}
	}
}

func TestDialErrors(t *testing.T) {
	notWS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websockets here", http.StatusNotFound)
	}))
	defer notWS.Close()
	wrongKey := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Sec-WebSocket-Accept", "bm9wZQ==")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer wrongKey.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tests := []struct {
		name, url string
		status    int
	}{
		{"not found", "ws" + strings.TrimPrefix(notWS.URL, "http"), http.StatusNotFound},
		{"wrong accept key", "ws" + strings.TrimPrefix(wrongKey.URL, "http"), http.StatusSwitchingProtocols},
		{"bad scheme", "http://127.0.0.1:1/", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := wire.Dial(ctx, tt.url, nil)
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial succeeded")
			}
			var he *wire.HandshakeError
			if tt.status != 0 && (!errors.As(err, &he) || he.Status != tt.status) {
				t.Fatalf("err = %v, want a HandshakeError with status %d", err, tt.status)
			}
		})
	}
}

func TestDialContextCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = wire.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}
