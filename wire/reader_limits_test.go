package wire_test

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// TestReaderContinuationOverflow: a continuation frame that announces a
// length near 2^63 after a first fragment must fail the size check (it
// overflowed msgLen+Length and let the peer stream past the limit).
func TestReaderContinuationOverflow(t *testing.T) {
	for _, length := range []int64{math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64 - 100, 1 << 62, 1 << 20} {
		f := &frameBuilder{masked: true}
		f.frame(wire.OpBinary, false, "a").header(wire.OpContinuation, true, length, "bbbb")
		rd := wire.NewReader(strings.NewReader(string(f.b)), &wire.ReaderOptions{Server: true, MaxMessageSize: 1 << 20})
		_, _, err := rd.Next()
		if !errors.Is(err, wire.ErrMessageTooBig) {
			t.Errorf("continuation of %d bytes after 1: Next = %v, want ErrMessageTooBig", length, err)
		}
		if h := rd.Holding(); h != 0 {
			t.Errorf("continuation of %d bytes: Holding() = %d after the error", length, h)
		}
	}
	// At the limit exactly, it is a message.
	f := &frameBuilder{masked: true}
	f.frame(wire.OpBinary, false, "a").frame(wire.OpContinuation, true, "bcd")
	rd := wire.NewReader(strings.NewReader(string(f.b)), &wire.ReaderOptions{Server: true, MaxMessageSize: 4})
	if op, p, err := rd.Next(); err != nil || op != wire.OpBinary || string(p) != "abcd" {
		t.Errorf("4 bytes in two fragments, limit 4: %v %q %v", op, p, err)
	}
}

// TestReaderAnnouncedLength: what a Reader holds for a frame is in
// proportion to the bytes that came, not to the length its header
// announces (a 14-byte header and one byte reserved 1 MiB).
func TestReaderAnnouncedLength(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  bool // a first fragment before the frame
		length int64
	}{
		{"whole message", false, 1 << 20},
		{"largest allowed", false, 16 << 20},
		{"continuation", true, 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &frameBuilder{masked: true}
			op := wire.OpBinary
			if tc.first {
				f.frame(wire.OpBinary, false, "x")
				op = wire.OpContinuation
			}
			f.header(op, true, tc.length, "y")
			src := &blockingReader{data: f.b, chunk: func() int { return len(f.b) }, stall: true, t: t}
			rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
			defer rd.Release()
			for range 2 {
				src.wait = false
				if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
					t.Fatalf("Next = %v, want ErrWouldBlock", err)
				}
			}
			if h := rd.Holding(); h > 1024 {
				t.Errorf("header announcing %d bytes and 1 byte: Holding() = %d, want <= 1 KiB", tc.length, h)
			}
		})
	}
}

// TestReaderGrowsWithBytes: while a long message arrives, the Reader holds
// a few times what has come at most.
func TestReaderGrowsWithBytes(t *testing.T) {
	const length = 3 << 20
	payload := strings.Repeat("z", length)
	f := &frameBuilder{masked: true}
	f.frame(wire.OpBinary, true, payload)
	chunk := 1000
	src := &blockingReader{data: f.b, chunk: func() int { return chunk }, t: t}
	rd := wire.NewReader(src, &wire.ReaderOptions{Server: true, MaxMessageSize: length})
	defer rd.Release()
	for {
		src.wait = false
		op, p, err := rd.Next()
		if err == wire.ErrWouldBlock {
			if got := rd.Holding(); got > 8*src.off+wire.DefaultReadBufferSize {
				t.Fatalf("after %d bytes: Holding() = %d", src.off, got)
			}
			chunk = min(2*chunk, 256<<10)
			continue
		}
		if err != nil || op != wire.OpBinary || len(p) != length || string(p) != payload {
			t.Fatalf("Next = %v, %d bytes, %v", op, len(p), err)
		}
		return
	}
}

