package interop

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

// pingPayloads are control payloads from empty to the longest allowed.
var pingPayloads = [][]byte{
	{},
	{0},
	[]byte("ping ⚡"),
	payload(wire.OpBinary, wire.MaxControlPayload, 7),
}

// TestPingPong checks pings both ways, answered with a pong that echoes
// the payload, unsolicited pongs both ways, and our OnPing and OnPong hooks.
func TestPingPong(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			for _, pl := range pingPayloads {
				t.Run("ours-pings/"+strconv.Itoa(len(pl)), func(t *testing.T) {
					if err := p.ours.Ping(pl); err != nil {
						t.Fatalf("Ping: %v", err)
					}
					if got := recv(t, p.ev.pings, "gws OnPing"); !bytes.Equal(got, pl) {
						t.Errorf("gws got ping %x, want %x", got, pl)
					}
					if got := recv(t, p.pongs, "our OnPong"); !bytes.Equal(got, pl) {
						t.Errorf("our OnPong got %x, want %x", got, pl)
					}
				})
				t.Run("gws-pings/"+strconv.Itoa(len(pl)), func(t *testing.T) {
					if err := p.peer.WritePing(pl); err != nil {
						t.Fatalf("gws WritePing: %v", err)
					}
					if got := recv(t, p.pings, "our OnPing"); !bytes.Equal(got, pl) {
						t.Errorf("our OnPing got %x, want %x", got, pl)
					}
					if got := recv(t, p.ev.pongs, "gws OnPong"); !bytes.Equal(got, pl) {
						t.Errorf("gws got pong %x, want %x (our automatic pong must echo the ping)", got, pl)
					}
				})
				t.Run("ours-pongs/"+strconv.Itoa(len(pl)), func(t *testing.T) {
					if err := p.ours.Pong(pl); err != nil {
						t.Fatalf("Pong: %v", err)
					}
					if got := recv(t, p.ev.pongs, "gws OnPong"); !bytes.Equal(got, pl) {
						t.Errorf("gws got pong %x, want %x", got, pl)
					}
				})
				t.Run("gws-pongs/"+strconv.Itoa(len(pl)), func(t *testing.T) {
					if err := p.peer.WritePong(pl); err != nil {
						t.Fatalf("gws WritePong: %v", err)
					}
					if got := recv(t, p.pongs, "our OnPong"); !bytes.Equal(got, pl) {
						t.Errorf("our OnPong got %x, want %x", got, pl)
					}
				})
			}
			t.Run("too-long", func(t *testing.T) {
				long := make([]byte, wire.MaxControlPayload+1)
				if err := p.ours.Ping(long); !errors.Is(err, wire.ErrControlTooLong) {
					t.Errorf("Ping of %d bytes: %v, want ErrControlTooLong", len(long), err)
				}
				if err := p.ours.Pong(long); !errors.Is(err, wire.ErrControlTooLong) {
					t.Errorf("Pong of %d bytes: %v, want ErrControlTooLong", len(long), err)
				}
				// The connection is unharmed.
				if err := p.ours.WriteMessage(wire.OpText, []byte("still here")); err != nil {
					t.Fatalf("WriteMessage: %v", err)
				}
				checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), wire.OpText, []byte("still here"))
			})
		})
	}
}

// TestCloseFromOurs closes from our side with Close(code, reason), with
// nobody reading and with a reader blocked in ReadMessage, and checks what
// gws sees and what our side returns.
func TestCloseFromOurs(t *testing.T) {
	cases := []struct {
		name   string
		code   wire.StatusCode
		reason string
		reader bool // a goroutine is in ReadMessage when Close is called
	}{
		{"normal", wire.StatusNormalClosure, "bye", false},
		{"normal-no-reason", wire.StatusNormalClosure, "", false},
		{"going-away", wire.StatusGoingAway, "restart", false},
		{"application-4000", 4000, "app: done", false},
		{"application-4999", 4999, "réason ⚡", false},
		{"long-reason", 4321, strings.Repeat("r", 123), false},
		{"normal-with-reader", wire.StatusNormalClosure, "bye", true},
		{"application-with-reader", 4444, "app", true},
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := topo.open(t, config{})
					if tc.reader {
						p.startReader()
						// Make sure the reader is in ReadMessage.
						if err := p.peer.WriteString("hi"); err != nil {
							t.Fatal(err)
						}
						recv(t, p.msgs, "our reader")
					}
					if err := p.ours.Close(tc.code, tc.reason); err != nil {
						t.Errorf("Close: %v", err)
					}
					gwsCloseError(t, recv(t, p.ev.closed, "gws OnClose"), tc.code, tc.reason, false)
					if tc.reader {
						// gws answers 1000 to the registered codes and echoes
						// 3000-4999.
						want := tc.code
						if want < 3000 {
							want = wire.StatusNormalClosure
						}
						err := recv(t, p.readErr, "our ReadMessage to return")
						if wire.CloseStatus(err) != want || wire.CodeOf(err) != want {
							t.Errorf("ReadMessage after Close: %v, want the close answer with code %d", err, want)
						}
					}
					if err := p.ours.WriteMessage(wire.OpText, []byte("late")); err == nil {
						t.Error("WriteMessage after Close succeeded")
					}
					if err := p.ours.Close(tc.code, tc.reason); !errors.Is(err, wire.ErrClosed) {
						t.Errorf("second Close: %v, want ErrClosed", err)
					}
				})
			}
		})
	}
}

