package chatserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/wire"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// server is shut down and every client closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is how long a test waits for something that should happen: far
// more than a correct run needs on a busy 2-core machine under -race.
const bound = 20 * time.Second

// server starts a chat server on loopback, shut down when the test ends.
func server(t *testing.T, cfg chatserver.Config) (*chatserver.Server, string) {
	t.Helper()
	srv, err := chatserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return srv, hs.URL
}

// envelope is an event from the server (docs/protocol.md).
type envelope struct {
	Event  string          `json:"e"`
	Room   string          `json:"r,omitempty"`
	Epoch  uint64          `json:"g,omitempty"`
	Offset uint64          `json:"o,omitempty"`
	Data   json.RawMessage `json:"d,omitempty"`
	Err    *codec.Error    `json:"x,omitempty"`
}

func (e envelope) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// serverEvents are the events of the chat a client keeps.
var serverEvents = []string{
	chatserver.EventMsg, codec.EventPresence, chatserver.EventTyping, chatserver.EventPrivate,
}

// client is a chat client speaking JSON through codec.Client. Its
// listeners put every event into a list; next takes the first one that
// matches, in arrival order, so that a test waits for what it expects and
// events of no interest stay out of the way.
type client struct {
	t    *testing.T
	name string // in the test's messages
	user string // signed in as
	c    *codec.Client

	mu     sync.Mutex
	got    []envelope
	notify chan struct{} // signalled after each arrival
}

// dial signs in as user and connects a client to the chat at url, closed
// when the test ends.
func dial(t *testing.T, url, user string) *client {
	t.Helper()
	return dialAs(t, url, user, user)
}

// dialAs is dial for a client that the test calls name.
func dialAs(t *testing.T, url, user, name string) *client {
	t.Helper()
	return dialCookie(t, url, user, name, login(t, url, user))
}

// dialCookie is dialAs with a sign-in cookie of the test's making, and
// options for the client, if any, after the test's own.
func dialCookie(t *testing.T, url, user, name, cookie string, opts ...codec.ClientOption) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	opts = append([]codec.ClientOption{codec.WithClientCodecs(codec.JSON), codec.WithHeader(cookieHeader(cookie))}, opts...)
	cc, err := codec.Dial(ctx, wsURL(url), opts...)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	c := &client{t: t, name: name, user: user, c: cc, notify: make(chan struct{}, 1)}
	for _, event := range serverEvents {
		codec.Listen(cc, event, func(d json.RawMessage, m codec.Meta) {
			c.add(envelope{Event: m.Event, Room: m.Room, Epoch: m.Epoch, Offset: m.Offset, Data: d})
		})
	}
	codec.Listen(cc, codec.EventError, func(e *codec.Error, m codec.Meta) {
		c.add(envelope{Event: m.Event, Room: m.Room, Err: e})
	})
	t.Cleanup(c.drop)
	return c
}

// add is the listeners': it keeps e.
func (c *client) add(e envelope) {
	c.mu.Lock()
	c.got = append(c.got, e)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// drop closes the connection without a closing handshake, as a lost
// network would, and waits for the listeners to be done.
func (c *client) drop() { c.c.CloseNow() }

// emit sends an event that is not a request.
func (c *client) emit(event, room string, data any) {
	c.t.Helper()
	if err := c.c.Emit(c.t.Context(), event, data, codec.InRoom(room)); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
}

// request sends a request and returns its reply's data, or its error.
func (c *client) request(event, room string, data any) (json.RawMessage, *codec.Error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	d, err := codec.Request[json.RawMessage](ctx, c.c, event, data, codec.InRoom(room))
	var e *codec.Error
	if errors.As(err, &e) {
		return nil, e
	}
	if err != nil {
		c.mu.Lock()
		got := fmt.Sprint(c.got)
		c.mu.Unlock()
		c.t.Fatalf("%s: %v; unclaimed: %s", c.name, err, got)
	}
	return d, nil
}

// ok sends a request that must succeed.
func (c *client) ok(event, room string, data any) json.RawMessage {
	c.t.Helper()
	d, err := c.request(event, room, data)
	if err != nil {
		c.t.Fatalf("%s: %s %s: %v", c.name, event, room, err)
	}
	return d
}

// fails sends a request that must fail with code, and returns the error.
func (c *client) fails(code, event, room string, data any) *codec.Error {
	c.t.Helper()
	_, err := c.request(event, room, data)
	if err == nil || err.Code != code {
		c.t.Fatalf("%s: %s %s: got error %v, want code %s", c.name, event, room, err, code)
	}
	return err
}

// next takes the first event that matches, waiting for it.
func (c *client) next(what string, match func(envelope) bool) envelope {
	c.t.Helper()
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	ended := false
	for {
		c.mu.Lock()
		for i, e := range c.got {
			if match(e) {
				c.got = append(c.got[:i], c.got[i+1:]...)
				c.mu.Unlock()
				return e
			}
		}
		got := fmt.Sprint(c.got)
		c.mu.Unlock()
		if ended {
			c.t.Fatalf("%s: waiting for %s: connection ended: %v; unclaimed: %s", c.name, what, c.c.Err(), got)
		}
		select {
		case <-c.notify:
		case <-c.c.Done():
			ended = true // nothing more comes: one last look
		case <-timeout.C:
			c.t.Fatalf("%s: no %s after %v; unclaimed: %s", c.name, what, bound, got)
		}
	}
}

// event takes the next event called name in room (any room if "") and
// decodes its data into a T.
func event[T any](c *client, name, room string) T {
	c.t.Helper()
	e := c.next(fmt.Sprintf("%s event in %q", name, room), func(e envelope) bool {
		return e.Event == name && (room == "" || e.Room == room)
	})
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		c.t.Fatalf("%s: %s: %v", c.name, e, err)
	}
	return v
}

