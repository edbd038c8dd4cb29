package peers

import (
	"net/http"
	"sync/atomic"

	"github.com/lxzan/gws"
)

// gwsServer follows gws's README: an Upgrader per endpoint and
// `go socket.ReadLoop()` after the upgrade.
type gwsServer struct {
	echo, room, sink *gws.Upgrader
	members          room[*gws.Conn]
	sunk             atomic.Int64
	t                tracker
}

// gwsOption is gws's configuration; with deflate, permessage-deflate
// without context takeover on either side, at gws's defaults otherwise
// (level 1, messages of 512 bytes and more compressed), so that its
// Broadcaster compresses a broadcast once for all members.
func gwsOption(deflate bool) *gws.ServerOption {
	return &gws.ServerOption{
		ParallelEnabled:     false, // messages of a connection in order, on its reader
		CheckUtf8Enabled:    true,
		ReadMaxPayloadSize:  MaxMessage,
		WriteMaxPayloadSize: MaxMessage,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               deflate,
			ServerContextTakeover: false,
			ClientContextTakeover: false,
		},
	}
}

func newGws(o Options) *gwsServer {
	s := &gwsServer{}
	s.echo = gws.NewUpgrader(gwsEcho{}, gwsOption(o.Deflate))
	s.room = gws.NewUpgrader(gwsRoom{s: s}, gwsOption(o.Deflate))
	s.sink = gws.NewUpgrader(gwsSink{s: s}, gwsOption(o.Deflate))
	return s
}

// gwsBase answers pings with their payload, as gws's README example does
// (BuiltinEventHandler's OnPing sends an empty pong, which RFC 6455 5.5.3
// does not allow).
type gwsBase struct{ gws.BuiltinEventHandler }

func (gwsBase) OnPing(c *gws.Conn, p []byte) { c.WritePong(p) }

type gwsEcho struct{ gwsBase }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	c.WriteMessage(m.Opcode, m.Bytes())
	m.Close()
}

type gwsRoom struct {
	gwsBase
	s *gwsServer
}

func (h gwsRoom) OnOpen(c *gws.Conn) { h.s.members.join(c) }

func (h gwsRoom) OnClose(c *gws.Conn, _ error) { h.s.members.leave(c) }

func (h gwsRoom) OnMessage(c *gws.Conn, m *gws.Message) {
	h.s.broadcast(m.Opcode, m.Bytes())
	m.Close() // the broadcaster has encoded its own copy
}

type gwsSink struct {
	gwsBase
	s *gwsServer
}

func (h gwsSink) OnMessage(c *gws.Conn, m *gws.Message) {
	h.s.sunk.Add(1)
	m.Close()
}

func (s *gwsServer) broadcast(op gws.Opcode, p []byte) int {
	b := gws.NewBroadcaster(op, p)
	n := 0
	for _, c := range s.members.list() {
		if b.Broadcast(c) == nil {
			n++
		}
	}
	b.Close()
	return n
}

func (s *gwsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var up *gws.Upgrader
	switch r.URL.Path {
	case "/echo":
		up = s.echo
	case "/room":
		up = s.room
	case "/sink":
		up = s.sink
	default:
		http.NotFound(w, r)
		return
	}
	c, err := up.Upgrade(w, r)
	if err != nil {
		return
	}
	nc := c.NetConn()
	if !s.t.add(nc) {
		return
	}
	go func() {
		defer s.t.done(nc)
		c.ReadLoop()
	}()
}

func (s *gwsServer) Broadcast(op byte, p []byte) int { return s.broadcast(gws.Opcode(op), p) }

func (s *gwsServer) RoomLen() int { return s.members.len() }

func (s *gwsServer) Sunk() int64 { return s.sunk.Load() }

func (s *gwsServer) Close() { s.t.closeAll() }
