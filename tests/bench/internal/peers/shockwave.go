package peers

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// swServer serves each endpoint with its own Runtime, since a Runtime has
// one handler.
type swServer struct {
	echo, room, sink *runtime.Runtime
	sunk             atomic.Int64
}

func newShockwave(o Options, tr runtime.Transport) (*swServer, error) {
	s := &swServer{}
	// No message rate limit: the peers have none, and the load generator
	// sends as fast as the server takes.
	base := []runtime.Option{runtime.WithMaxMessageSize(MaxMessage), runtime.WithTransport(tr), runtime.WithMessageRate(-1, 0)}
	if o.Deflate {
		// Each message compressed on its own, a room's broadcast once
		// for all its members.
		base = append(base, runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))
	}
	var err error
	s.echo, err = runtime.New(session.HandlerFunc(func(ss *session.Session, m session.Message) error {
		return ss.Send(m.Op, m.Data)
	}), base...)
	if err != nil {
		return nil, err
	}
	roomOpts := base
	if o.RoomMailbox > 0 {
		roomOpts = append(roomOpts[:len(roomOpts):len(roomOpts)],
			runtime.WithMailbox(o.RoomMailbox, int64(o.RoomMailbox)<<16, session.PolicyClose))
	}
	if o.RoomBroker != nil {
		roomOpts = append(roomOpts[:len(roomOpts):len(roomOpts)], runtime.WithBroker(o.RoomBroker))
	}
	if o.RoomHistory > 0 {
		h := runtime.History{Size: o.RoomHistory} // no Stamp: the payload carries no position
		roomOpts = append(roomOpts[:len(roomOpts):len(roomOpts)],
			runtime.WithRoomHistory(func(string) runtime.History { return h }))
	}
	s.room, err = runtime.New(swRoom{s, o.RoomHistory > 0}, roomOpts...)
	if err != nil {
		return nil, err
	}
	s.sink, err = runtime.New(session.HandlerFunc(func(*session.Session, session.Message) error {
		s.sunk.Add(1)
		return nil
	}), base...)
	return s, err
}

// swRoom joins every session to the room and broadcasts its messages, or
// publishes them to the room's history when it keeps one.
type swRoom struct {
	s       *swServer
	publish bool // Room.Publish instead of Room.Broadcast
}

var errNoRoom = errors.New("peers: session ended before joining the room")

func (h swRoom) OnOpen(ss *session.Session) error {
	r := h.s.room.Join(RoomName, ss)
	if r == nil {
		return errNoRoom
	}
	// A room lives while it has members, this session among them, so
	// the pointer stays good for the session's life.
	*session.State[*runtime.Room](ss) = r
	return nil
}

func (h swRoom) OnMessage(ss *session.Session, m session.Message) error {
	r := *session.State[*runtime.Room](ss)
	if h.publish {
		// An error (the Broker's log unreachable past its bound) is the
		// Broker's to count; the members see the message missing.
		r.Publish(m.Context(), nil, rawMessage{m.Op, m.Data})
		return nil
	}
	r.Broadcast(m.Op, m.Data)
	return nil
}

// rawMessage is a message for Room.Publish: one variant, the payload a
// member sent, whatever its position. Publish encodes it during the call,
// while the payload is valid.
type rawMessage struct {
	op   wire.Opcode
	data []byte
}

func (rawMessage) Variants() int                { return 1 }
func (rawMessage) Variant(*session.Session) int { return 0 }
func (m rawMessage) Encode(runtime.Position, int) (*session.Frame, error) {
	return session.NewFrame(m.op, m.data), nil
}

func (swRoom) OnClose(*session.Session, error) {}

func (s *swServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		s.echo.ServeHTTP(w, r)
	case "/room":
		s.room.ServeHTTP(w, r)
	case "/sink":
		s.sink.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *swServer) Broadcast(op byte, p []byte) int {
	r, ok := s.room.Room(RoomName)
	if !ok {
		return 0
	}
	return r.Broadcast(wire.Opcode(op), p)
}

func (s *swServer) RoomLen() int {
	if r, ok := s.room.Room(RoomName); ok {
		return r.Len()
	}
	return 0
}

func (s *swServer) Sunk() int64 { return s.sunk.Load() }

func (s *swServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, rt := range []*runtime.Runtime{s.echo, s.room, s.sink} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt.Shutdown(ctx)
		}()
	}
	wg.Wait()
}
