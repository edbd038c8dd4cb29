package runtime_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// An echo server: the Runtime is an http.Handler, mounted like any other,
// and shut down in order when the process is interrupted.
func Example() {
	rt, err := runtime.New(session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	}))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/echo", rt)
	srv := &http.Server{Addr: "127.0.0.1:9001"}
	go func() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		<-ctx.Done()
		// Close every session with 1001, after what is queued, then stop
		// the HTTP server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
		srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// New with options, serving an echo endpoint, and a client of it.
func ExampleNew() {
	rt, err := runtime.New(
		session.HandlerFunc(func(s *session.Session, m session.Message) error {
			return s.Send(m.Op, m.Data)
		}),
		runtime.WithMaxMessageSize(64<<10),
		runtime.WithMailbox(128, 1<<20, session.PolicyDropOldest),
		runtime.WithHeartbeat(20*time.Second, 10*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/echo", rt)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer rt.Shutdown(context.Background())

	c, _, err := wire.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.WriteMessage(wire.OpText, []byte("hello"))
	_, p, err := c.ReadMessage()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("echo: %s\n", p)
	c.Close(wire.StatusNormalClosure, "")
	// Output: echo: hello
}

// chat is a chat room: every session joins the lobby, and every message is
// broadcast to the other members.
type chat struct {
	session.NopHandler
	rt *runtime.Runtime
}

func (h *chat) OnOpen(s *session.Session) error {
	h.rt.Join("lobby", s)
	return s.Send(wire.OpText, []byte("welcome"))
}

func (h *chat) OnMessage(s *session.Session, m session.Message) error {
	if r, ok := h.rt.Room("lobby"); ok {
		// Encoded once, shared by every member's mailbox.
		f := session.NewFrame(m.Op, m.Data)
		r.BroadcastFrame(f, s)
		f.Release()
	}
	return nil
}

// A chat room: sessions join a room when they open and leave it when they
// end; a message is encoded once and shared by every member.
func ExampleRuntime_Join() {
	h := &chat{}
	rt, err := runtime.New(h)
	if err != nil {
		log.Fatal(err)
	}
	h.rt = rt
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	join := func(name string) *wire.Conn {
		c, _, err := wire.Dial(context.Background(), url, nil)
		if err != nil {
			log.Fatal(err)
		}
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "welcome" {
			log.Fatal(name, " was not welcome: ", err)
		}
		return c
	}
	alice, bob := join("alice"), join("bob")
	defer alice.CloseNow()
	defer bob.CloseNow()

	alice.WriteMessage(wire.OpText, []byte("hi, bob"))
	_, p, err := bob.ReadMessage()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob got %q\n", p)
	// Output: bob got "hi, bob"
}

// Shutdown in a server's life: refuse new upgrades, close the sessions
// with 1001 after what is queued for them, wait for them, bounded by ctx.
func ExampleRuntime_Shutdown() {
	rt, err := runtime.New(session.NopHandler{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		log.Printf("some sessions were cut short: %v", err)
	}
	_, _, err = wire.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	fmt.Println(err)
	// Output: websocket: handshake failed (HTTP 503): server answered 503 Service Unavailable: shockwave: shutting down
}

// A server of sessions only serves its listener itself: on Linux the event
// loop accepts the connections and answers their handshakes, without
// net/http. Shutdown closes the listener, and Serve returns.
func ExampleRuntime_Serve() {
	rt, err := runtime.New(session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	}))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ln) }()

	c, _, err := wire.Dial(context.Background(), "ws://"+ln.Addr().String()+"/any/path", nil)
	if err != nil {
		log.Fatal(err)
	}
	c.Write(context.Background(), wire.OpText, []byte("hello"))
	_, p, _ := c.Read(context.Background())
	fmt.Println(string(p))
	c.CloseNow()

	rt.Shutdown(context.Background())
	fmt.Println(<-served)
	// Output:
	// hello
	// http: Server closed
}

