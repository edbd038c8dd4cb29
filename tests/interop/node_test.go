package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// nodeDir is the npm project of the Node client, relative to this package.
const nodeDir = "node"

// nodeTimeout bounds one run of the Node client.
const nodeTimeout = 60 * time.Second

// nodeSubprotocol is the subprotocol of the runtime server under test.
const nodeSubprotocol = "shockwave.echo"

// TestNodeWS runs the checks of node/client.mjs, a client on Node's ws
// package, against our server: as a plain echo on wire, without and with
// permessage-deflate (each of our modes), and as an echo on the runtime.
// It needs node and `npm ci` in node/; without them it skips, except under
// CI, where it fails.
func TestNodeWS(t *testing.T) {
	node := nodeClient(t)
	servers := []struct {
		name  string
		serve func(t *testing.T) string // returns the ws:// URL
		args  []string
	}{
		{"wire", serveWireEcho, nil},
		{"wire-deflate-no-context", serveWireEchoWith(wire.CompressionNoContextTakeover), []string{"--deflate"}},
		{"wire-deflate-takeover", serveWireEchoWith(wire.CompressionContextTakeover), []string{"--deflate"}},
		{"runtime", serveRuntimeEcho(runtime.TransportAuto), []string{"--subprotocol", nodeSubprotocol}},
		{"runtime-goroutine", serveRuntimeEcho(runtime.TransportGoroutine), []string{"--subprotocol", nodeSubprotocol}},
		{"runtime-deflate-no-context", serveRuntimeEcho(runtime.TransportAuto, runtime.WithCompression(wire.CompressionNoContextTakeover, 0)),
			[]string{"--subprotocol", nodeSubprotocol, "--deflate"}},
		{"runtime-deflate-takeover", serveRuntimeEcho(runtime.TransportAuto, runtime.WithCompression(wire.CompressionContextTakeover, 0)),
			[]string{"--subprotocol", nodeSubprotocol, "--deflate"}},
		{"runtime-goroutine-deflate-takeover", serveRuntimeEcho(runtime.TransportGoroutine, runtime.WithCompression(wire.CompressionContextTakeover, 0)),
			[]string{"--subprotocol", nodeSubprotocol, "--deflate"}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			url := srv.serve(t)
			runNodeClient(t, node, append(srv.args, url))
		})
	}
}

// nodeClient returns the path of node and of client.mjs, or skips (fails
// under CI) when node or the ws package is missing.
func nodeClient(t *testing.T) [2]string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + ": run `npm ci --prefix tests/interop/node` (Node.js 18 or later) to enable this test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "ws", "package.json")); err != nil {
		missing("the npm package ws is not installed in tests/interop/node")
	}
	script, err := filepath.Abs(filepath.Join(nodeDir, "client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return [2]string{node, script}
}

// nodeResult is one JSON line of client.mjs.
type nodeResult struct {
	Check   string          `json:"check"`
	OK      bool            `json:"ok"`
	MS      float64         `json:"ms"`
	Detail  json.RawMessage `json:"detail"`
	Error   string          `json:"error"`
	Summary bool            `json:"summary"`
	Passed  int             `json:"passed"`
	Failed  int             `json:"failed"`
}

// runNodeClient runs client.mjs with args, logs each check it reports and
// fails the test for each failed check and for a non-zero exit.
func runNodeClient(t *testing.T, node [2]string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node[0], append([]string{node[1]}, args...)...)
	cmd.Dir = nodeDir
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	summary := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var r nodeResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("node printed a line that is not JSON: %q", line)
			continue
		}
		switch {
		case r.Summary:
			summary = true
			t.Logf("node summary: passed=%d failed=%d", r.Passed, r.Failed)
		case r.OK:
			if len(r.Detail) > 0 {
				t.Logf("ok   %-50s %8.2f ms  %s", r.Check, r.MS, r.Detail)
			} else {
				t.Logf("ok   %-50s %8.2f ms", r.Check, r.MS)
			}
		default:
			t.Errorf("FAIL %s (%.2f ms): %s", r.Check, r.MS, r.Error)
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("reading node's output: %v", err)
	}
	err = cmd.Wait()
	t.Logf("node ran for %v", time.Since(start).Round(time.Millisecond))
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("node stderr:\n%s", s)
	}
	if ctx.Err() != nil {
		t.Errorf("node did not finish within %v", nodeTimeout)
	}
	if err != nil {
		t.Errorf("node: %v", err)
	}
	if !summary {
		t.Error("node printed no summary line")
	}
}

// serveWireEcho serves an echo on wire.Accept, ReadMessage and
// WriteMessage, and returns its URL. Cleanup closes the connections that
// are left and waits for their goroutines.
func serveWireEcho(t *testing.T) string { return serveWireEchoMode(t, wire.CompressionDisabled) }

// serveWireEchoWith is serveWireEcho with permessage-deflate in mode.
func serveWireEchoWith(mode wire.CompressionMode) func(t *testing.T) string {
	return func(t *testing.T) string { return serveWireEchoMode(t, mode) }
}

func serveWireEchoMode(t *testing.T, mode wire.CompressionMode) string {
	t.Helper()
	var (
		mu    sync.Mutex
		conns = map[*wire.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	opts := &wire.AcceptOptions{Options: wire.Options{MaxMessageSize: maxMsg, Compression: mode}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, opts)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		wg.Add(1)
		defer wg.Done()
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.CloseNow()
		}()
		c.NetConn().SetDeadline(time.Now().Add(lifetime))
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				var ce wire.CloseError
				if !errors.As(err, &ce) {
					t.Errorf("wire echo: ReadMessage: %v", err)
				}
				return
			}
			if err := c.WriteMessage(op, p); err != nil {
				t.Errorf("wire echo: WriteMessage: %v", err)
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for c := range conns {
			c.CloseNow()
		}
		mu.Unlock()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		waitDone(t, done, "the wire echo handlers to return")
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
}

// serveRuntimeEcho serves an echo on the runtime's transport tr, with a
// subprotocol and the options opts, and returns its URL. Cleanup shuts the
// runtime down.
func serveRuntimeEcho(tr runtime.Transport, opts ...runtime.Option) func(t *testing.T) string {
	return func(t *testing.T) string { return serveRuntimeEchoOn(t, tr, opts...) }
}

func serveRuntimeEchoOn(t *testing.T, tr runtime.Transport, opts ...runtime.Option) string {
	t.Helper()
	rt, err := runtime.New(
		session.HandlerFunc(func(s *session.Session, m session.Message) error {
			return s.Send(m.Op, m.Data)
		}),
		append([]runtime.Option{
			runtime.WithMaxMessageSize(maxMsg),
			runtime.WithSubprotocols(nodeSubprotocol),
			runtime.WithTransport(tr),
		}, opts...)...,
	)
	if err != nil {
		t.Fatal(err)
	}
	return listenRuntime(t, rt) + "/echo"
}

// listenRuntime serves rt and returns its ws:// URL. Cleanup shuts it
// down.
func listenRuntime(t *testing.T, rt *runtime.Runtime) string {
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("runtime shutdown: %v", err)
		}
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}