// errorEvent takes the next "error" event.
func (c *client) errorEvent() *codec.Error {
	c.t.Helper()
	e := c.next("an error event", func(e envelope) bool { return e.Event == codec.EventError })
	return e.Err
}

// has reports whether an unclaimed message matches, without waiting.
func (c *client) has(match func(envelope) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.got {
		if match(e) {
			return true
		}
	}
	return false
}

// join joins room, asking for the n latest messages it keeps, and returns
// the server's reply, whose state names the client by the name it signed
// in with.
func (c *client) join(room string, n int) codec.Joined {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	j, err := c.c.Join(ctx, room, codec.Recent(n))
	if err != nil {
		c.t.Fatalf("%s: join %s: %v", c.name, room, err)
	}
	c.checkState(j)
	return j
}

// rejoin joins room again on this new connection, from the position p
// another connection of the client's last had there, as a client that
// comes back does, and returns the reply.
func (c *client) rejoin(room string, p position, n int) codec.JoinReply {
	c.t.Helper()
	return c.joinWith(room, codec.JoinRequest{Epoch: p.epoch, Offset: p.offset, Recent: n})
}

// joinWith joins room with payload as the room.join's, and returns the
// reply, whose state must name the client by the name it signed in with.
func (c *client) joinWith(room string, payload any) codec.JoinReply {
	c.t.Helper()
	d := c.ok(codec.EventJoin, room, payload)
	var reply struct {
		codec.JoinReply
		State chatserver.State `json:"state"`
	}
	if err := json.Unmarshal(d, &reply); err != nil {
		c.t.Fatalf("%s: the reply to join %s: %v", c.name, room, err)
	}
	if reply.State.Nick != c.user {
		c.t.Fatalf("%s: state %+v in %s, want the nick %q", c.name, reply.State, room, c.user)
	}
	return reply.JoinReply
}

// checkState checks the chat's state in a join's reply: the signed name,
// and the default MaxLength unless the test changed it.
func (c *client) checkState(j codec.Joined) chatserver.State {
	c.t.Helper()
	var st chatserver.State
	if err := j.State(&st); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	if st.Nick != c.user || st.MaxLength == 0 {
		c.t.Fatalf("%s: state of %q: %+v, want the nick %q", c.name, j.Room, st, c.user)
	}
	return st
}

// position is where a client stands in a room's history.
type position struct{ epoch, offset uint64 }

// position returns the position of the last event the client got in
// room, a room it joined with join.
func (c *client) position(room string) position {
	c.t.Helper()
	g, o, ok := c.c.Position(room)
	if !ok {
		c.t.Fatalf("%s: no position in %s", c.name, room)
	}
	return position{g, o}
}

// present returns the sorted keys of a join's Present.
func present(p map[string]any) []string {
	return slices.Sorted(maps.Keys(p))
}

// login signs in as name with POST /login and returns the cookie's value.
func login(t *testing.T, url, name string) string {
	t.Helper()
	resp, err := http.PostForm(url+"/login", neturl.Values{"name": {name}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("sign in as %q: %s: %s", name, resp.Status, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == chatserver.CookieName {
			return c.Value
		}
	}
	t.Fatalf("sign in as %q: no %s cookie", name, chatserver.CookieName)
	return ""
}

// cookieHeader returns the header of an upgrade request that carries the
// sign-in cookie value v.
func cookieHeader(v string) http.Header {
	return http.Header{"Cookie": {chatserver.CookieName + "=" + v}}
}

// wsURL returns the chat's WebSocket URL for its HTTP URL.
func wsURL(url string) string { return "ws" + strings.TrimPrefix(url, "http") + "/ws" }

// closed waits for the server to close the connection and returns the
// close status.
func (c *client) closed() wire.StatusCode {
	c.t.Helper()
	select {
	case <-c.c.Done():
	case <-time.After(bound):
		c.t.Fatalf("%s: still open after %v", c.name, bound)
	}
	var ce wire.CloseError
	if !errors.As(c.c.Err(), &ce) {
		c.t.Fatalf("%s: ended with %v, not a close frame", c.name, c.c.Err())
	}
	return ce.Code
}

// network is a client's network, which a test takes down and brings back:
// down, the client's connections are cut, as a failed network cuts them,
// and no new one is made until it is up again.
type network struct {
	mu    sync.Mutex
	up    chan struct{} // closed while the network is up
	conns []net.Conn
}

func newNetwork() *network {
	n := &network{up: make(chan struct{})}
	close(n.up)
	return n
}

// dial is the client's wire.DialOptions.NetDialContext: it waits for the
// network to be up.
func (n *network) dial(ctx context.Context, netw, addr string) (net.Conn, error) {
	for {
		n.mu.Lock()
		up := n.up
		n.mu.Unlock()
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c, err := (&net.Dialer{}).DialContext(ctx, netw, addr)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		if up == n.up { // still up
			n.conns = append(n.conns, c)
			n.mu.Unlock()
			return c, nil
		}
		n.mu.Unlock()
		c.Close()
	}
}

// down cuts the connections and holds new ones back.
func (n *network) down() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.up = make(chan struct{})
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

// restore lets connections be made again.
func (n *network) restore() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.up)
}