// Settings from a configuration file: start from the defaults, change
// fields, pass them whole. New checks them as it checks the With options,
// and names what is out of range.
func ExampleDefaultOptions() {
	o := runtime.DefaultOptions()
	fmt.Println("max message:", o.MaxMessageSize, "ping:", o.PingInterval, "rate:", o.MessageRate)

	o.MaxMessageSize = 64 << 10
	o.PingInterval = 0 // a mistake: negative disables pings
	_, err := runtime.New(session.NopHandler{}, runtime.WithOptions(o))
	fmt.Println(err)

	o.PingInterval = 20 * time.Second
	rt, err := runtime.New(session.NopHandler{}, runtime.WithOptions(o), runtime.WithIdleTimeout(time.Minute))
	fmt.Println(err)
	rt.Shutdown(context.Background())
	// Output:
	// max message: 1048576 ping: 30s rate: 1000
	// runtime: Options.PingInterval must be positive, or negative to disable pings
	// <nil>
}

// Limits for a small public server: fewer sessions than the default, and
// fewer rooms per session; the fields left zero keep their defaults, and
// a negative one turns its limit off. Here one session fills the server:
// the next upgrade is refused before the hijack, with 503 and when to try
// again, and counted.
func ExampleWithLimits() {
	rt, err := runtime.New(session.NopHandler{}, runtime.WithLimits(runtime.Limits{
		MaxConnections:     1,
		MaxRoomsPerSession: 8,
		UpgradeRate:        -1, // the proxy in front limits the rate
	}))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	c, _, err := wire.Dial(context.Background(), url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	_, resp, err := wire.Dial(context.Background(), url, nil)
	fmt.Println(err)
	fmt.Println("Retry-After:", resp.Header.Get("Retry-After"))
	fmt.Println("refused:", rt.Refused().Connections.Load())
	// Output:
	// websocket: handshake failed (HTTP 503): server answered 503 Service Unavailable: shockwave: too many connections
	// Retry-After: 5
	// refused: 1
}

// A client over its message rate is slowed, not refused: its session reads
// no more of it until it is within the rate again, so every message
// arrives, later.
func ExampleWithMessageRate() {
	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
	rt, err := runtime.New(echo,
		runtime.WithMessageRate(50, 5), // 50 a second, 5 at once
		runtime.WithMessageTimeout(30*time.Second),
		runtime.WithMemoryBudget(64<<20, 128<<20))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	c, _, err := wire.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 10 {
		c.WriteMessage(wire.OpText, []byte(strconv.Itoa(i)))
	}
	var got []string
	for range 10 {
		_, p, _ := c.ReadMessage()
		got = append(got, string(p))
	}
	fmt.Println(strings.Join(got, " "))
	fmt.Println("slowed:", rt.Counters().Throttled.Load() > 0)
	// Output:
	// 0 1 2 3 4 5 6 7 8 9
	// slowed: true
}

// An AdmitFunc decides who may connect, before the upgrade, and with what
// identity: every callback of the session reads it without a lock.
func ExampleWithAdmit() {
	type user struct{ Name string }
	admit := func(r *http.Request) (runtime.Admission, error) {
		name := r.URL.Query().Get("token") // a real server checks a signed token or cookie
		if name == "" {
			return runtime.Admission{}, &runtime.Refusal{Status: http.StatusUnauthorized, Message: "sign in first"}
		}
		return runtime.Admission{Identity: user{name}, Expires: time.Now().Add(time.Hour)}, nil
	}
	greet := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		u, _ := session.Identity[user](s)
		return s.Send(wire.OpText, []byte("hello, "+u.Name))
	})
	rt, err := runtime.New(greet, runtime.WithAdmit(admit))
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	_, _, err = wire.Dial(context.Background(), url, nil)
	fmt.Println(err)
	c, _, err := wire.Dial(context.Background(), url+"?token=ada", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.WriteMessage(wire.OpText, []byte("hi"))
	_, p, _ := c.ReadMessage()
	fmt.Println(string(p))
	// Output:
	// websocket: handshake failed (HTTP 401): server answered 401 Unauthorized: sign in first
	// hello, ada
}
