package session

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/wire"
)

// frameBytes returns f's bytes on the wire, in one piece.
func frameBytes(f *Frame) []byte {
	a, b := f.parts(0)
	return append(bytes.Clone(a), b...)
}

// checkFrame parses f's bytes and compares them with what NewFrame was
// given.
func checkFrame(t *testing.T, f *Frame, op wire.Opcode, payload []byte) {
	t.Helper()
	a, b := f.parts(0)
	if len(a)+len(b) != f.Len() {
		t.Fatalf("Len() = %d, parts hold %d bytes", f.Len(), len(a)+len(b))
	}
	h, n, err := wire.ParseHeader(a)
	if err != nil || n == 0 {
		t.Fatalf("ParseHeader: n=%d, %v", n, err)
	}
	if !h.Fin || h.Rsv != 0 || h.Masked || h.Opcode != op || h.Length != int64(len(payload)) {
		t.Fatalf("header %+v, want a final unmasked %v frame of %d bytes", h, op, len(payload))
	}
	body := a[n:]
	if len(b) > 0 {
		if len(body) != 0 {
			t.Fatalf("first part holds the header and %d bytes more", len(body))
		}
		body = b
	}
	if !bytes.Equal(body, payload) {
		t.Fatal("payload differs")
	}
	if f.Opcode() != op {
		t.Fatalf("Opcode() = %v, want %v", f.Opcode(), op)
	}
}

// pattern returns n bytes that are not all alike.
func pattern(n int) []byte {
	p := make([]byte, 251) // a prime length: no alignment hides an offset error
	for i := range p {
		p[i] = byte(i)
	}
	return bytes.Repeat(p, n/len(p)+1)[:n]
}

func TestNewFrame(t *testing.T) {
	// The largest payload that shares a buffer with its header, and the
	// smallest that does not.
	shared := bufpool.MaxPooled - wire.MaxHeaderSize
	for _, tc := range []struct {
		op wire.Opcode
		n  int
	}{
		{wire.OpText, 0},
		{wire.OpText, 1},
		{wire.OpBinary, 125},
		{wire.OpBinary, 126},
		{wire.OpBinary, 0xFFFF},
		{wire.OpBinary, 0x10000},
		{wire.OpText, 512 - wire.MaxHeaderSize},
		{wire.OpText, 512 - wire.MaxHeaderSize + 1},
		{wire.OpBinary, 1 << 20},
		{wire.OpBinary, 64<<10 - wire.MaxHeaderSize},
		{wire.OpBinary, 64<<10 - wire.MaxHeaderSize + 1},
		{wire.OpBinary, 64 << 10},
		{wire.OpBinary, shared},
		{wire.OpBinary, shared + 1},
		{wire.OpBinary, bufpool.MaxPooled + 1},
		{wire.OpPing, 0},
		{wire.OpPong, 125},
		{wire.OpClose, 2},
	} {
		t.Run(fmt.Sprintf("%v/%d", tc.op, tc.n), func(t *testing.T) {
			payload := pattern(tc.n)
			f := NewFrame(tc.op, payload)
			checkFrame(t, f, tc.op, payload)
			// The frame owns a copy: changing the caller's bytes does
			// not change it.
			if tc.n > 0 {
				payload[tc.n-1] ^= 0xFF
				if last, _ := f.parts(f.Len() - 1); last[0] == payload[tc.n-1] {
					t.Fatal("the frame aliases the caller's payload")
				}
				payload[tc.n-1] ^= 0xFF
			}
			// A header apart from the payload (two parts) only when the
			// header would take the buffer to the next class up; the
			// payload's buffer is then of the payload's class.
			a, b := f.parts(0)
			two := bufpool.Cap(tc.n+wire.MaxHeaderSize) != bufpool.Cap(tc.n)
			if got := len(b) > 0; got != two {
				t.Errorf("payload of %d bytes in %d+%d bytes: two parts = %v, want %v", tc.n, len(a), len(b), got, two)
			}
			if c := cap(*f.bufp); two && c != bufpool.Cap(tc.n) {
				t.Errorf("payload of %d bytes in a buffer of %d", tc.n, c)
			}
			f.Release()
		})
	}
}

