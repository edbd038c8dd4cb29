package js

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestDeflate runs deflate.mjs, the browser client over WebSockets that
// speak permessage-deflate (Node's ws, as tests/interop/node installs it,
// and Node's own), against a Router on a runtime that compresses, once per
// codec: both agree on deflate, requests, replies and a room's publish
// travel compressed and arrive whole, and a client without deflate in the
// same room gets the publish plain. It needs Node.js 20 or later and
// `npm ci --prefix tests/interop/node`; without them it skips, except
// under CI, where it fails.
func TestDeflate(t *testing.T) {
	const setup = "install Node.js 20 or later and run `npm ci --prefix tests/interop/node`"
	node, major := findNode(t, setup)
	var args []string
	if major < 22 {
		args = append(args, "--experimental-websocket")
	}
	ws, err := filepath.Abs(filepath.Join("..", "..", "tests", "interop", "node", "node_modules", "ws"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ws); err != nil {
		missing(t, "the npm package ws is not installed in tests/interop/node", setup)
	}

	for _, c := range []string{"json", "msgpack"} {
		t.Run(c, func(t *testing.T) {
			url := serveDeflate(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, append(args, "deflate.mjs", url, ws, c)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node deflate.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
			}
			t.Logf("node deflate.mjs %s:\n%s", c, out)
		})
	}
}

// serveDeflate serves deflate.mjs's handlers on a runtime that compresses
// each message of 512 bytes or more on its own, until the test ends.
func serveDeflate(t *testing.T) string {
	r := codec.NewRouter(codec.JSON)
	codec.Handle(r, "echo", func(s *session.Session, v any) (any, error) { return v, nil })
	codec.Handle(r, "compression", func(s *session.Session, _ struct{}) (map[string]bool, error) {
		return map[string]bool{"enabled": s.Compression().Enabled}, nil
	})
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...),
		runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))
	if err != nil {
		t.Fatal(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.On(r, "publish", func(s *session.Session, ev codec.Event[any]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: "no_room", Message: ev.Room}
		}
		_, err := r.Publish(room, "news", ev.Data)
		return err
	})
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}
