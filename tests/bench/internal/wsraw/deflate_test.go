package wsraw

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/wire"
)

func TestRequestDeflate(t *testing.T) {
	r := string(RequestDeflate("127.0.0.1:1", "/echo"))
	if !strings.HasPrefix(r, string(Request("127.0.0.1:1", "/echo"))[:40]) ||
		!strings.HasSuffix(r, "\r\nSec-WebSocket-Extensions: "+DeflateOffer+"\r\n\r\n") {
		t.Errorf("request:\n%s", r)
	}
}

func TestDeflateResponse(t *testing.T) {
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + Accept + "\r\n"
	tests := []struct {
		name string
		ext  string // "" for no header
		ok   bool
	}{
		{"both", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"server only", "permessage-deflate; server_no_context_takeover", true},
		{"gws's windows", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15", true},
		{"declined", "", false},
		{"takeover", "permessage-deflate; client_no_context_takeover", false},
		{"small client window", "permessage-deflate; server_no_context_takeover; client_max_window_bits=10", false},
		{"unknown parameter", "permessage-deflate; server_no_context_takeover; x=1", false},
		{"other extension", "x-webkit-deflate-frame", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := head
			if tt.ext != "" {
				in += "Sec-WebSocket-Extensions: " + tt.ext + "\r\n"
			}
			in += "\r\n"
			n, err := DeflateResponse([]byte(in + "\x82\x00"))
			if tt.ok && (err != nil || n != len(in)) || !tt.ok && err == nil {
				t.Errorf("DeflateResponse = %d, %v; want %d, ok %v", n, err, len(in), tt.ok)
			}
		})
	}
}

// TestCompressedMessageReadBack reads the client's compressed frames with
// the wire package's reader, as a server would, whole and in fragments.
func TestCompressedMessageReadBack(t *testing.T) {
	payload := JSON(1 << 10)
	for _, frag := range []int{0, 100} {
		b := AppendCompressedMessage(nil, wire.OpText, payload, frag)
		rd := wire.NewReader(bytes.NewReader(b), &wire.ReaderOptions{Server: true,
			Compression: wire.CompressionParams{Enabled: true, ClientNoContextTakeover: true, ServerNoContextTakeover: true, ClientMaxWindowBits: 15, ServerMaxWindowBits: 15}})
		op, p, err := rd.Next()
		if err != nil || op != wire.OpText || !bytes.Equal(p, payload) {
			t.Fatalf("frag %d: read back %v, %d bytes, %v; want text of %d bytes", frag, op, len(p), err, len(payload))
		}
	}
}

func TestInflater(t *testing.T) {
	var f Inflater
	for _, p := range [][]byte{JSON(1 << 10), Text(64 << 10), Pattern(3)} {
		z := wire.AppendCompressed(nil, p)
		got, err := f.Inflate(nil, z, len(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("inflated %d bytes, %v; want %d bytes", len(got), err, len(p))
		}
		if _, err := f.Inflate(nil, z, len(p)-1); !errors.Is(err, ErrTooLong) {
			t.Errorf("limit %d: err = %v, want ErrTooLong", len(p)-1, err)
		}
	}
	if _, err := f.Inflate(nil, []byte{0xff, 0xff, 0xff}, 100); err == nil {
		t.Error("garbage inflated without an error")
	}
}

func TestParserRSV1(t *testing.T) {
	frame := wire.AppendFrame(nil, wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, []byte("xyz"))
	var p Parser
	if _, _, _, err := p.Next(frame); err != ErrReserved {
		t.Errorf("without Deflate: err = %v, want ErrReserved", err)
	}
	p = Parser{Deflate: true}
	c, _, ok, err := p.Next(frame)
	if err != nil || !ok || !c.Compressed || string(c.Data) != "xyz" {
		t.Errorf("with Deflate: %+v, %v, %v", c, ok, err)
	}
	c, _, ok, err = p.Next(wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpText}, []byte("x")))
	if err != nil || !ok || c.Compressed {
		t.Errorf("a plain frame after: %+v, %v, %v", c, ok, err)
	}
	if _, _, _, err := p.Next(wire.AppendFrame(nil, wire.Header{Fin: true, Rsv: 0x20, Opcode: wire.OpText}, nil)); err != ErrReserved {
		t.Errorf("RSV2 with Deflate: err = %v, want ErrReserved", err)
	}
}
