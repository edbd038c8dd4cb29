package soak

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// TestIdleMemoryDeflate holds sessions idle after each has echoed one
// 2 KiB JSON message, side by side: plain, and with permessage-deflate
// negotiated (without context takeover, the runtime's shared mode) and
// the message compressed both ways. An idle session must cost the same
// with compression as without: it keeps no compressor, no decompressor
// and no window between messages. It also reports what a session costs
// with context takeover both ways, which keeps a compressor and a window
// (docs/compression.md), on fewer sessions.
func TestIdleMemoryDeflate(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { testIdleMemoryDeflate(t, tr) })
	}
}

func testIdleMemoryDeflate(t *testing.T, transport string) {
	n := min(maxConns(), 5000)
	if testing.Short() {
		n = 1000
	}
	cost := func(n int, deflate, takeover bool) float64 {
		env, header := []string{"SHOCKWAVE_ECHO=1"}, []string(nil)
		switch {
		case takeover:
			env = append(env, "SHOCKWAVE_DEFLATE=takeover")
			header = []string{"Sec-WebSocket-Extensions: permessage-deflate"}
		case deflate:
			env = append(env, "SHOCKWAVE_DEFLATE=1")
			header = []string{"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover"}
		}
		srv := startServer(t, transport, env...)
		defer srv.stop()
		before := stats(t, srv.addr)
		conns := upgradeWith(t, srv.addr, n, func(addr string) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, 5*time.Second)
		}, header...)
		defer closeAll(conns)
		msg := chatMessage()
		for i, c := range conns {
			if err := echoOnce(c, msg, deflate); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		// Idle means idle: the timer gives back a mailbox a tick after
		// the session's last frame (the runtime's default Tick is 1 s
		// at most). A reply that went through the reader's cork never
		// took one, and deflate's replies do, so measured at once the
		// two would differ by the mailboxes not retired yet.
		time.Sleep(2500 * time.Millisecond)
		after := waitSessions(t, srv.addr, "every session open", func(st memStats) bool { return st.Sessions >= n })
		per := float64(int64(after.Heap+after.Stack)-int64(before.Heap+before.Stack)) / float64(n)
		t.Logf("%s, deflate %v, context takeover %v: %d idle sessions after an echo: %.0f B of heap and stacks each",
			transport, deflate, takeover, n, per)
		return per
	}
	plain, zipped := cost(n, false, false), cost(n, true, false)
	cost(min(n, 200), true, true) // reported only
	if raceEnabled() {
		return // the race detector's instrumentation changes heap and stacks: the figures are reported only
	}
	// What the heap of one process says of n sessions varies by a few
	// bytes a session from run to run.
	if zipped > plain+64 {
		t.Errorf("an idle session costs %.0f bytes with deflate, %.0f without", zipped, plain)
	}
	if transport == "eventloop" && goruntime.GOOS == "linux" && zipped > 1<<10 {
		t.Errorf("an idle session with deflate costs %.0f bytes, more than 1 KiB", zipped)
	}
}

// chatMessage is about 2 KiB of JSON.
func chatMessage() []byte {
	b := []byte(`{"t":"msgs","d":[`)
	for i := 0; len(b) < 2000; i++ {
		b = fmt.Appendf(b, `{"id":%d,"from":"user%d","text":"hello there, how is the weather today"},`, i, i%7)
	}
	return append(b[:len(b)-1], "]}"...)
}

// echoOnce sends msg on c, compressed when deflate, and reads the echo's
// frame, which must be compressed too when deflate, and skips its payload.
func echoOnce(c net.Conn, msg []byte, deflate bool) error {
	h := wire.Header{Fin: true, Opcode: wire.OpText, Masked: true}
	rand.Read(h.Key[:])
	p := msg
	if deflate {
		h.Rsv, p = wire.RSV1, wire.AppendCompressed(nil, msg)
	}
	h.Length = int64(len(p))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(wire.AppendFrame(nil, h, p)); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	for k := 2; ; k++ {
		b, err := br.Peek(k)
		if err != nil {
			return err
		}
		got, hn, err := wire.ParseHeader(b)
		if err != nil {
			return err
		}
		if hn == 0 {
			continue
		}
		if (got.Rsv == wire.RSV1) != deflate || got.Opcode != wire.OpText {
			return fmt.Errorf("echo's header %+v (deflate %v)", got, deflate)
		}
		_, err = io.CopyN(io.Discard, br, int64(hn)+got.Length)
		return err
	}
}
