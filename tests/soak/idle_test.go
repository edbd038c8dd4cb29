package soak

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/tests/internal/testcert"
	"github.com/shockwave-go/shockwave/wire"
)

var idleConns = flag.Int("idle.conns", 0, "connections held open by TestIdleMemory (0: as many as the fd limit allows, at most 20,000)")

// maxConns is how many connections the fd limit lets each side hold, with
// room for the rest of the process, at most 20,000.
func maxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<40 {
		return 10_000
	}
	return max(1000, min(20_000, int(rl.Cur)-200))
}

// memStats is what the server process reports about itself.
type memStats struct {
	Heap, Stack, Sys uint64
	RSS, PeakRSS     uint64
	Sessions         int
	Goroutines       int
	FDs              int    // open descriptors, where /proc tells
	Inbound          int64  // bytes of messages being assembled (Runtime.MemoryInUse)
	Outbound         int64  // bytes of frames queued
	Refused          uint64 // sessions closed by the inbound budget
	ClosedSlow       uint64 // sessions closed as slow consumers
}

// TestMain turns the test binary into the idle server when asked to, so the
// server's memory is measured in a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("SHOCKWAVE_IDLE_SERVER") == "1" {
		idleServer()
		return
	}
	os.Exit(m.Run())
}

func idleServer() {
	tr := runtime.TransportAuto
	if os.Getenv("SHOCKWAVE_TRANSPORT") == "goroutine" {
		tr = runtime.TransportGoroutine
	}
	// No heartbeat: the test's clients never read, so they cannot answer
	// a ping, and a ramp slower than the default 45 s (-race on a busy
	// machine) would see its first sessions closed for a missing pong.
	opts := []runtime.Option{runtime.WithTransport(tr), runtime.WithHeartbeat(-1, 0)}
	var h session.Handler = session.NopHandler{}
	if os.Getenv("SHOCKWAVE_ECHO") == "1" { // see deflate_test.go
		h = session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
	}
	switch os.Getenv("SHOCKWAVE_DEFLATE") {
	case "1":
		opts = append(opts, runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))
	case "takeover":
		opts = append(opts, runtime.WithCompression(wire.CompressionContextTakeover, wire.DefaultCompressionThreshold))
	}
	if os.Getenv("SHOCKWAVE_BUDGET") != "" { // see limits_test.go
		h = session.HandlerFunc(budgetHandler)
		opts = append(opts, runtime.WithMaxMessageSize(budgetMessage),
			runtime.WithMemoryBudget(budgetInbound, budgetOutbound),
			runtime.WithMailbox(2*fillFrames, 2*fillFrames<<14, session.PolicyClose)) // only the budget refuses a fill
	}
	rt, err := runtime.New(h, opts...)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", rt)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		goruntime.GC()
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		fds, _ := os.ReadDir("/proc/self/fd")
		inbound, outbound := rt.MemoryInUse()
		json.NewEncoder(w).Encode(memStats{
			Heap: ms.HeapInuse, Stack: ms.StackInuse, Sys: ms.Sys, RSS: procStatus("VmRSS:"), PeakRSS: procStatus("VmHWM:"),
			Sessions: rt.Len(), Goroutines: goruntime.NumGoroutine(), FDs: len(fds),
			Inbound: inbound, Outbound: outbound,
			Refused: rt.Counters().InboundBudget.Load(), ClosedSlow: rt.Counters().ClosedSlow.Load(),
		})
	})
	if os.Getenv("SHOCKWAVE_TRANSPORT") == "listener" {
		// The upgrades on a listener of the Runtime's own, /stats on ln.
		wsln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		go rt.Serve(wsln)
		fmt.Println(ln.Addr().String(), wsln.Addr().String())
	} else {
		fmt.Println(ln.Addr().String())
	}
	go func() { // exit when the test goes away
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}()
	if os.Getenv("SHOCKWAVE_TLS") == "1" { // see tls_test.go
		cert, err := testcert.New()
		if err != nil {
			panic(err)
		}
		srv := &http.Server{Handler: mux, TLSConfig: cert.ServerConfig()}
		srv.ServeTLS(ln, "", "")
		return
	}
	http.Serve(ln, mux)
}

// procStatus returns a size in bytes from /proc/self/status: "VmRSS:",
// the resident set, or "VmHWM:", its peak.
func procStatus(key string) uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// server is the idle server, in a process of its own.
type server struct {
	addr   string // of /stats, and of /ws but on the listener transport
	wsAddr string // of the upgrades
	stop   func()
}

// startServer starts the idle server on transport ("" or "goroutine"),
// with more environment variables if any.
func startServer(t *testing.T, transport string, env ...string) server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHOCKWAVE_IDLE_SERVER=1", "SHOCKWAVE_TRANSPORT="+transport)
	cmd.Env = append(cmd.Env, env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		t.Fatal(err)
	}
	// One address, or, on the listener transport, the second is the
	// Runtime's own listener (Runtime.Serve).
	addrs := strings.Fields(addr)
	if len(addrs) == 0 {
		stop()
		t.Fatalf("the server printed %q", addr)
	}
	return server{addrs[0], addrs[len(addrs)-1], stop}
}

// upgrade opens n WebSocket connections to addr and leaves them idle.
func upgrade(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	return upgradeWith(t, addr, n, func(addr string) (net.Conn, error) {
		return net.DialTimeout("tcp", addr, 5*time.Second)
	})
}

