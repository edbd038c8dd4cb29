package interop

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

// rawFrames encodes frags as one message the way the peer must send it
// (masked when the peer is the client), for the cases gws's API cannot
// produce. Writing them with one Write keeps them in one TCP segment.
func rawFrames(masked bool, op wire.Opcode, frags ...[]byte) []byte {
	var raw []byte
	for i, f := range frags {
		h := wire.Header{Fin: i == len(frags)-1, Opcode: op, Masked: masked, Key: [4]byte{0xA5, 0x5A, byte(i), 0x0F}, Length: int64(len(f))}
		if i > 0 {
			h.Opcode = wire.OpContinuation
		}
		raw = wire.AppendFrame(raw, h, f)
	}
	return raw
}

// TestInvalidUTF8FromGWS has gws send text that is not UTF-8 and checks
// that our side fails the connection with 1007, which gws receives.
func TestInvalidUTF8FromGWS(t *testing.T) {
	valid := payload(wire.OpText, 100_000, 1)
	cases := []struct {
		name  string
		msg   []byte   // sent with gws's WriteMessage
		frags [][]byte // or written as raw fragments
	}{
		{name: "lone-0xff", msg: []byte("\xff")},
		{name: "truncated-at-end", msg: []byte("abc\xe2\x82")},
		{name: "overlong", msg: []byte("\xc0\xaf")},
		{name: "surrogate", msg: []byte("a\xed\xa0\x80b")},
		{name: "above-U+10FFFF", msg: []byte("\xf4\x90\x80\x80")},
		{name: "large-invalid-at-end", msg: append(bytes.Clone(valid), 0xff)},
		{name: "large-invalid-at-start", msg: append([]byte{0xff}, valid...)},
		// Still being sent when our side fails the connection: more than
		// the socket buffers hold. gws must be able to finish its write
		// and read our close frame.
		{name: "8MiB-invalid-at-start-in-flight", msg: append([]byte{0xff}, prose(wire.OpText, 8<<20, 0)...)},
		{name: "fragments-invalid-across-boundary", frags: [][]byte{[]byte("ab\xe2"), []byte("\x28\xa1")}},
		{name: "fragments-truncated-at-fin", frags: [][]byte{[]byte("ok"), []byte("\xe2\x82"), {}}},
		{name: "fragments-invalid-in-middle", frags: [][]byte{[]byte("ok"), []byte("\xff"), []byte("more")}},
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := topo.open(t, config{peerNoUTF8: true})
					p.startReader()
					var err error
					if tc.msg != nil {
						err = p.peer.WriteMessage(gws.OpcodeText, tc.msg)
					} else {
						_, err = p.peer.NetConn().Write(rawFrames(topo.peerIsClient, wire.OpText, tc.frags...))
					}
					if err != nil {
						t.Errorf("gws write: %v", err)
					}
					err = recv(t, p.readErr, "our ReadMessage to fail")
					if !errors.Is(err, wire.ErrInvalidUTF8) || wire.CodeOf(err) != wire.StatusInvalidFramePayloadData {
						t.Errorf("ReadMessage: %v (code %v), want ErrInvalidUTF8 (1007)", err, wire.CodeOf(err))
					}
					gwsCloseError(t, recv(t, p.ev.closed, "gws OnClose"), wire.StatusInvalidFramePayloadData, "", true)
				})
			}
		})
	}
}

