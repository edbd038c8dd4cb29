package peers

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/coder/websocket"
)

// coderServer reads in the handler goroutine with context.Background, which
// spares coder/websocket a context watch per read and write.
type coderServer struct {
	members room[*coderMember]
	sunk    atomic.Int64
	t       tracker
}

// coderMember is a /room connection with its writer goroutine, as in
// coder/websocket's chat example.
type coderMember struct {
	c    *websocket.Conn
	send chan coderMsg
	quit chan struct{}
}

type coderMsg struct {
	op websocket.MessageType
	p  []byte // shared by all members: never written
}

func newCoder() *coderServer { return &coderServer{} }

// coderConn adapts a Conn to io.Closer for the tracker.
type coderConn struct{ *websocket.Conn }

func (c coderConn) Close() error { return c.CloseNow() }

func (s *coderServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != "/echo" && path != "/room" && path != "/sink" {
		http.NotFound(w, r)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return
	}
	c.SetReadLimit(MaxMessage)
	cc := coderConn{c}
	if !s.t.add(cc) {
		return
	}
	defer s.t.done(cc)
	ctx := context.Background()
	switch path {
	case "/echo":
		var buf []byte
		for {
			op, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			if buf, err = readAll(rd, buf); err != nil {
				return
			}
			if c.Write(ctx, op, buf) != nil {
				return
			}
		}
	case "/sink":
		var buf []byte
		for {
			_, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			if buf, err = readAll(rd, buf); err != nil {
				return
			}
			s.sunk.Add(1)
		}
	case "/room":
		m := &coderMember{c: c, send: make(chan coderMsg, memberQueue), quit: make(chan struct{})}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case msg := <-m.send:
					if c.Write(ctx, msg.op, msg.p) != nil {
						c.CloseNow()
						return
					}
				case <-m.quit:
					return
				}
			}
		}()
		s.members.join(m)
		for {
			op, p, err := c.Read(ctx) // a fresh slice, shared by the deliveries
			if err != nil {
				break
			}
			s.broadcast(op, p)
		}
		s.members.leave(m)
		c.CloseNow()
		close(m.quit)
		<-done
	}
}

func (s *coderServer) broadcast(op websocket.MessageType, p []byte) int {
	n := 0
	for _, m := range s.members.list() {
		select {
		case m.send <- coderMsg{op, p}:
			n++
		default:
			m.c.CloseNow() // too slow, as the chat example does
		}
	}
	return n
}

func (s *coderServer) Broadcast(op byte, p []byte) int {
	return s.broadcast(websocket.MessageType(op), p)
}

func (s *coderServer) RoomLen() int { return s.members.len() }

func (s *coderServer) Sunk() int64 { return s.sunk.Load() }

func (s *coderServer) Close() { s.t.closeAll() }
