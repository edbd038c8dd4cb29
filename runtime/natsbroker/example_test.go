package natsbroker_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/session"
)

// One node of a chat whose rooms are spread over several: run one per
// machine behind the load balancer, all with the same NATS URL. A
// message said on one node reaches the room's members on all of them, in
// their codec. (tests/cluster runs three nodes on an in-process NATS
// server.)
func Example() {
	nc, err := nats.Connect("nats://127.0.0.1:4222",
		nats.Name("chat node"),
		nats.NoEcho(),          // this node's messages need not come back
		nats.MaxReconnects(-1), // through any outage
		nats.ReconnectWait(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	b, err := natsbroker.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	r := codec.NewRouter(codec.JSON) // and MessagePack, by subprotocol
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...), runtime.WithBroker(b))
	if err != nil {
		log.Fatal(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.On(r, "chat.send", func(s *session.Session, ev codec.Event[string]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: "not_joined", Message: "join " + ev.Room + " first"}
		}
		_, err := r.PublishContext(ev.Ctx, room, "chat.msg", ev.Data) // to every node
		return err
	})

	srv := &http.Server{Addr: ":8080", Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go srv.ListenAndServe()

	// At the end: no more sessions, no more rooms, then the bus.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.Shutdown(ctx)
	srv.Shutdown(ctx)
	b.Close()
	nc.Drain()
}
