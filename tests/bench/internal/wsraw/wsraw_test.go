package wsraw

import (
	"bytes"
	"testing"

	"github.com/shockwave-go/shockwave/wire"
)

func serverFrame(op wire.Opcode, fin bool, p []byte) []byte {
	return wire.AppendFrame(nil, wire.Header{Fin: fin, Opcode: op}, p)
}

// TestParserSplits feeds a stream of frames cut at every possible pair of
// places and checks that the payloads come out whole and in order.
func TestParserSplits(t *testing.T) {
	big := Pattern(300) // a 16-bit length
	var stream []byte
	stream = append(stream, serverFrame(wire.OpBinary, true, []byte("hello"))...)
	stream = append(stream, serverFrame(wire.OpText, false, big[:200])...)
	stream = append(stream, serverFrame(wire.OpPing, true, nil)...)
	stream = append(stream, serverFrame(wire.OpContinuation, true, big[200:])...)
	stream = append(stream, serverFrame(wire.OpBinary, true, nil)...)
	type frame struct {
		op  wire.Opcode
		fin bool
		p   string
	}
	want := []frame{
		{wire.OpBinary, true, "hello"},
		{wire.OpText, false, string(big[:200])},
		{wire.OpPing, true, ""},
		{wire.OpContinuation, true, string(big[200:])},
		{wire.OpBinary, true, ""},
	}
	for i := 0; i <= len(stream); i += 7 {
		for j := i; j <= len(stream); j += 5 {
			var p Parser
			var got []frame
			var cur []byte
			for _, piece := range [][]byte{stream[:i], stream[i:j], stream[j:]} {
				for len(piece) > 0 {
					c, n, ok, err := p.Next(piece)
					if err != nil {
						t.Fatalf("cut at %d,%d: %v", i, j, err)
					}
					piece = piece[n:]
					if !ok {
						break
					}
					if c.Start {
						cur = cur[:0]
					}
					cur = append(cur, c.Data...)
					if c.End {
						got = append(got, frame{c.Op, c.Fin, string(cur)})
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("cut at %d,%d: %d frames, want %d", i, j, len(got), len(want))
			}
			for k := range want {
				if got[k] != want[k] {
					t.Fatalf("cut at %d,%d: frame %d = %v/%v/%d bytes, want %v/%v/%d bytes",
						i, j, k, got[k].op, got[k].fin, len(got[k].p), want[k].op, want[k].fin, len(want[k].p))
				}
			}
		}
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"masked", wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true}, []byte("x")), ErrMaskedFrame},
		{"reserved bits", wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Rsv: 0x40}, []byte("x")), ErrReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			if _, _, _, err := p.Next(tt.in); err != tt.want {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendMessageFragments(t *testing.T) {
	payload := Pattern(10)
	b := AppendMessage(nil, wire.OpText, payload, 4)
	rd := wire.NewReader(bytes.NewReader(b), &wire.ReaderOptions{Server: true})
	op, p, err := rd.Next()
	if err != nil || op != wire.OpText || !bytes.Equal(p, payload) {
		t.Fatalf("read back %v %q %v, want text %q", op, p, err, payload)
	}
	if n := bytes.Count(b, MaskKey[:]); n != 3 {
		t.Errorf("%d frames, want 3", n)
	}
}

func TestResponse(t *testing.T) {
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + Accept + "\r\n\r\n"
	tests := []struct {
		name    string
		in      string
		wantN   int
		wantErr bool
	}{
		{"complete", ok + "\x82\x00", len(ok), false},
		{"incomplete", ok[:40], 0, true},
		{"refused", "HTTP/1.1 403 Forbidden\r\n\r\n", 0, true},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Response([]byte(tt.in))
			if n != tt.wantN || (err != nil) != tt.wantErr {
				t.Errorf("Response = %d, %v; want %d, error %v", n, err, tt.wantN, tt.wantErr)
			}
		})
	}
}