// upgradeWith is upgrade over the connections that dial opens, with the
// extra header lines given ("Name: value").
func upgradeWith(t *testing.T, addr string, n int, dial func(addr string) (net.Conn, error), header ...string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	req += "\r\n"
	for range n {
		c, err := dial(addr)
		if err != nil {
			closeAll(conns)
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			closeAll(conns)
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			closeAll(conns)
			t.Fatalf("handshake %d: %v %v", len(conns), resp, err)
		}
		c.SetDeadline(time.Time{})
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitSessions polls the server until cond holds of its stats.
func waitSessions(t *testing.T, addr, what string, cond func(memStats) bool) memStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := stats(t, addr)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: server at %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// transports are the runtime's: the event loop where there is one (the
// default), and a goroutine per session, behind net/http; and the event
// loop serving a listener itself (Runtime.Serve).
var transports = []string{"eventloop", "goroutine", "listener"}

// TestIdleMemory holds -idle.conns idle sessions (by default as many as
// the fd limit allows) open against a server in another process and reports what each costs that server: Go heap and
// goroutine stacks (MemStats, after GC) and RSS. On the event loop, an
// idle session must cost at most 1 KiB of heap and stack.
func TestIdleMemory(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { testIdleMemory(t, tr) })
	}
}

func testIdleMemory(t *testing.T, transport string) {
	n := *idleConns
	switch {
	case testing.Short():
		n = 1000
	case n <= 0:
		n = maxConns()
	}
	srv := startServer(t, transport)
	defer srv.stop()
	before := stats(t, srv.addr)
	conns := upgrade(t, srv.wsAddr, n)
	defer closeAll(conns)
	after := waitSessions(t, srv.addr, "every session open", func(st memStats) bool { return st.Sessions >= n })
	limit := float64(64 << 10) // a regression guard for goroutines; docs/benchmarks.md compares
	if transport != "goroutine" && goruntime.GOOS == "linux" {
		limit = 1 << 10 // the event loop's goal
	}
	checkIdleCost(t, transport, n, before, after, limit)
}

// checkIdleCost reports what each of n idle sessions cost the server, from
// its stats before they opened and after, and fails the test if their heap
// and stacks come to more than limit bytes a session.
func checkIdleCost(t *testing.T, label string, n int, before, after memStats, limit float64) {
	t.Helper()
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	heap, stack, rssPer := per(after.Heap, before.Heap), per(after.Stack, before.Stack), per(after.RSS, before.RSS)
	t.Logf("%s: %d idle sessions: heap %.0f B + stacks %.0f B = %.0f B per session (RSS %.0f B); %d goroutines",
		label, n, heap, stack, heap+stack, rssPer, after.Goroutines)
	if heap+stack > limit {
		t.Errorf("an idle session costs %.0f bytes, more than %.0f", heap+stack, limit)
	}
}

// TestChurn opens and closes connections in rounds, some closed cleanly,
// some dropped, some mid-handshake, and checks that the server ends each
// round with the descriptors, goroutines and memory it started with: no
// leak of sockets, sessions or buffers.
func TestChurn(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { testChurn(t, tr) })
	}
}

func testChurn(t *testing.T, transport string) {
	const rounds, perRound = 10, 300
	srv := startServer(t, transport)
	defer srv.stop()
	idle := func(st memStats) bool { return st.Sessions == 0 }
	base := waitSessions(t, srv.addr, "start", idle)
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2} // masked close 1000
	for r := range rounds {
		conns := upgrade(t, srv.addr, perRound)
		for i, c := range conns {
			switch i % 3 {
			case 0: // a clean close: send one and wait for the answer
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write(closeFrame)
				io.Copy(io.Discard, c)
				c.Close()
			case 1: // dropped
				c.Close()
			case 2: // reset: unread data at close
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}
		// Half-open handshakes: the server must not keep them.
		for range 10 {
			if c, err := net.Dial("tcp", srv.addr); err == nil {
				c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n"))
				c.Close()
			}
		}
		// The event loop keeps a few goroutines for the bursts to come.
		spare := 2 + 4*goruntime.GOMAXPROCS(0)
		st := waitSessions(t, srv.addr, fmt.Sprintf("round %d to end", r), func(st memStats) bool {
			return st.Sessions == 0 && st.FDs <= base.FDs && st.Goroutines <= base.Goroutines+spare
		})
		if r == rounds-1 {
			t.Logf("%s: after %d connections: %d fds (%d at start), %d goroutines (%d), heap %d KiB (%d)",
				transport, rounds*perRound, st.FDs, base.FDs, st.Goroutines, base.Goroutines, st.Heap>>10, base.Heap>>10)
			if st.Heap > base.Heap+4<<20 {
				t.Errorf("heap grew from %d to %d KiB", base.Heap>>10, st.Heap>>10)
			}
		}
	}
}

// stats asks the server at addr for its stats, over TLS when addr is
// "https://host:port" (see tls_test.go).
func stats(t *testing.T, addr string) memStats {
	t.Helper()
	url, client := "http://"+addr+"/stats", http.DefaultClient
	if strings.HasPrefix(addr, "https://") {
		url, client = addr+"/stats", tlsStatsClient
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s memStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
