package peers

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// nbioServer is nbio's epoll engine with its websocket upgrader. Handlers
// run inline on the poller goroutine (nbio's default hands every message to
// a goroutine pool, which halves echo throughput on one core). Writes never
// block: what the socket does not take is queued in the process.
type nbioServer struct {
	echo, room, sink *websocket.Upgrader
	members          room[*websocket.Conn]
	sunk             atomic.Int64
}

func newNbio() *nbioServer {
	s := &nbioServer{}
	up := func() *websocket.Upgrader {
		u := websocket.NewUpgrader()
		u.CheckOrigin = func(*http.Request) bool { return true }
		u.MessageLengthLimit = MaxMessage
		u.KeepaliveTime = time.Hour // no read deadline during the runs
		return u
	}
	s.echo, s.room, s.sink = up(), up(), up()
	s.echo.OnMessage(func(c *websocket.Conn, op websocket.MessageType, p []byte) {
		c.WriteMessage(op, p)
	})
	s.room.OnOpen(func(c *websocket.Conn) { s.members.join(c) })
	s.room.OnClose(func(c *websocket.Conn, _ error) { s.members.leave(c) })
	s.room.OnMessage(func(c *websocket.Conn, op websocket.MessageType, p []byte) {
		s.broadcast(op, p)
	})
	s.sink.OnMessage(func(*websocket.Conn, websocket.MessageType, []byte) { s.sunk.Add(1) })
	return s
}

func (s *nbioServer) broadcast(op websocket.MessageType, p []byte) int {
	n := 0
	for _, c := range s.members.list() {
		if c.WriteMessage(op, p) == nil {
			n++
		}
	}
	return n
}

func (s *nbioServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var u *websocket.Upgrader
	switch r.URL.Path {
	case "/echo":
		u = s.echo
	case "/room":
		u = s.room
	case "/sink":
		u = s.sink
	default:
		http.NotFound(w, r)
		return
	}
	u.Upgrade(w, r, nil)
}

func (s *nbioServer) Broadcast(op byte, p []byte) int {
	return s.broadcast(websocket.MessageType(op), p)
}

func (s *nbioServer) RoomLen() int { return s.members.len() }

func (s *nbioServer) Sunk() int64 { return s.sunk.Load() }

// Close does nothing: the engine owns the connections (see start).
func (s *nbioServer) Close() {}

var nbioLogOnce sync.Once

// start runs the engine on addr.
func (s *nbioServer) start(addr string) (*Running, error) {
	nbioLogOnce.Do(func() { logging.SetLevel(logging.LevelError) })
	var bound atomic.Value
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                      "tcp",
		Addrs:                        []string{addr},
		MaxLoad:                      1 << 20,
		Handler:                      s,
		ServerExecutor:               func(f func()) { f() }, // handlers inline
		ReleaseWebsocketPayload:      true,
		MaxWebsocketFramePayloadSize: MaxMessage,
		Listen: func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err == nil {
				bound.Store(ln.Addr().String())
			}
			return ln, err
		},
	})
	for _, u := range []*websocket.Upgrader{s.echo, s.room, s.sink} {
		u.Engine = engine
	}
	if err := engine.Start(); err != nil {
		return nil, err
	}
	var once sync.Once
	return &Running{Lib: "nbio", Addr: bound.Load().(string), Server: s, stop: func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			engine.Shutdown(ctx) // closes the connections, then stops the engine
		})
	}}, nil
}