// TestReaderBudget: Readers sharing a Budget fail with ErrBudgetExhausted
// (1013) when their assembly buffers would go over it, give their bytes
// back when done, and small messages read in place need none of it.
func TestReaderBudget(t *testing.T) {
	budget := wire.NewBudget(96 << 10)
	opts := &wire.ReaderOptions{Server: true, Budget: budget}
	big := strings.Repeat("b", 40_000) // assembled: 64 KiB class
	var a, b, c frameBuilder
	a.masked, b.masked, c.masked = true, true, true
	a.frame(wire.OpBinary, true, big)
	b.frame(wire.OpBinary, true, big)
	c.frame(wire.OpText, true, "small")

	ra := wire.NewReader(strings.NewReader(string(a.b)), opts)
	if _, p, err := ra.Next(); err != nil || len(p) != len(big) {
		t.Fatalf("first reader: %d bytes, %v", len(p), err)
	}
	if got := budget.InUse(); got != 64<<10 {
		t.Fatalf("InUse with one message held = %d, want 64 KiB", got)
	}
	rb := wire.NewReader(strings.NewReader(string(b.b)), opts)
	_, _, err := rb.Next()
	if !errors.Is(err, wire.ErrBudgetExhausted) || wire.CodeOf(err) != wire.StatusTryAgainLater {
		t.Fatalf("second reader over the budget: %v (code %v), want ErrBudgetExhausted (1013)", err, wire.CodeOf(err))
	}
	rc := wire.NewReader(strings.NewReader(string(c.b)), opts)
	if _, p, err := rc.Next(); err != nil || string(p) != "small" {
		t.Fatalf("small message with the budget used up: %q, %v", p, err)
	}
	if _, _, err := ra.Next(); err != io.EOF {
		t.Fatalf("first reader at the end: %v", err)
	}
	if got := budget.InUse(); got != 0 {
		t.Fatalf("InUse after every Reader is done = %d", got)
	}
	rb = wire.NewReader(strings.NewReader(string(b.b)), opts)
	if _, p, err := rb.Next(); err != nil || len(p) != len(big) {
		t.Fatalf("second reader once the budget is free: %d bytes, %v", len(p), err)
	}
	rb.Release()
	if got := budget.InUse(); got != 0 {
		t.Fatalf("InUse after Release = %d", got)
	}
}

// TestReaderDeadline: a read deadline that passes in the middle of a
// frame does not end the Reader: Next returns the timeout, and once the
// deadline is moved, reads on where it stopped. Over a socket (read
// through syscall.RawConn) and over a net.Pipe.
func TestReaderDeadline(t *testing.T) {
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			client, server := connPair(t, kind)
			rd := wire.NewReader(server, &wire.ReaderOptions{Server: true})
			defer rd.Release()
			f := &frameBuilder{masked: true}
			f.frame(wire.OpText, true, strings.Repeat("é", 5000))
			half := len(f.b) / 2
			go client.Write(f.b[:half])
			for i := 0; ; i++ {
				server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				_, _, err := rd.Next()
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("Next with half a frame = %v, want a deadline error", err)
				}
				if i == 2 {
					break
				}
			}
			go client.Write(f.b[half:])
			server.SetReadDeadline(time.Time{})
			op, p, err := rd.Next()
			if err != nil || op != wire.OpText || string(p) != strings.Repeat("é", 5000) {
				t.Fatalf("Next after the deadline: %v, %d bytes, %v", op, len(p), err)
			}
		})
	}
}

