package session

import (
	"context"

	"github.com/shockwave-go/shockwave/wire"
)

// Message is a message received from the client.
type Message struct {
	Op   wire.Opcode // wire.OpText or wire.OpBinary
	Data []byte      // valid only during the callback: copy it to keep it; do not change it after sending it (see Session.Send)
	ctx  context.Context
}

// Context returns the message's context: when tracing is on, it carries the
// span of this message, so work done for it (and a broadcast it causes)
// shows as its children. It is never nil.
func (m Message) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}

// WithContext returns m with its context set to ctx.
func (m Message) WithContext(ctx context.Context) Message {
	m.ctx = ctx
	return m
}

// Handler is what a server implements to serve sessions.
//
// The callbacks of one session are never called concurrently, and always in
// the order OnOpen, OnMessage (once per message, in arrival order), OnClose,
// so per-session state needs no locks. They run on the goroutine that reads
// the connection: while one runs, that session reads nothing more, and its
// outbound frames wait until it returns (then they are written in one batch,
// on the same goroutine). Callbacks of different sessions run in parallel.
// A callback should not block for long; hand long work to another goroutine
// and Send the result.
//
// Returning an error from OnOpen or OnMessage closes the session: a
// wire.CloseError is sent as it is (use codes 4000-4999 for the
// application's reasons); any other error closes with 1011 (internal error).
// A panic in a callback is recovered and closes the session with 1011; the
// process and other sessions carry on.
type Handler interface {
	// OnOpen is called once the session is registered and before any
	// message is read.
	OnOpen(s *Session) error
	// OnMessage is called for every text or binary message.
	OnMessage(s *Session, m Message) error
	// OnClose is called once, when the session has ended. err says why: a
	// wire.CloseError when the client closed (or, when the server closed
	// with Close, the code it sent), a *wire.ProtocolError when the client
	// broke the protocol, ErrSlowConsumer, ErrTimeout, the error a callback
	// returned, or a transport error. When the client did not answer the
	// server's close frame in time, err also matches ErrTimeout
	// (errors.Is). The session is already closed; Send fails.
	OnClose(s *Session, err error)
}

// NopHandler implements Handler doing nothing. Embed it to implement only
// the callbacks you need.
type NopHandler struct{}

// OnOpen does nothing.
func (NopHandler) OnOpen(*Session) error { return nil }

// OnMessage does nothing.
func (NopHandler) OnMessage(*Session, Message) error { return nil }

// OnClose does nothing.
func (NopHandler) OnClose(*Session, error) {}

// HandlerFunc adapts a function to a Handler that handles messages only.
type HandlerFunc func(s *Session, m Message) error

// OnOpen does nothing.
func (HandlerFunc) OnOpen(*Session) error { return nil }

// OnMessage calls f(s, m).
func (f HandlerFunc) OnMessage(s *Session, m Message) error { return f(s, m) }

// OnClose does nothing.
func (HandlerFunc) OnClose(*Session, error) {}