// TestFrameParts checks that parts(off) resumes a partial write at any
// offset, in both layouts.
func TestFrameParts(t *testing.T) {
	for _, n := range []int{300, bufpool.MaxPooled - wire.MaxHeaderSize + 1} {
		f := NewFrame(wire.OpBinary, pattern(n))
		whole := frameBytes(f)
		for _, off := range []int{0, 1, 2, 5, 9, 10, 11, 100, f.Len() - 1, f.Len()} {
			a, b := f.parts(off)
			rest := whole[off:]
			if len(a)+len(b) != len(rest) || !bytes.Equal(a, rest[:len(a)]) || !bytes.Equal(b, rest[len(a):]) {
				t.Errorf("n=%d: parts(%d) = %d+%d bytes, not the last %d", n, off, len(a), len(b), len(rest))
			}
		}
		f.Release()
	}
}

func TestFrameRetainRelease(t *testing.T) {
	f := NewFrame(wire.OpText, []byte("shared"))
	if r := f.refs.Load(); r != 1 {
		t.Fatalf("new frame holds %d references, want 1", r)
	}
	f.Retain(3)
	for want := int32(3); want >= 1; want-- {
		f.Release()
		if r := f.refs.Load(); r != want {
			t.Fatalf("after a Release: %d references, want %d", r, want)
		}
		// Still usable while referenced.
		checkFrame(t, f, wire.OpText, []byte("shared"))
	}
	f.Release()
	if f.bufp != nil || f.body != nil || f.head != nil {
		t.Fatal("the last Release did not recycle the frame's buffer")
	}
}

func TestFrameReleaseTooOftenPanics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retains int
	}{
		{"double release", 0},
		{"one release too many after Retain", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFrame(wire.OpBinary, []byte("x"))
			f.Retain(tc.retains)
			for range tc.retains + 1 {
				f.Release()
			}
			defer func() {
				v := recover()
				if v == nil {
					t.Fatal("Release of a dead frame did not panic")
				}
				if !strings.Contains(fmt.Sprint(v), "released more often than retained") {
					t.Fatalf("panic %v", v)
				}
				// The recycled frame may be in the pool again; make it
				// whole so that the next NewFrame is not affected.
				f.refs.Store(0)
			}()
			f.Release()
		})
	}
}

// TestFramePooledReuse checks that released frames are reused, and that a
// reused frame carries nothing over from its previous life.
func TestFramePooledReuse(t *testing.T) {
	big := bytes.Repeat([]byte{0xAA}, bufpool.MaxPooled) // the two-part layout
	reused := 0
	for i := range 200 {
		var first *Frame
		if i%50 == 0 {
			first = NewFrame(wire.OpBinary, big)
		} else {
			first = NewFrame(wire.OpText, []byte("first life, longer payload"))
		}
		first.Release()
		second := NewFrame(wire.OpPing, []byte("2nd"))
		if second == first {
			reused++
		}
		checkFrame(t, second, wire.OpPing, []byte("2nd"))
		if a, b := second.parts(0); len(b) != 0 || len(a) != second.Len() {
			t.Fatal("a small frame reusing a two-part frame kept its header apart")
		}
		second.Release()
	}
	// sync.Pool gives no guarantee (and drops some items on purpose under
	// the race detector), but 200 tries on one goroutine reuse often.
	if reused == 0 {
		t.Error("no frame was ever reused from the pool")
	}
}

// TestFrameConcurrentRelease shares one frame between goroutines that
// read and release it at once: exactly the last Release recycles it.
func TestFrameConcurrentRelease(t *testing.T) {
	const holders = 16
	for range 50 {
		f := NewFrame(wire.OpBinary, []byte("shared by many"))
		f.Retain(holders - 1)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range holders {
			wg.Go(func() {
				<-start
				if f.Len() != 2+len("shared by many") {
					t.Error("frame changed while referenced")
				}
				a, _ := f.parts(0)
				_ = bytes.Clone(a)
				f.Release()
			})
		}
		close(start)
		wg.Wait()
		if f.refs.Load() != 0 || f.bufp != nil {
			t.Fatal("the frame was not recycled exactly once")
		}
	}
}

// TestFramePayload: Payload is what NewFrame was given, whatever the size
// of the header in front of it, or apart from it.
func TestFramePayload(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000, 1 << 20} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		f := NewFrame(wire.OpBinary, p)
		if got := f.Payload(); !bytes.Equal(got, p) {
			t.Errorf("%d bytes: Payload gave %d bytes", n, len(got))
		}
		f.Release()
	}
}
