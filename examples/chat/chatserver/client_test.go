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

// envelope is an event from the server (docs/protocol.md).
type envelope struct {
	Event string          `json:"e"`
	Room  string          `json:"r,omitempty"`
	Data  json.RawMessage `json:"d,omitempty"`
	Err   *codec.Error    `json:"x,omitempty"`
}

func (e envelope) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// serverEvents are the events of the chat a client keeps.
var serverEvents = []string{
	chatserver.EventState, chatserver.EventMsg, chatserver.EventPresence,
	chatserver.EventTyping, chatserver.EventPrivate,
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

// dialCookie is dialAs with a sign-in cookie of the test's making.
func dialCookie(t *testing.T, url, user, name, cookie string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cc, err := codec.Dial(ctx, wsURL(url), codec.WithClientCodecs(codec.JSON), codec.WithHeader(cookieHeader(cookie)))
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	c := &client{t: t, name: name, user: user, c: cc, notify: make(chan struct{}, 1)}
	for _, event := range serverEvents {
		codec.Listen(cc, event, func(d json.RawMessage, m codec.Meta) {
			c.add(envelope{Event: m.Event, Room: m.Room, Data: d})
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
