package codec_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// A Go client of a chat much like ExampleRouter's: it listens for the room's
// messages, joins a room, says something there and is refused in a room
// it is not in.
func ExampleDial() {
	// The server.
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
	if err != nil {
		panic(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	// chat.send answers with how many members the message reached.
	codec.Handle(r, "chat.send", func(s *session.Session, ev codec.Event[ChatMessage]) (int, error) {
		if room, ok := rt.Room(ev.Room); ok {
			return r.PublishContext(ev.Ctx, room, "chat.msg", ev.Data)
		}
		return 0, &codec.Error{Code: "not_joined", Message: "join " + ev.Room + " first"}
	})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())

	// The client, in MessagePack. Listeners run on the client's reader
	// goroutine, in the order the messages arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c, err := codec.Dial(ctx, url, codec.WithClientCodecs(codec.MsgPack))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	codec.Listen(c, "chat.msg", func(m ChatMessage, meta codec.Meta) {
		fmt.Printf("in %s, %s says %q\n", meta.Room, m.From, m.Text)
	})
	codec.Listen(c, codec.EventError, func(e *codec.Error, _ codec.Meta) {
		fmt.Println("error event:", e.Code)
	})

	joined, err := c.Join(ctx, "lobby")
	if err != nil {
		panic(err)
	}
	fmt.Println("joined", joined.Room, "recovered:", joined.Recovered)
	// A request returns after the listeners of everything that arrived
	// before its reply: the message is printed first.
	n, err := codec.Request[int](ctx, c, "chat.send", ChatMessage{From: "ada", Text: "hello"}, codec.InRoom("lobby"))
	fmt.Println("reached", n, err)
	_, err = codec.Request[int](ctx, c, "chat.send", ChatMessage{From: "ada", Text: "anyone?"}, codec.InRoom("attic"))
	var e *codec.Error
	if errors.As(err, &e) {
		fmt.Println("refused:", e.Code, "-", e.Message)
	}
	// An event gets no reply; the server's error comes as an error event.
	if err := c.Emit(ctx, "chat.shout", ChatMessage{Text: "HEY"}); err != nil {
		panic(err)
	}
	if err := c.Leave(ctx, "lobby"); err != nil {
		panic(err)
	}
	fmt.Println("speaking", c.Codec().Name())
	// Output:
	// joined lobby recovered: false
	// in lobby, ada says "hello"
	// reached 1 <nil>
	// refused: not_joined - join attic first
	// error event: unknown_event
	// speaking msgpack
}

// A Go client that reconnects: when the server closes its connection
// (1012, service restart, here), it dials again and joins its room again
// from the last message it got there, and the server sends what it
// missed meanwhile, after the re-join's reply.
func ExampleWithReconnect() {
	// The server: its rooms keep their last 100 messages, and an empty
	// room lingers a minute, for its members to come back.
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...),
		runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 100, Linger: time.Minute} }))
	if err != nil {
		panic(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.On(r, "restart", func(*session.Session, struct{}) error {
		return wire.CloseError{Code: wire.StatusServiceRestart, Reason: "restarting"}
	})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	publish := func(text string) {
		room, _ := rt.Room("lobby")
		r.Publish(room, "chat.msg", ChatMessage{From: "server", Text: text})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c, err := codec.Dial(ctx, url,
		codec.WithReconnect(true),
		codec.WithBackoff(codec.Backoff{Min: 10 * time.Millisecond, Max: time.Second, Factor: 2, Jitter: 0.5}),
		codec.WithOnDisconnect(func(err error) {
			fmt.Println("lost:", wire.CloseStatus(err))
			// The room moves on while the client is away (the server
			// runs in this process).
			publish("two")
			publish("three")
		}),
		codec.WithOnResume(func(j codec.Joined) {
			// Not recovered: messages may be missing; resynchronise.
			fmt.Printf("resumed %s: recovered %v, %d missed\n", j.Room, j.Recovered, j.Replayed)
		}))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	done := make(chan struct{})
	codec.Listen(c, "chat.msg", func(m ChatMessage, meta codec.Meta) {
		fmt.Printf("%s (offset %d)\n", m.Text, meta.Offset)
		if m.Text == "three" {
			close(done)
		}
	})

	if _, err := c.Join(ctx, "lobby"); err != nil {
		panic(err)
	}
	publish("one")
	if err := c.Emit(ctx, "restart", nil); err != nil {
		panic(err)
	}
	<-done
	_, offset, _ := c.Position("lobby")
	fmt.Println("at offset", offset)
	// Output:
	// one (offset 1)
	// lost: 1012 (service restart)
	// resumed lobby: recovered true, 2 missed
	// two (offset 2)
	// three (offset 3)
	// at offset 3
}
