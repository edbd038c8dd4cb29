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

// ChatMessage is what the chat examples send. MessagePack reads the json
// tags too.
type ChatMessage struct {
	From string `json:"from"`
	Text string `json:"text"`
}

func ExampleCodec() {
	msg := ChatMessage{From: "ada", Text: "hi <3"}
	for _, c := range []codec.Codec{codec.JSON, codec.MsgPack} {
		buf, err := c.Append(nil, msg) // appends to a buffer you may reuse
		if err != nil {
			panic(err)
		}
		var back ChatMessage
		if err := c.Decode(buf, &back); err != nil {
			panic(err)
		}
		fmt.Printf("%s: %d bytes in %v messages, %+v\n", c.Name(), len(buf), c.Opcode(), back)
	}
	// Output:
	// json: 29 bytes in text messages, {From:ada Text:hi <3}
	// msgpack: 21 bytes in binary messages, {From:ada Text:hi <3}
}

// A chat server: clients join rooms with the built-in room.join, send
// chat.send events that go to everyone in the room, and list rooms with a
// request.
func ExampleRouter() {
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
	if err != nil {
		panic(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.On(r, "chat.send", func(s *session.Session, ev codec.Event[ChatMessage]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: "not_joined", Message: "join " + ev.Room + " first"}
		}
		// Encoded once per codec; in the sender's trace when tracing is on.
		_, err := r.PublishContext(ev.Ctx, room, "chat.msg", ev.Data)
		return err
	})
	codec.Handle(r, "rooms.count", func(s *session.Session, _ struct{}) (int, error) {
		n := 0
		for range rt.Rooms() {
			n++
		}
		return n, nil
	})

	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())

	// A client, with the JSON envelope written by hand.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	c, _, err := wire.Dial(ctx, url, &wire.DialOptions{Subprotocols: []string{"shockwave.json"}})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	for _, msg := range []string{
		`{"e":"room.join","r":"lobby","i":1}`,
		`{"e":"chat.send","r":"lobby","d":{"from":"ada","text":"hello"}}`,
		`{"e":"rooms.count","i":2}`,
		`{"e":"chat.send","r":"nowhere","i":3,"d":{}}`,
		`{"e":"nope"}`,
	} {
		if err := c.WriteMessage(wire.OpText, []byte(msg)); err != nil {
			panic(err)
		}
		_, p, err := c.ReadMessage()
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", p)
	}
	// Output:
	// {"i":1,"d":{"recovered":false}}
	// {"e":"chat.msg","r":"lobby","d":{"from":"ada","text":"hello"}}
	// {"i":2,"d":1}
	// {"i":3,"x":{"code":"not_joined","message":"join nowhere first"}}
	// {"e":"error","x":{"code":"unknown_event","message":"unknown event \"nope\""}}
}

func ExampleHandle() {
	r := codec.NewRouter(codec.MsgPack)
	type sum struct{ A, B int }
	codec.Handle(r, "math.add", func(s *session.Session, q sum) (int, error) {
		if q.A < 0 || q.B < 0 {
			return 0, &codec.Error{Code: "negative", Message: "positive numbers only"}
		}
		return q.A + q.B, nil
	})
	codec.On(r, "log", func(s *session.Session, line string) error {
		if line == "" {
			return errors.New("empty line") // the client sees code "internal"
		}
		return nil
	})
	fmt.Println(r.Subprotocols())
	// Output: [shockwave.msgpack shockwave.json]
}

// Typing indicators go to everyone in the room but the typist. Passing the
// event's Ctx keeps the publish, and each member's delivery, in the trace
// of the client's event when the runtime traces; when it does not, it
// costs what PublishExcept does.
func ExampleRouter_PublishExceptContext() {
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
	if err != nil {
		panic(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.On(r, "typing", func(s *session.Session, ev codec.Event[struct{}]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: "not_joined", Message: "join " + ev.Room + " first"}
		}
		_, err := r.PublishExceptContext(ev.Ctx, room, s, "typing", map[string]uint64{"session": s.ID()})
		return err
	})
}
