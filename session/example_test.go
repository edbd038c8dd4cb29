package session_test

import (
	"fmt"
	"strings"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// An echo handler: HandlerFunc handles messages only.
func ExampleHandlerFunc() {
	var h session.Handler = session.HandlerFunc(func(s *session.Session, m session.Message) error {
		// m.Data is valid during the callback only; Send copies it.
		return s.Send(m.Op, m.Data)
	})
	_ = h // serve it with runtime.New(h)
}

// stats is the per-session state of counter.
type stats struct {
	messages int
	bytes    int
}

// counter answers every message with the session's running totals. Its
// per-session state needs no lock: a session's callbacks never overlap.
type counter struct {
	session.NopHandler // OnOpen and OnClose do nothing
}

func (counter) OnMessage(s *session.Session, m session.Message) error {
	st := session.State[stats](s) // created on first use
	st.messages++
	st.bytes += len(m.Data)
	return s.Send(wire.OpText, fmt.Appendf(nil, "%d messages, %d bytes", st.messages, st.bytes))
}

func (counter) OnClose(s *session.Session, err error) {
	st := session.State[stats](s)
	fmt.Printf("session %d: %d messages, ended by %v\n", s.ID(), st.messages, err)
}

// Per-session state with State, in a handler that embeds NopHandler.
func ExampleState() {
	var h session.Handler = counter{}
	_ = h // serve it with runtime.New(h)
}

// A frame encoded once and shared by several sessions: each holder of a
// reference releases it once, and the buffer goes back to its pool after
// the last one.
func ExampleNewFrame() {
	var members []*session.Session // say, the players of a game
	f := session.NewFrame(wire.OpText, []byte(`{"tick":42}`))
	f.Retain(len(members)) // one reference per member, taken over by Enqueue
	for _, s := range members {
		s.Enqueue(f, session.PolicyDropOldest) // a newer snapshot supersedes an older one
	}
	fmt.Println(f.Opcode(), f.Len(), "bytes on the wire")
	f.Release() // the caller's own reference
	// Output: text 13 bytes on the wire
}

// Closing from a callback: the reason goes to the client with the code,
// after everything already sent.
func ExampleSession_Close() {
	_ = session.HandlerFunc(func(s *session.Session, m session.Message) error {
		if strings.TrimSpace(string(m.Data)) == "quit" {
			s.Send(wire.OpText, []byte("bye"))
			s.Close(wire.StatusNormalClosure, "client asked")
			return nil
		}
		// Returning a wire.CloseError closes too, with its code.
		if len(m.Data) > 1024 {
			return wire.CloseError{Code: 4000, Reason: "too chatty"}
		}
		return s.Send(m.Op, m.Data)
	})
}