// TestCloseFromGWS closes from gws with a code and reason and checks that
// our ReadMessage returns them as a CloseError.
func TestCloseFromGWS(t *testing.T) {
	cases := []struct {
		name   string
		code   wire.StatusCode
		reason string
		// Our side writes after gws has sent its close frame and dropped
		// the connection (gws does not wait for the answer), until a
		// write fails; only then does it read the close frame.
		writeFirst bool
	}{
		{"normal", wire.StatusNormalClosure, "bye", false},
		{"normal-no-reason", wire.StatusNormalClosure, "", false},
		{"going-away", wire.StatusGoingAway, "shutdown", false},
		{"policy", wire.StatusPolicyViolation, "nope", false},
		{"application-4000", 4000, "app: done", false},
		{"application-4999", 4999, "réason ⚡", false},
		{"long-reason", 4321, strings.Repeat("r", 123), false},
		{"normal-while-ours-writes", wire.StatusNormalClosure, "bye", true},
		{"application-while-ours-writes", 4000, "app: done", true},
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := topo.open(t, config{})
					if !tc.writeFirst {
						p.startReader()
					}
					if err := p.peer.WriteClose(uint16(tc.code), []byte(tc.reason)); err != nil {
						t.Fatalf("gws WriteClose: %v", err)
					}
					if tc.writeFirst {
						recv(t, p.ev.closed, "gws to drop the connection")
						var err error
						for i := 0; i < 10000 && err == nil; i++ {
							err = p.ours.WriteMessage(wire.OpBinary, make([]byte, 1000))
						}
						t.Logf("our write after gws closed: %v", err)
						p.startReader()
					}
					err := recv(t, p.readErr, "our ReadMessage to return")
					var ce wire.CloseError
					if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != tc.reason {
						t.Errorf("ReadMessage: %v, want CloseError{%d, %q}", err, tc.code, tc.reason)
					}
					if got := wire.CodeOf(err); got != tc.code {
						t.Errorf("CodeOf: %v, want %v", got, tc.code)
					}
					if err := p.ours.WriteMessage(wire.OpText, []byte("late")); err == nil {
						t.Error("WriteMessage after the peer's close succeeded")
					}
				})
			}
		})
	}
}

