package chatserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
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

// envelope is a message from the server (docs/protocol.md).
type envelope struct {
	Event string          `json:"e"`
	Room  string          `json:"r"`
	ID    *uint64         `json:"i"`
	Data  json.RawMessage `json:"d"`
	Err   *codec.Error    `json:"x"`
}

func (e envelope) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// client is a chat client speaking the JSON envelope over the project's
// own wire.Dial. A goroutine reads every message into a list; next takes
// the first one that matches, in arrival order, so that a test waits for
// what it expects and events of no interest stay out of the way.
type client struct {
	t    *testing.T
	name string // in the test's messages
	user string // signed in as
	conn *wire.Conn

	mu     sync.Mutex
	got    []envelope
	err    error         // why reading stopped, once it has
	notify chan struct{} // signalled after each arrival
	done   chan struct{} // closed when the reader has stopped
	nextID uint64
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

// dialCookie is dialAs with a sign-in cookie of the test's making.
func dialCookie(t *testing.T, url, user, name, cookie string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	conn, _, err := wire.Dial(ctx, wsURL(url), &wire.DialOptions{
		Subprotocols: []string{"shockwave.json"},
		Header:       cookieHeader(cookie),
	})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	if conn.Subprotocol() != "shockwave.json" {
		t.Fatalf("%s: subprotocol %q", name, conn.Subprotocol())
	}
	c := &client{t: t, name: name, user: user, conn: conn, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.drop)
	return c
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, p, err := c.conn.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			var e envelope
			if jerr := json.Unmarshal(p, &e); jerr != nil {
				c.err = fmt.Errorf("not an envelope: %s: %v", p, jerr)
			} else {
				c.got = append(c.got, e)
			}
		}
		stop := c.err != nil
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if stop {
			return
		}
	}
}

// drop closes the connection without a closing handshake, as a lost
// network would, and waits for the reader to stop.
func (c *client) drop() {
	c.conn.CloseNow()
	<-c.done
}

// send writes an envelope; a non-zero id makes it a request.
func (c *client) send(event, room string, id uint64, data any) {
	c.t.Helper()
	m := map[string]any{"e": event}
	if room != "" {
		m["r"] = room
	}
	if id != 0 {
		m["i"] = id
	}
	if data != nil {
		m["d"] = data
	}
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.conn.WriteMessage(wire.OpText, b); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, event, err)
	}
}

// emit sends an event that is not a request.
func (c *client) emit(event, room string, data any) {
	c.t.Helper()
	c.send(event, room, 0, data)
}

// request sends a request and returns its reply's data, or its error.
func (c *client) request(event, room string, data any) (json.RawMessage, *codec.Error) {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	c.send(event, room, id, data)
	r := c.next(fmt.Sprintf("the reply to %s #%d", event, id), func(e envelope) bool {
		return e.Event == "" && e.ID != nil && *e.ID == id
	})
	return r.Data, r.Err
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

// next takes the first message that matches, waiting for it.
func (c *client) next(what string, match func(envelope) bool) envelope {
	c.t.Helper()
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		for i, e := range c.got {
			if match(e) {
				c.got = append(c.got[:i], c.got[i+1:]...)
				c.mu.Unlock()
				return e
			}
		}
		err, got := c.err, fmt.Sprint(c.got)
		c.mu.Unlock()
		if err != nil {
			c.t.Fatalf("%s: waiting for %s: connection ended: %v; unclaimed: %s", c.name, what, err, got)
		}
		select {
		case <-c.notify:
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

// join joins room and returns the state the server sent first, which
// names the client by the name it signed in with.
func (c *client) join(room string) chatserver.State {
	c.t.Helper()
	c.ok(chatserver.EventJoin, room, nil)
	st := event[chatserver.State](c, chatserver.EventState, "")
	if st.Room != room || st.Nick != c.user {
		c.t.Fatalf("%s: state of %q as %q, want %q as %q", c.name, st.Room, st.Nick, room, c.user)
	}
	return st
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
	case <-c.done:
	case <-time.After(bound):
		c.t.Fatalf("%s: still open after %v", c.name, bound)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce wire.CloseError
	if !errors.As(c.err, &ce) {
		c.t.Fatalf("%s: ended with %v, not a close frame", c.name, c.err)
	}
	return ce.Code
}
