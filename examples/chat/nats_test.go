package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
)

// TestSeveralNodes runs the chat as two nodes, a and b, on one NATS
// server with JetStream, wired as main wires them with -nats (joinBus):
// a sign-in on one node holds on the other; alice on a and bob on b, in
// one room, each get what the other says, with the same positions, in
// JSON for alice and MessagePack for bob; each sees the other present;
// a private message to someone on the other node is refused with
// "elsewhere"; and carol, who joins later on b, gets the room's messages
// from the stream. Then the nodes shut down as main does.
func TestSeveralNodes(t *testing.T) {
	ns := startNATS(t, true)
	key := make([]byte, 32)
	rand.Read(key)
	a := startNode(t, ns.ClientURL(), "a", key)
	b := startNode(t, ns.ClientURL(), "b", key)
	const room = "nats"

	// Signed in on a, admitted by b: the nodes share the key.
	cookie := loginCookie(t, a, "alice")
	alice := dialNode(t, b, "alice", cookie, codec.JSON) // on b for now
	alice.c.CloseNow()
	alice = dialNode(t, a, "alice", cookie, codec.JSON)
	bob := dialNode(t, b, "bob", loginCookie(t, b, "bob"), codec.MsgPack)

	alice.join(room, 0)
	bob.join(room, 0)

	alice.say(room, "hello from a")
	m1 := alice.next("hello from a")
	if got := bob.next("hello from a"); got.at != m1.at || m1.at.Offset == 0 || m1.at.Epoch == 0 {
		t.Errorf("alice's message: at %v on a, %v on b; want the same position, not zero", m1.at, got.at)
	}
	bob.say(room, "hello from b")
	m2 := bob.next("hello from b")
	if got := alice.next("hello from b"); got.at != m2.at || m2.at.Epoch != m1.at.Epoch || m2.at.Offset <= m1.at.Offset {
		t.Errorf("bob's message: at %v on b, %v on a; want the same position, after %v", m2.at, got.at, m1.at)
	}

	// Presence is the room's, whatever node its users are on. A node
	// learns of the others' users as their entries come (bob's join may
	// be answered before b has heard of alice, who joined on a just
	// before), so each waits to see the other.
	bob.waitPresent(room, "alice")
	alice.waitPresent(room, "bob")

	// Private messages reach the users of the same node.
	err := alice.request(room, chatserver.EventPrivate, chatserver.PrivateRequest{To: "bob", Text: "psst"})
	var ce *codec.Error
	if !errors.As(err, &ce) || ce.Code != chatserver.CodeElsewhere {
		t.Errorf("a private message to bob, on the other node: %v, want %s", err, chatserver.CodeElsewhere)
	}

	// Carol joins later, on b: the room's last messages come from the
	// stream, with their positions.
	carol := dialNode(t, b, "carol", loginCookie(t, b, "carol"), codec.JSON)
	j := carol.join(room, 100)
	if j.Replayed != 2 {
		t.Errorf("carol's join: %d messages replayed, want 2", j.Replayed)
	}
	if got := carol.next("hello from a"); got.at != m1.at {
		t.Errorf("carol got alice's message at %v, want %v", got.at, m1.at)
	}
	if got := carol.next("hello from b"); got.at != m2.at {
		t.Errorf("carol got bob's message at %v, want %v", got.at, m2.at)
	}

	// The node's name is in the join's state, for the page.
	var st chatserver.State
	if err := j.State(&st); err != nil || st.Node != "b" {
		t.Errorf("carol's join: state %+v (%v), want node b", st, err)
	}
}