// connPair returns the two ends of a loopback TCP connection or a
// net.Pipe, closed when the test ends.
func connPair(t *testing.T, kind string) (client, server net.Conn) {
	t.Helper()
	if kind == "pipe" {
		client, server = net.Pipe()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if server, err = ln.Accept(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// emptyReads returns (0, nil) empty times before each read of its data,
// as net.Pipe does for empty writes.
type emptyReads struct {
	data  []byte
	empty int
	left  int
}

func (r *emptyReads) Read(p []byte) (int, error) {
	if r.left > 0 {
		r.left--
		return 0, nil
	}
	r.left = r.empty
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:1]) // a byte at a time
	r.data = r.data[n:]
	return n, nil
}

// TestReaderEmptyReads: reads that bring nothing and no error are passed
// over, a few of them; a source that only does that fails with
// io.ErrNoProgress instead of spinning.
func TestReaderEmptyReads(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "hi").frame(wire.OpBinary, true, strings.Repeat("x", 20_000))
	rd := wire.NewReader(&emptyReads{data: f.b, empty: 5, left: 5}, &wire.ReaderOptions{Server: true})
	defer rd.Release()
	if _, p, err := rd.Next(); err != nil || string(p) != "hi" {
		t.Fatalf("first: %q %v", p, err)
	}
	if _, p, err := rd.Next(); err != nil || len(p) != 20_000 {
		t.Fatalf("second: %d bytes, %v", len(p), err)
	}
	rd = wire.NewReader(&emptyReads{data: f.b, empty: 1000, left: 1000}, nil)
	if _, _, err := rd.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("only empty reads: %v", err)
	}
}

// holdingConn reports what its Reader holds each time the Reader reads
// from it: on the Reader's goroutine, so without a race.
type holdingConn struct {
	net.Conn
	rd   *wire.Reader
	seen []int
}

func (c *holdingConn) Read(p []byte) (int, error) {
	c.seen = append(c.seen, c.rd.Holding())
	return c.Conn.Read(p)
}

// TestReaderWaitsSmall: over a connection without RawConn (crypto/tls's,
// net.Pipe), a Reader waits for the next message in a small buffer, not
// its whole read buffer (16 KiB held by every idle TLS session), and the
// messages still come whole.
func TestReaderWaitsSmall(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	conn := &holdingConn{Conn: server}
	rd := wire.NewReader(conn, &wire.ReaderOptions{Server: true})
	conn.rd = rd
	defer rd.Release()
	msgs := []string{"hi", strings.Repeat("m", 5000), strings.Repeat("l", 40_000), "bye"}
	go func() {
		for _, m := range msgs {
			f := &frameBuilder{masked: true}
			f.frame(wire.OpBinary, true, m)
			client.Write(f.b)
		}
	}()
	for _, m := range msgs {
		conn.seen = conn.seen[:0]
		if _, p, err := rd.Next(); err != nil || string(p) != m {
			t.Fatalf("message of %d bytes: %d bytes, %v", len(m), len(p), err)
		}
		// The first read of each message is the wait between messages.
		if len(conn.seen) == 0 || conn.seen[0] > 512 {
			t.Fatalf("waiting for a message of %d bytes, the Reader held %v", len(m), conn.seen)
		}
	}
}

// TestReaderWaitsWithAClassFull: a Reader of a socket that waits with
// exactly a size class of a frame's bytes (4 KiB of 5,000) keeps room to
// read the rest. Trading the 16 KiB read buffer for a 4 KiB one left no
// room, and the read that followed took zero bytes for the end of the
// stream.
func TestReaderWaitsWithAClassFull(t *testing.T) {
	for _, unread := range []int{512, 4096} {
		client, server := connPair(t, "tcp")
		rd := wire.NewReader(server, &wire.ReaderOptions{Server: true})
		payload := strings.Repeat("p", unread+904)
		f := &frameBuilder{masked: true}
		f.frame(wire.OpBinary, true, payload)
		head := len(f.b) - len(payload) // the header, read first
		got := make(chan error, 1)
		go func() {
			_, p, err := rd.Next()
			if err == nil && string(p) != payload {
				err = errors.New("another payload")
			}
			got <- err
		}()
		if _, err := client.Write(f.b[:head+unread]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the Reader waits with unread bytes
		if _, err := client.Write(f.b[head+unread:]); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Errorf("waiting with %d bytes of the payload: %v", unread, err)
		}
		rd.Release()
	}
}
