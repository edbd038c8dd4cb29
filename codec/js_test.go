package codec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestJSClient runs js/e2e.mjs, the browser client on Node's WebSocket,
// against a Router on a real runtime: requests, errors, room publishes, and
// a reconnection that re-joins the room. It needs Node.js 20 or later;
// without it the test is skipped (and fails when CI is set).
func TestJSClient(t *testing.T) {
	node, args := nodeWithWebSocket(t)
	r := NewRouter(JSON)
	Handle(r, "echo", func(s *session.Session, v map[string]any) (map[string]any, error) { return v, nil })
	rt, url := serve(t, r)
	r.HandleRooms(rt, nil)
	On(r, "publish", func(s *session.Session, ev Event[map[string]any]) error {
		if room, ok := rt.Room(ev.Room); ok {
			_, err := r.Publish(room, "news", ev.Data)
			return err
		}
		return &Error{Code: "no_room", Message: ev.Room}
	})
	On(r, "kick", func(s *session.Session, _ struct{}) error {
		s.Close(wire.StatusServiceRestart, "restart")
		return nil
	})

	script, err := filepath.Abs(filepath.Join("js", "e2e.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append(args, script, url)...)
	out, err := cmd.CombinedOutput()
	t.Logf("node %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("e2e.mjs: %v", err)
	}
}

// nodeWithWebSocket returns node and the flags that give it a global
// WebSocket, or skips (fails under CI) without Node.js 20+.
func nodeWithWebSocket(t *testing.T) (string, []string) {
	t.Helper()
	missing := func(msg string) {
		t.Helper()
		msg += ": install Node.js 20 or later to run the browser client against the server"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing("node --version: " + err.Error())
	}
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(v)), ".", 2)[0], "v"))
	switch {
	case major >= 22:
		return node, nil
	case major >= 20:
		return node, []string{"--experimental-websocket"}
	}
	missing("node " + strings.TrimSpace(string(v)) + " has no WebSocket")
	return "", nil
}
