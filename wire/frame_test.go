package wire_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/shockwave-go/shockwave/wire"
)

// headerLengths are the payload lengths at the edges of the three length
// encodings (7 bits, 16 bits, 63 bits).
var headerLengths = []int64{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 32, math.MaxInt64}

// wantHeaderSize is the wire size of a header by the rules of RFC 6455
// section 5.2, written independently of Header.Size.
func wantHeaderSize(length int64, masked bool) int {
	n := 2
	if length >= 126 {
		n += 2
	}
	if length >= 1<<16 {
		n += 6
	}
	if masked {
		n += 4
	}
	return n
}

func TestHeaderRoundTrip(t *testing.T) {
	rsvs := []uint8{0, wire.RSV1, wire.RSV2, wire.RSV3, wire.RSV1 | wire.RSV2 | wire.RSV3}
	for _, length := range headerLengths {
		for _, masked := range []bool{false, true} {
			for _, rsv := range rsvs {
				for _, fin := range []bool{false, true} {
					for op := wire.Opcode(0); op < 16; op++ {
						h := wire.Header{Fin: fin, Rsv: rsv, Opcode: op, Masked: masked, Length: length}
						if masked {
							h.Key = [4]byte{0xA1, 0x00, 0xFF, byte(op)}
						}
						b := wire.AppendHeader(nil, h)
						if len(b) != wantHeaderSize(length, masked) || h.Size() != len(b) {
							t.Fatalf("%+v: encoded in %d bytes, Size() %d, want %d", h, len(b), h.Size(), wantHeaderSize(length, masked))
						}
						got, n, err := wire.ParseHeader(b)
						if err != nil || n != len(b) || got != h {
							t.Fatalf("%+v: ParseHeader(% x) = %+v, %d, %v", h, b, got, n, err)
						}
						// Trailing payload bytes are not part of the header.
						got, n, err = wire.ParseHeader(append(b, 1, 2, 3))
						if err != nil || n != len(b) || got != h {
							t.Fatalf("%+v: with trailing bytes: %+v, %d, %v", h, got, n, err)
						}
					}
				}
			}
		}
	}
}

// TestHeaderWireForm checks exact encodings, among them the examples of RFC
// 6455 section 5.7.
func TestHeaderWireForm(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name string
		h    wire.Header
		want []byte
	}{
		{"unmasked text", wire.Header{Fin: true, Opcode: wire.OpText, Length: 5}, []byte{0x81, 0x05}},
		{"masked text", wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: key, Length: 5}, []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
		{"first fragment", wire.Header{Opcode: wire.OpText, Length: 3}, []byte{0x01, 0x03}},
		{"last fragment", wire.Header{Fin: true, Opcode: wire.OpContinuation, Length: 2}, []byte{0x80, 0x02}},
		{"ping", wire.Header{Fin: true, Opcode: wire.OpPing, Length: 5}, []byte{0x89, 0x05}},
		{"masked pong", wire.Header{Fin: true, Opcode: wire.OpPong, Masked: true, Key: key, Length: 5}, []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
		{"125", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 125}, []byte{0x82, 0x7d}},
		{"126", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 126}, []byte{0x82, 0x7e, 0x00, 0x7e}},
		{"256", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 256}, []byte{0x82, 0x7e, 0x01, 0x00}},
		{"65535", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 65535}, []byte{0x82, 0x7e, 0xff, 0xff}},
		{"65536", wire.Header{Fin: true, Opcode: wire.OpBinary, Length: 65536}, []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"2^63-1 masked", wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Key: key, Length: math.MaxInt64},
			[]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x37, 0xfa, 0x21, 0x3d}},
		{"rsv1", wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, []byte{0xc1, 0x00}},
		{"rsv2 rsv3", wire.Header{Rsv: wire.RSV2 | wire.RSV3, Opcode: wire.OpBinary}, []byte{0x32, 0x00}},
		{"reserved opcode", wire.Header{Fin: true, Opcode: 0xB}, []byte{0x8b, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.AppendHeader(nil, tt.h); !bytes.Equal(got, tt.want) {
				t.Errorf("AppendHeader = % x, want % x", got, tt.want)
			}
			h, n, err := wire.ParseHeader(tt.want)
			if err != nil || n != len(tt.want) || h != tt.h {
				t.Errorf("ParseHeader = %+v, %d, %v; want %+v, %d", h, n, err, tt.h, len(tt.want))
			}
		})
	}
}

// TestAppendFrameRFCExamples checks whole frames from RFC 6455 section 5.7.
func TestAppendFrameRFCExamples(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name    string
		h       wire.Header
		payload []byte
		want    []byte
	}{
		{"unmasked Hello", wire.Header{Fin: true, Opcode: wire.OpText}, []byte("Hello"),
			[]byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked Hello", wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: key}, []byte("Hello"),
			[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"fragment Hel", wire.Header{Opcode: wire.OpText}, []byte("Hel"), []byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"fragment lo", wire.Header{Fin: true}, []byte("lo"), []byte{0x80, 0x02, 0x6c, 0x6f}},
		{"ping", wire.Header{Fin: true, Opcode: wire.OpPing}, []byte("Hello"),
			[]byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked pong", wire.Header{Fin: true, Opcode: wire.OpPong, Masked: true, Key: key}, []byte("Hello"),
			[]byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"Length is taken from the payload", wire.Header{Fin: true, Opcode: wire.OpText, Length: 99}, []byte("Hello"),
			[]byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.payload)
			prefix := []byte("prefix")
			got := wire.AppendFrame(prefix, tt.h, tt.payload)
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], tt.want) {
				t.Errorf("AppendFrame = % x, want prefix + % x", got, tt.want)
			}
			if !bytes.Equal(tt.payload, orig) {
				t.Error("AppendFrame modified the payload")
			}
		})
	}
}