// TestResumeOnOtherNode: alice's connection goes through a load balancer
// to node a; it drops, bob says three things on b meanwhile, and the load
// balancer sends alice's client to b when it comes back: b recovers her
// room from the position she had on a, and she gets the three messages
// once each, in order; bob never sees her leave.
func TestResumeOnOtherNode(t *testing.T) {
	ns := startNATS(t, true)
	key := make([]byte, 32)
	rand.Read(key)
	a := startNode(t, ns.ClientURL(), "a", key)
	b := startNode(t, ns.ClientURL(), "b", key)
	lb := startBalancer(t, a)
	const room = "moving"

	resumed := make(chan codec.Joined, 1)
	lost := make(chan struct{}, 1)
	alice := dialNode(t, lb, "alice", loginCookie(t, a, "alice"), codec.JSON,
		codec.WithReconnect(true),
		codec.WithBackoff(codec.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2}),
		codec.WithOnResume(func(j codec.Joined) { resumed <- j }),
		codec.WithOnDisconnect(func(error) { lost <- struct{}{} }))
	bob := dialNode(t, b, "bob", loginCookie(t, b, "bob"), codec.MsgPack)
	alice.join(room, 0)
	bob.join(room, 0)
	bob.say(room, "before")
	alice.next("before")

	lb.route(nil) // the drop: no node for a while
	select {
	case <-lost:
	case <-time.After(bound):
		t.Fatal("alice's client did not see its connection drop")
	}
	missed := []string{"one", "two", "three"}
	for _, text := range missed {
		bob.say(room, text)
	}
	lb.route(b)
	select {
	case j := <-resumed:
		if !j.Recovered || j.Replayed != len(missed) {
			t.Errorf("alice's re-join on b: recovered %v, %d replayed; want recovered, %d", j.Recovered, j.Replayed, len(missed))
		}
	case <-time.After(bound):
		t.Fatal("alice's client did not join again")
	}
	for _, text := range missed {
		alice.next(text)
	}
	bob.say(room, "after")
	alice.next("after")
	alice.mu.Lock()
	if len(alice.msgs) != 0 {
		t.Errorf("alice got more: %v", alice.msgs)
	}
	alice.mu.Unlock()
	bob.mu.Lock()
	if i := slices.IndexFunc(bob.presence, func(p codec.PresenceEvent) bool { return p.Key == "alice" && !p.Present }); i >= 0 {
		t.Errorf("bob saw alice leave: %v", bob.presence)
	}
	bob.mu.Unlock()
}

// TestNoJetStream: -nats with a NATS server without JetStream fails at
// start, saying to start it with -js.
func TestNoJetStream(t *testing.T) {
	ns := startNATS(t, false)
	cfg := chatserver.Config{}
	_, err := joinBus(&cfg, ns.ClientURL(), "", t.Logf)
	if err == nil || !strings.Contains(err.Error(), "-js") {
		t.Fatalf("joinBus: %v, want an error that says -js", err)
	}
}