// TestAbruptClose drops the TCP connection without a closing handshake,
// from either side, and checks that our side reports an abnormal closure
// (1006), not a CloseError, and that gws sees no close frame.
func TestAbruptClose(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Run("gws-drops", func(t *testing.T) {
				p := topo.open(t, config{})
				p.startReader()
				p.peer.NetConn().Close()
				checkAbnormal(t, recv(t, p.readErr, "our ReadMessage to return"))
				if err := recv(t, p.ev.closed, "gws OnClose"); errors.As(err, new(*gws.CloseError)) {
					t.Errorf("gws saw a close frame: %v", err)
				}
			})
			t.Run("gws-drops-mid-message", func(t *testing.T) {
				p := topo.open(t, config{})
				p.startReader()
				// Half of a 1000-byte message, then the connection ends.
				h := wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: topo.peerIsClient, Key: [4]byte{1, 2, 3, 4}, Length: 1000}
				raw := wire.AppendFrame(nil, h, make([]byte, 1000))[:500]
				if _, err := p.peer.NetConn().Write(raw); err != nil {
					t.Fatal(err)
				}
				p.peer.NetConn().Close()
				checkAbnormal(t, recv(t, p.readErr, "our ReadMessage to return"))
			})
			t.Run("ours-drops-idle", func(t *testing.T) {
				p := topo.open(t, config{})
				if err := p.ours.CloseNow(); err != nil {
					t.Errorf("CloseNow: %v", err)
				}
				if err := recv(t, p.ev.closed, "gws OnClose"); err == nil || errors.As(err, new(*gws.CloseError)) {
					t.Errorf("gws OnClose got %v, want an I/O error", err)
				}
				_, _, err := p.ours.ReadMessage()
				checkAbnormal(t, err)
			})
			t.Run("ours-drops-while-reading", func(t *testing.T) {
				p := topo.open(t, config{})
				p.startReader()
				if err := p.peer.WriteString("hi"); err != nil {
					t.Fatal(err)
				}
				recv(t, p.msgs, "our reader") // it is in ReadMessage now
				if err := p.ours.CloseNow(); err != nil {
					t.Errorf("CloseNow: %v", err)
				}
				checkAbnormal(t, recv(t, p.readErr, "our ReadMessage to return"))
				if err := recv(t, p.ev.closed, "gws OnClose"); err == nil || errors.As(err, new(*gws.CloseError)) {
					t.Errorf("gws OnClose got %v, want an I/O error", err)
				}
				if err := p.ours.WriteMessage(wire.OpText, []byte("late")); err == nil {
					t.Error("WriteMessage after CloseNow succeeded")
				}
			})
		})
	}
}

// checkAbnormal asserts that err reports a connection lost without a close
// frame.
func checkAbnormal(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if st := wire.CloseStatus(err); st != -1 {
		t.Errorf("got %v, a CloseError with code %d; want a transport error", err, st)
	}
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		t.Errorf("got protocol error %v; want a transport error", err)
	}
	if got := wire.CodeOf(err); got != wire.StatusAbnormalClosure {
		t.Errorf("CodeOf(%v) = %v, want %v", err, got, wire.StatusAbnormalClosure)
	}
}

// TestCloseFrameFromGWSChecked writes close frames on gws's connection
// directly (gws's WriteClose cannot send most of them) and checks how our
// side takes them: a valid one is returned as a CloseError and answered, a
// malformed one fails the connection with 1002 or 1007. gws sees our answer.
func TestCloseFrameFromGWSChecked(t *testing.T) {
	code := func(c int, reason string) []byte {
		return append([]byte{byte(c >> 8), byte(c)}, reason...)
	}
	cases := []struct {
		name    string
		payload []byte
		want    error           // a *wire.ProtocolError, or nil for a valid close
		code    wire.StatusCode // CodeOf what ReadMessage returns
		answer  wire.StatusCode // the code gws receives from us (0: none in the frame)
	}{
		{"empty", nil, nil, wire.StatusNoStatusRcvd, 0},
		{"code-3000", code(3000, "lib"), nil, 3000, 3000},
		{"code-1014", code(1014, ""), nil, 1014, 1014},
		{"one-byte", []byte{0x03}, wire.ErrBadClosePayload, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-999", code(999, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-1004", code(1004, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-1005", code(1005, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-1006", code(1006, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-1015", code(1015, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-2999", code(2999, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"code-5000", code(5000, ""), wire.ErrBadCloseCode, wire.StatusProtocolError, wire.StatusProtocolError},
		{"reason-not-utf8", code(1000, "\xff"), wire.ErrInvalidCloseReason, wire.StatusInvalidFramePayloadData, wire.StatusInvalidFramePayloadData},
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := topo.open(t, config{})
					p.startReader()
					if _, err := p.peer.NetConn().Write(rawFrames(topo.peerIsClient, wire.OpClose, tc.payload)); err != nil {
						t.Fatal(err)
					}
					err := recv(t, p.readErr, "our ReadMessage to return")
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Errorf("ReadMessage: %v, want %v", err, tc.want)
					}
					if tc.want == nil && wire.CloseStatus(err) != tc.code {
						t.Errorf("ReadMessage: %v, want a CloseError with code %d", err, tc.code)
					}
					if got := wire.CodeOf(err); got != tc.code {
						t.Errorf("CodeOf: %v, want %v", got, tc.code)
					}
					gwsCloseError(t, recv(t, p.ev.closed, "gws OnClose"), tc.answer, "", true)
				})
			}
		})
	}
}