// TestTooBigFromGWS has gws send messages over our MaxMessageSize and checks
// that our side fails the connection with 1009, which gws receives. A
// message of exactly the limit goes through first.
func TestTooBigFromGWS(t *testing.T) {
	const limit = 1000
	cases := []struct {
		name  string
		send  func(p *pair, masked bool) error
		wantN int // messages under the limit our side receives first
	}{
		{"single-frame", func(p *pair, _ bool) error {
			return p.peer.WriteMessage(gws.OpcodeBinary, make([]byte, limit+1))
		}, 0},
		{"text", func(p *pair, _ bool) error {
			return p.peer.WriteMessage(gws.OpcodeText, payload(wire.OpText, 2*limit, 0))
		}, 0},
		{"fragments-adding-up", func(p *pair, _ bool) error {
			return p.peer.WriteFile(gws.OpcodeBinary, &fragmentReader{frags: split(make([]byte, limit+1), 500, 500)})
		}, 0},
		{"64-bit-length-announced", func(p *pair, masked bool) error {
			h := wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: masked, Length: 1 << 40}
			_, err := p.peer.NetConn().Write(append(wire.AppendHeader(nil, h), "only a few bytes"...))
			return err
		}, 0},
		{"100KiB", func(p *pair, _ bool) error {
			return p.peer.WriteMessage(gws.OpcodeBinary, make([]byte, 100<<10))
		}, 0},
		// Still being sent when our side fails the connection: more than
		// the socket buffers hold. gws must be able to finish its write
		// and read our close frame.
		{"8MiB-in-flight", func(p *pair, _ bool) error {
			return p.peer.WriteMessage(gws.OpcodeBinary, make([]byte, 8<<20))
		}, 0},
		{"after-limit-sized-messages", func(p *pair, _ bool) error {
			for range 3 {
				if err := p.peer.WriteMessage(gws.OpcodeBinary, make([]byte, limit)); err != nil {
					return err
				}
			}
			return p.peer.WriteFile(gws.OpcodeText, &fragmentReader{frags: split(payload(wire.OpText, limit, 0), 300, 300, 300)})
		}, 4},
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := topo.open(t, config{ours: wire.Options{MaxMessageSize: limit}})
					p.startReader()
					werr := goErr(func() error {
						if err := tc.send(p, topo.peerIsClient); err != nil {
							return err
						}
						if tc.wantN > 0 {
							return p.peer.WriteMessage(gws.OpcodeBinary, make([]byte, limit+1))
						}
						return nil
					})
					for i := range tc.wantN {
						if m := recv(t, p.msgs, "a message under the limit"); len(m.data) != limit {
							t.Errorf("message %d has %d bytes, want %d", i, len(m.data), limit)
						}
					}
					err := recv(t, p.readErr, "our ReadMessage to fail")
					if !errors.Is(err, wire.ErrMessageTooBig) || wire.CodeOf(err) != wire.StatusMessageTooBig {
						t.Errorf("ReadMessage: %v (code %v), want ErrMessageTooBig (1009)", err, wire.CodeOf(err))
					}
					gwsCloseError(t, recv(t, p.ev.closed, "gws OnClose"), wire.StatusMessageTooBig, "", true)
					if err := recv(t, werr, "gws to write"); err != nil {
						t.Errorf("gws write: %v (our side must not reset the connection under it)", err)
					}
				})
			}
		})
	}
}

// TestTooBigForGWS sends gws a message over its limit and checks that our
// side returns gws's 1009 close as a CloseError.
func TestTooBigForGWS(t *testing.T) {
	const limit = 1000
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{peerMax: limit})
			p.startReader()
			if err := p.ours.WriteMessage(wire.OpBinary, make([]byte, limit)); err != nil {
				t.Fatal(err)
			}
			checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), wire.OpBinary, make([]byte, limit))
			if err := p.ours.WriteMessage(wire.OpBinary, make([]byte, limit+1)); err != nil {
				t.Fatal(err)
			}
			err := recv(t, p.readErr, "our ReadMessage to return")
			if wire.CloseStatus(err) != wire.StatusMessageTooBig {
				t.Errorf("ReadMessage: %v, want a CloseError with 1009", err)
			}
		})
	}
}

// TestInvalidUTF8ToGWS sends gws text that is not UTF-8 (WriteMessage does
// not check) and checks that our side reports the close code gws answers.
func TestInvalidUTF8ToGWS(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			if err := p.ours.WriteMessage(wire.OpText, []byte("\xff")); err != nil {
				t.Fatal(err)
			}
			err := recv(t, p.readErr, "our ReadMessage to return")
			if wire.CloseStatus(err) != wire.StatusInvalidFramePayloadData {
				t.Errorf("ReadMessage: %v, want a CloseError with 1007", err)
			}
			if !strings.Contains(err.Error(), "1007") {
				t.Errorf("error %q does not name the code", err)
			}
		})
	}
}
