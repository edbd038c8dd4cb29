package soak

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// tlsStatsClient asks a TLS server for its stats. The server's
// certificate is made by its process; what is measured is the server, so
// the client takes it unverified.
var tlsStatsClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	DisableKeepAlives: true, // no connection of the test's own held at the server
}}

// dialTLS opens a TCP connection to addr and completes a TLS handshake on
// it, within 10 s.
func dialTLS(addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
}

// TestIdleMemoryTLS is TestIdleMemory over TLS: it holds -idle.conns idle
// wss sessions (2,000 by default, 200 with -short) open against a server
// in another process that serves TLS with http.Server.ServeTLS, on the
// default transport, and reports what each costs that server. TLS
// connections stay on the goroutine transport: each session must hold a
// goroutine, and at most 64 KiB of heap and stack.
func TestIdleMemoryTLS(t *testing.T) {
	n := *idleConns
	switch {
	case testing.Short():
		n = 200
	case n <= 0:
		n = 2000
	}
	srv := startServer(t, "", "SHOCKWAVE_TLS=1")
	defer srv.stop()
	statsAddr := "https://" + srv.addr
	before := stats(t, statsAddr)
	conns := upgradeWith(t, srv.addr, n, dialTLS)
	defer closeAll(conns)
	after := waitSessions(t, statsAddr, "every session open", func(st memStats) bool { return st.Sessions >= n })
	checkIdleCost(t, "tls", n, before, after, 64<<10)
	if after.Goroutines < before.Goroutines+n {
		t.Errorf("%d idle TLS sessions hold %d goroutines more than none: they should be on the goroutine transport",
			n, after.Goroutines-before.Goroutines)
	}
}
