package interop

import (
	"fmt"
	"testing"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestRuntimeCompression connects gws clients to a runtime with
// permessage-deflate, in each of its modes and on each transport: clients
// with context takeover, without, and with a 9-bit window, in one room.
// Each message a client sends is echoed to it and broadcast to the room,
// so every client gets messages compressed once for the room (those that
// take shared frames) or by its session's own compressor (the others),
// and each arrives intact.
func TestRuntimeCompression(t *testing.T) {
	peers := []gws.PermessageDeflate{
		{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true},
		{Enabled: true},
		{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 9},
		{}, // no compression
	}
	for tname, tr := range map[string]runtime.Transport{"eventloop": runtime.TransportAuto, "goroutine": runtime.TransportGoroutine} {
		for _, mode := range []wire.CompressionMode{wire.CompressionNoContextTakeover, wire.CompressionContextTakeover} {
			t.Run(tname+"/"+mode.String(), func(t *testing.T) {
				url := serveRuntimeRoom(t, tr, runtime.WithCompression(mode, 0))
				evs := make([]*gwsEvents, len(peers))
				conns := make([]*gws.Conn, len(peers))
				for i, pd := range peers {
					evs[i] = newGWSEvents()
					t.Cleanup(func() { close(evs[i].stop) })
					c, resp, err := dialGWS(t, evs[i], gwsClientOption(url, config{peerDeflate: pd}))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.NetConn().Close() })
					t.Logf("client %d: %q", i, resp.Header.Get("Sec-WebSocket-Extensions"))
					conns[i] = c
					// The room's "joined" message: every client is in before the first broadcast.
					checkMessage(t, recv(t, evs[i].msgs, "the room to be joined"), wire.OpText, []byte("joined"))
				}
				for i, c := range conns {
					for _, n := range deflateSizes {
						for _, op := range opcodes {
							want := prose(op, n, i*n)
							if err := c.WriteMessage(gws.Opcode(op), want); err != nil {
								t.Fatal(err)
							}
							for j, ev := range evs {
								got := recv(t, ev.msgs, fmt.Sprintf("client %d to get client %d's %v of %d bytes", j, i, op, n))
								checkMessage(t, got, op, want)
							}
						}
					}
				}
			})
		}
	}
}

// serveRuntimeRoom serves a runtime on transport tr whose sessions join
// one room, are told "joined", and broadcast each message they get to the
// room, themselves included. It returns the URL; Cleanup shuts it down.
func serveRuntimeRoom(t *testing.T, tr runtime.Transport, opts ...runtime.Option) string {
	t.Helper()
	var rt *runtime.Runtime
	h := roomEcho{rt: &rt}
	rt, err := runtime.New(h, append([]runtime.Option{runtime.WithMaxMessageSize(maxMsg), runtime.WithTransport(tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return listenRuntime(t, rt)
}

// roomEcho is serveRuntimeRoom's handler.
type roomEcho struct {
	session.NopHandler
	rt **runtime.Runtime
}

func (h roomEcho) OnOpen(s *session.Session) error {
	if _, err := (*h.rt).JoinRoom("room", s); err != nil {
		return err
	}
	return s.Send(wire.OpText, []byte("joined"))
}

func (h roomEcho) OnMessage(s *session.Session, m session.Message) error {
	r, _ := (*h.rt).Room("room")
	r.Broadcast(m.Op, m.Data)
	return nil
}
