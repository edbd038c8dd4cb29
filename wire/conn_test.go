package wire_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/wire"
)

// echoServer serves an echo endpoint and returns its ws:// URL.
func echoServer(t testing.TB, opts *wire.AcceptOptions) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t testing.TB, url string, opts *wire.DialOptions) *wire.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestEchoSizes(t *testing.T) {
	c := dial(t, echoServer(t, nil), nil)
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 100_000, 1 << 20, 16 << 20} {
		for _, op := range []wire.Opcode{wire.OpText, wire.OpBinary} {
			p := bytes.Repeat([]byte("a"), n)
			if err := c.WriteMessage(op, p); err != nil {
				t.Fatal(err)
			}
			gop, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%d: %v", n, err)
			}
			if gop != op || !bytes.Equal(got, p) {
				t.Fatalf("size %d: got %v len %d", n, gop, len(got))
			}
		}
	}
	if err := c.Close(wire.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
}

func TestFragmentedWithPing(t *testing.T) {
	var pongs int
	c := dial(t, echoServer(t, nil), &wire.DialOptions{Options: wire.Options{OnPong: func([]byte) { pongs++ }}})
	parts := []string{"hello ", "wörld", " and more"}
	for i, s := range parts {
		op := wire.OpContinuation
		if i == 0 {
			op = wire.OpText
		}
		if err := c.WriteFrame(op, i == len(parts)-1, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if err := c.Ping([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	op, p, err := c.ReadMessage()
	if err != nil || op != wire.OpText || string(p) != strings.Join(parts, "") {
		t.Fatalf("got %v %q %v", op, p, err)
	}
	if pongs != 2 { // the third ping follows the message
		t.Fatalf("pongs = %d, want 2", pongs)
	}
}

func TestCloseFromServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(4001, "go away")
	}))
	defer srv.Close()
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	_, _, err := c.ReadMessage()
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "go away" {
		t.Fatalf("err = %v", err)
	}
}

// TestConnZeroAllocs: on the steady path a round trip through an echo
// server (WriteMessage and ReadMessage on both sides, or Write and Read
// with a context that cannot end) does not allocate, once the pools are
// warm. Allocations are counted process-wide, so the server's count too.
func TestConnZeroAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	c := dial(t, echoServer(t, nil), nil)
	ctx := context.Background()
	tests := []struct {
		name string
		f    func(p []byte) ([]byte, error)
	}{
		{"WriteMessage/ReadMessage", func(p []byte) ([]byte, error) {
			if err := c.WriteMessage(wire.OpBinary, p); err != nil {
				return nil, err
			}
			_, got, err := c.ReadMessage()
			return got, err
		}},
		{"Write/Read", func(p []byte) ([]byte, error) {
			if err := c.Write(ctx, wire.OpBinary, p); err != nil {
				return nil, err
			}
			_, got, err := c.Read(ctx)
			return got, err
		}},
	}
	for _, tt := range tests {
		for _, n := range []int{32, 1 << 10, 64 << 10} {
			p := bytes.Repeat([]byte{0xA5}, n)
			roundTrip := func() {
				if got, err := tt.f(p); err != nil || len(got) != n {
					t.Fatalf("%s: %d bytes, %v", tt.name, len(got), err)
				}
			}
			for range 10 {
				roundTrip()
			}
			if a := testing.AllocsPerRun(100, roundTrip); a != 0 {
				t.Errorf("%s of %d bytes: %v allocs per round trip, want 0", tt.name, n, a)
			}
		}
	}
}