// startNATS starts a NATS server on a random loopback port, with
// JetStream in a directory of the test's if js, and stops it when the
// test ends, after the nodes (cleanups run last first).
func startNATS(t *testing.T, js bool) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	if js {
		opts.JetStream, opts.StoreDir = true, t.TempDir()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(bound) {
		t.Fatal("the NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// node is one chat process of a test: the chat with its Broker, behind an
// httptest server.
type node struct {
	name string
	url  string
	lb   *balancer // when the node is a load balancer in front of the others
}

// startNode starts a chat node called name on the NATS server at natsURL,
// as main does with -nats, and shuts it down as main does when the test
// ends: the chat, then the Broker and the connection.
func startNode(t *testing.T, natsURL, name string, key []byte) *node {
	t.Helper()
	cfg := chatserver.Config{Key: key, Rate: -1}
	bs, err := joinBus(&cfg, natsURL, name, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := chatserver.New(cfg)
	if err != nil {
		bs.shutdown(context.Background())
		t.Fatal(err)
	}
	hs := httptest.NewServer(chat)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		for _, f := range []func(context.Context) error{chat.Shutdown, bs.shutdown} {
			if err := f(ctx); err != nil {
				t.Errorf("node %s: shutdown: %v", name, err)
			}
		}
		hs.Close()
	})
	return &node{name: name, url: hs.URL}
}

// balancer is a load balancer in front of the nodes of a test: it
// forwards each TCP connection to the node it routes to, or closes it
// when it routes to none.
type balancer struct {
	ln    net.Listener
	mu    sync.Mutex
	to    *node      // mu guards to and conns
	conns []net.Conn // the connections through it, both sides
	wg    sync.WaitGroup
}

// startBalancer starts a balancer on loopback that routes to n; it stops
// when the test ends. It is a node to dial, named "lb".
func startBalancer(t *testing.T, n *node) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &balancer{ln: ln, to: n}
	lb.wg.Add(1)
	go lb.serve()
	t.Cleanup(func() {
		ln.Close()
		lb.route(nil)
		lb.wg.Wait()
	})
	return &node{name: "lb", url: "http://" + ln.Addr().String(), lb: lb}
}

func (lb *balancer) serve() {
	defer lb.wg.Done()
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		lb.mu.Lock()
		to := lb.to
		lb.mu.Unlock()
		if to == nil {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", strings.TrimPrefix(to.url, "http://"))
		if err != nil {
			c.Close()
			continue
		}
		lb.mu.Lock()
		lb.conns = append(lb.conns, c, s)
		lb.mu.Unlock()
		lb.wg.Add(2)
		go func() { defer lb.wg.Done(); io.Copy(s, c); s.Close() }()
		go func() { defer lb.wg.Done(); io.Copy(c, s); c.Close() }()
	}
}

// route sends new connections to n, or closes them when n is nil, and
// cuts the connections made so far, as a node's loss would.
func (n *node) route(to *node) { n.lb.route(to) }

func (lb *balancer) route(n *node) {
	lb.mu.Lock()
	lb.to = n
	conns := lb.conns
	lb.conns = nil
	lb.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// loginCookie signs in as name on n (POST /login) and returns the cookie.
func loginCookie(t *testing.T, n *node, name string) string {
	t.Helper()
	resp, err := http.PostForm(n.url+"/login", url.Values{"name": {name}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := cookieValue(resp)
	if resp.StatusCode != http.StatusOK || cookie == "" {
		t.Fatalf("sign in as %s on %s: %s, cookie %q", name, n.name, resp.Status, cookie)
	}
	return cookie
}

// member is a client of a test, connected to one node, that keeps the
// chat messages and presence events it gets.
type member struct {
	t    *testing.T
	name string
	c    *codec.Client

	mu       sync.Mutex
	msgs     []said
	present  map[string]bool       // by room presence events
	presence []codec.PresenceEvent // every one
	arrivals chan struct{}         // signalled after each event
}

// said is a chat message as a member got it.
type said struct {
	chatserver.Message
	at position
}

type position struct{ Epoch, Offset uint64 }

func (p position) String() string { return fmt.Sprintf("%d:%d", p.Epoch, p.Offset) }

// dialNode connects name to n with the sign-in cookie, in codec cd, with
// opts if any, and closes the client when the test ends.
func dialNode(t *testing.T, n *node, name, cookie string, cd codec.Codec, opts ...codec.ClientOption) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := codec.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/ws", append([]codec.ClientOption{
		codec.WithClientCodecs(cd),
		codec.WithHeader(http.Header{"Cookie": {chatserver.CookieName + "=" + cookie}}),
	}, opts...)...)
	if err != nil {
		t.Fatalf("%s on %s: %v", name, n.name, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	m := &member{t: t, name: name, c: c, present: map[string]bool{}, arrivals: make(chan struct{}, 1)}
	codec.Listen(c, chatserver.EventMsg, func(msg chatserver.Message, meta codec.Meta) {
		m.mu.Lock()
		m.msgs = append(m.msgs, said{msg, position{meta.Epoch, meta.Offset}})
		m.mu.Unlock()
		m.signal()
	})
	codec.Listen(c, codec.EventPresence, func(p codec.PresenceEvent, _ codec.Meta) {
		m.mu.Lock()
		m.present[p.Key] = p.Present
		m.presence = append(m.presence, p)
		m.mu.Unlock()
		m.signal()
	})
	return m
}

func (m *member) signal() {
	select {
	case m.arrivals <- struct{}{}:
	default:
	}
}

// join joins room, asking for its recent messages, and returns the reply.
func (m *member) join(room string, recent int) codec.Joined {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	j, err := m.c.Join(ctx, room, codec.Recent(recent))
	if err != nil {
		m.t.Fatalf("%s: join %s: %v", m.name, room, err)
	}
	m.mu.Lock()
	for nick := range j.Present { // who was there: no event says so
		m.present[nick] = true
	}
	m.mu.Unlock()
	return j
}

// request sends a request in room and returns its error.
func (m *member) request(room, event string, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	_, err := codec.Request[struct{}](ctx, m.c, event, data, codec.InRoom(room))
	return err
}

// say says text in room.
func (m *member) say(room, text string) {
	m.t.Helper()
	if err := m.request(room, chatserver.EventSend, chatserver.SendRequest{Text: text}); err != nil {
		m.t.Fatalf("%s: say %q: %v", m.name, text, err)
	}
}

// next waits for the message text and returns it, with those before it
// dropped.
func (m *member) next(text string) said {
	m.t.Helper()
	var got said
	m.wait(fmt.Sprintf("the message %q", text), func() bool {
		i := slices.IndexFunc(m.msgs, func(s said) bool { return s.Text == text })
		if i < 0 {
			return false
		}
		got, m.msgs = m.msgs[i], m.msgs[i+1:]
		return true
	})
	return got
}

// waitPresent waits for a presence event that says nick is in the room.
func (m *member) waitPresent(room, nick string) {
	m.t.Helper()
	m.wait(nick+" present in "+room, func() bool { return m.present[nick] })
}

// wait waits until cond, called with m.mu held, holds.
func (m *member) wait(what string, cond func() bool) {
	m.t.Helper()
	deadline := time.After(bound)
	for {
		m.mu.Lock()
		ok := cond()
		m.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-m.arrivals:
		case <-deadline:
			m.t.Fatalf("%s: waited %v for %s", m.name, bound, what)
		}
	}
}
