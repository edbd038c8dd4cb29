package peers

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// gorillaServer reads in the handler goroutine, as gorilla's examples do.
// The upgrader reuses the HTTP server's read buffer and borrows write
// buffers from a pool, which gorilla's documentation recommends for many
// connections.
type gorillaServer struct {
	up      websocket.Upgrader
	members room[*gorillaMember]
	sunk    atomic.Int64
	t       tracker
}

// gorillaMember is a /room connection with its writer goroutine, as in
// gorilla's chat example.
type gorillaMember struct {
	c    *websocket.Conn
	send chan gorillaMsg
	quit chan struct{} // closed when the member has left
}

type gorillaMsg struct {
	op int
	p  []byte // shared by all members: never written
}

// memberQueue is the outbound queue of a room member in the goroutine-
// per-connection servers: as deep as Shockwave's default mailbox.
const memberQueue = 256

func newGorilla() *gorillaServer {
	return &gorillaServer{up: websocket.Upgrader{
		CheckOrigin:       func(*http.Request) bool { return true },
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false,
	}}
}

func (s *gorillaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != "/echo" && path != "/room" && path != "/sink" {
		http.NotFound(w, r)
		return
	}
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(MaxMessage)
	if !s.t.add(c) {
		return
	}
	defer s.t.done(c)
	switch path {
	case "/echo":
		var buf []byte
		for {
			op, rd, err := c.NextReader()
			if err != nil {
				return
			}
			if buf, err = readAll(rd, buf); err != nil {
				return
			}
			if c.WriteMessage(op, buf) != nil {
				return
			}
		}
	case "/sink":
		var buf []byte
		for {
			_, rd, err := c.NextReader()
			if err != nil {
				return
			}
			if buf, err = readAll(rd, buf); err != nil {
				return
			}
			s.sunk.Add(1)
		}
	case "/room":
		m := &gorillaMember{c: c, send: make(chan gorillaMsg, memberQueue), quit: make(chan struct{})}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case msg := <-m.send:
					if c.WriteMessage(msg.op, msg.p) != nil {
						c.Close()
						return
					}
				case <-m.quit:
					return
				}
			}
		}()
		s.members.join(m)
		for {
			op, p, err := c.ReadMessage() // a fresh slice, shared by the deliveries
			if err != nil {
				break
			}
			s.broadcast(op, p)
		}
		s.members.leave(m)
		c.Close()
		close(m.quit)
		<-done
	}
}

func (s *gorillaServer) broadcast(op int, p []byte) int {
	n := 0
	for _, m := range s.members.list() {
		if m.offer(gorillaMsg{op, p}) {
			n++
		}
	}
	return n
}

// offer queues msg without blocking; a member whose queue is full is
// closed, as the chat example's hub does.
func (m *gorillaMember) offer(msg gorillaMsg) bool {
	select {
	case m.send <- msg:
		return true
	default:
		m.c.Close()
		return false
	}
}

func (s *gorillaServer) Broadcast(op byte, p []byte) int { return s.broadcast(int(op), p) }

func (s *gorillaServer) RoomLen() int { return s.members.len() }

func (s *gorillaServer) Sunk() int64 { return s.sunk.Load() }

func (s *gorillaServer) Close() { s.t.closeAll() }
