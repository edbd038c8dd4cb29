package soak

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

var idleConns = flag.Int("idle.conns", 10_000, "connections held open by TestIdleMemory")

// memStats is what the server process reports about itself.
type memStats struct {
	Heap, Stack, Sys uint64
	RSS              uint64
	Sessions         int
	Goroutines       int
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
	rt, err := runtime.New(session.NopHandler{})
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
		json.NewEncoder(w).Encode(memStats{
			Heap: ms.HeapInuse, Stack: ms.StackInuse, Sys: ms.Sys, RSS: rss(),
			Sessions: rt.Len(), Goroutines: goruntime.NumGoroutine(),
		})
	})
	fmt.Println(ln.Addr().String())
	go func() { // exit when the test goes away
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}()
	http.Serve(ln, mux)
}

func rss() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestIdleMemory holds -idle.conns idle sessions open against a server in
// another process and reports what each costs that server: Go heap and
// goroutine stacks (MemStats, after GC) and RSS.
func TestIdleMemory(t *testing.T) {
	n := *idleConns
	if testing.Short() {
		n = 1000
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHOCKWAVE_IDLE_SERVER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr = strings.TrimSpace(addr)

	before := stats(t, addr)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %d: %v %v", len(conns), resp, err)
		}
		c.SetDeadline(time.Time{})
	}
	var after memStats
	deadline := time.Now().Add(30 * time.Second)
	for after = stats(t, addr); after.Sessions < n; after = stats(t, addr) {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d sessions, want %d", after.Sessions, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	heap, stack, rssPer := per(after.Heap, before.Heap), per(after.Stack, before.Stack), per(after.RSS, before.RSS)
	t.Logf("%d idle sessions: heap %.0f B + stacks %.0f B = %.0f B per session (RSS %.0f B); %d goroutines",
		n, heap, stack, heap+stack, rssPer, after.Goroutines)
	// A regression guard, not a goal: the goal is in docs/benchmarks.md.
	if heap+stack > 64<<10 {
		t.Errorf("an idle session costs %.0f bytes, more than 64 KiB", heap+stack)
	}
}

func stats(t *testing.T, addr string) memStats {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/stats")
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
