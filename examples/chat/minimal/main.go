// Command minimal is the README's smallest chat: every client is in one
// room, and what one sends, all get. A test keeps the README's copy of
// this file the same as this file, and this file working.
package main

import (
	"log"
	"net/http"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// lobby puts every client in one room and forwards what each sends to all.
type lobby struct{ session.NopHandler }

func (lobby) OnOpen(s *session.Session) error {
	runtime.Of(s).Join("lobby", s) // rooms are created on first join, removed when empty
	return nil
}

func (lobby) OnMessage(s *session.Session, m session.Message) error {
	if r, ok := runtime.Of(s).Room("lobby"); ok {
		r.Broadcast(m.Op, m.Data) // encoded once: every member gets the same frame
	}
	return nil
}

func main() {
	rt, err := runtime.New(lobby{})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: rt,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	log.Fatal(srv.ListenAndServe())
}