// TestParseHeaderIncomplete checks that every proper prefix of a header asks
// for more bytes (n == 0, no error).
func TestParseHeaderIncomplete(t *testing.T) {
	for _, length := range headerLengths {
		for _, masked := range []bool{false, true} {
			b := wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: masked, Key: [4]byte{1, 2, 3, 4}, Length: length})
			for i := range len(b) {
				if h, n, err := wire.ParseHeader(b[:i]); n != 0 || err != nil {
					t.Errorf("length %d masked %v: ParseHeader(% x) = %+v, %d, %v; want n 0, no error", length, masked, b[:i], h, n, err)
				}
			}
		}
	}
}

func TestParseHeaderLengthOverflow(t *testing.T) {
	tests := [][]byte{
		{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},
		{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, // masked
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1},             // key not there yet
	}
	for _, b := range tests {
		_, n, err := wire.ParseHeader(b)
		if n != 0 || !errors.Is(err, wire.ErrLengthOverflow) {
			t.Errorf("ParseHeader(% x) = n %d, %v; want ErrLengthOverflow", b, n, err)
		}
		var pe *wire.ProtocolError
		if !errors.As(err, &pe) || pe.Code != wire.StatusProtocolError {
			t.Errorf("ParseHeader(% x): error %v is not a ProtocolError with code 1002", b, err)
		}
		// Before the length is complete, it is only incomplete.
		if _, n, err := wire.ParseHeader(b[:9]); n != 0 || err != nil {
			t.Errorf("ParseHeader(% x) = n %d, %v; want 0, nil", b[:9], n, err)
		}
	}
}

// TestParseHeaderNonMinimalLength documents that ParseHeader accepts a
// length in a longer encoding than needed: it checks framing only.
func TestParseHeaderNonMinimalLength(t *testing.T) {
	tests := []struct {
		b    []byte
		want int64
	}{
		{[]byte{0x82, 0x7e, 0x00, 0x05}, 5},
		{[]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, 256},
	}
	for _, tt := range tests {
		h, n, err := wire.ParseHeader(tt.b)
		if err != nil || n != len(tt.b) || h.Length != tt.want {
			t.Errorf("ParseHeader(% x) = %+v, %d, %v; want length %d", tt.b, h, n, err, tt.want)
		}
	}
}

func TestOpcode(t *testing.T) {
	tests := []struct {
		op                wire.Opcode
		control, reserved bool
		s                 string
	}{
		{wire.OpContinuation, false, false, "continuation"},
		{wire.OpText, false, false, "text"},
		{wire.OpBinary, false, false, "binary"},
		{3, false, true, "opcode(3)"},
		{7, false, true, "opcode(7)"},
		{wire.OpClose, true, false, "close"},
		{wire.OpPing, true, false, "ping"},
		{wire.OpPong, true, false, "pong"},
		{0xB, true, true, "opcode(11)"},
		{0xF, true, true, "opcode(15)"},
	}
	for _, tt := range tests {
		if tt.op.IsControl() != tt.control || tt.op.IsReserved() != tt.reserved || tt.op.String() != tt.s {
			t.Errorf("opcode %d: IsControl %v IsReserved %v String %q; want %v %v %q",
				uint8(tt.op), tt.op.IsControl(), tt.op.IsReserved(), tt.op.String(), tt.control, tt.reserved, tt.s)
		}
	}
}

var (
	sinkHeader wire.Header
	sinkBytes  []byte
	sinkBool   bool
)

// TestZeroAllocs checks the functions documented not to allocate.
func TestZeroAllocs(t *testing.T) {
	hdr := wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 70000})
	buf := make([]byte, 0, wire.MaxHeaderSize)
	payload := make([]byte, 1000)
	text := []byte("héllo wörld, ünïcode ✓ 🎉 and plenty of ASCII to take the fast path ......")
	var v wire.UTF8Validator
	var acc [28]byte
	closePayload := []byte{0x03, 0xe8, 'o', 'k'}
	tests := []struct {
		name string
		f    func()
	}{
		{"ParseHeader", func() { sinkHeader, _, _ = wire.ParseHeader(hdr) }},
		{"AppendHeader", func() {
			sinkBytes = wire.AppendHeader(buf[:0], wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Length: math.MaxInt64})
		}},
		{"Mask", func() { wire.Mask(payload, [4]byte{1, 2, 3, 4}, 3) }},
		{"UTF8Validator.Write", func() {
			v.Reset()
			sinkBool = v.Write(text[:7]) && v.Write(text[7:])
		}},
		{"AcceptKey", func() { sinkBytes = wire.AcceptKey(&acc, "dGhlIHNhbXBsZSBub25jZQ==") }},
		{"ParseClosePayload", func() { _, sinkBytes, _ = wire.ParseClosePayload(closePayload) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tt.name, n)
		}
	}
}
