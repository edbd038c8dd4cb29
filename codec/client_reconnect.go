package codec

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// reconnect dials until a connection is made, with backoff, after the
// connection ended with cause, and returns it with the client's rooms
// joined again; or nil when the client stops instead (closed, refused, out
// of attempts), having recorded why.
func (c *Client) reconnect(cause error) *link {
	var err error // the last dial's
	for attempt := 0; ; attempt++ {
		if attempt == c.opts.MaxAttempts && attempt > 0 {
			c.halt(fmt.Errorf("codec: no connection after %d attempts, the last failing with %w; the connection had ended with %w", attempt, err, cause))
			return nil
		}
		t := time.NewTimer(c.opts.Backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-c.stop.Done():
			t.Stop()
			c.halt(cause)
			return nil
		}
		var l *link
		if l, err = c.dial(c.stop); err == nil {
			return c.resume(l, cause)
		}
		if c.stop.Err() != nil {
			c.halt(cause)
			return nil
		}
		var he *wire.HandshakeError
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
			c.halt(err) // the same credentials would be refused again
			return nil
		}
	}
}

// halt records that the client stops, for err.
func (c *Client) halt(err error) {
	c.mu.Lock()
	if c.ended == nil {
		c.ended = err
	}
	c.signal()
	c.mu.Unlock()
}

// resume makes l the client's connection: it writes a re-join of every
// room joined with Join, with the room's position, before anything else
// may be sent on l, then calls OnReconnect. It returns nil, l closed,
// when the client was closed meanwhile, cause being why it stopped.
func (c *Client) resume(l *link, cause error) *link {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.halt(cause)
		l.conn.Close(wire.StatusNormalClosure, "")
		return nil
	}
	c.link, c.cd = l, l.codec
	c.mu.Unlock()

	type rejoin struct {
		room string
		m    *member
		req  JoinRequest
	}
	c.jmu.Lock()
	rejoins := make([]rejoin, 0, len(c.joined))
	for room, m := range c.joined {
		rejoins = append(rejoins, rejoin{room, m, JoinRequest{Epoch: m.epoch, Offset: m.offset, Recent: m.cfg.recent}})
	}
	c.jmu.Unlock()
	for _, r := range rejoins {
		if !c.rejoin(l, r.room, r.m, r.req) {
			break // l has ended: the reader will see it
		}
	}

	c.mu.Lock()
	live := c.link == l && !c.closing
	if live {
		c.ready = true
		c.signal()
	}
	c.mu.Unlock()
	if live && c.opts.OnReconnect != nil {
		c.opts.OnReconnect()
	}
	return l
}

// rejoin writes on l the re-join of room, membership m, and reports
// whether it could. The reply goes to OnResume, or a refusal to
// ErrorHandler, the room then forgotten; a re-join that the connection's
// end cuts short is made again on the next one.
func (c *Client) rejoin(l *link, room string, m *member, req JoinRequest) bool {
	var j Joined
	current := false // m is still the room's membership
	p := &pending{event: EventJoin}
	p.decode = func(cd envelopeCodec, data []byte) (err error) {
		if j, err = decodeJoined(cd, room, data); err == nil {
			current = c.reentered(room, m, j)
		}
		return err
	}
	p.after = func(err error) {
		switch {
		case err == nil:
			if current && c.opts.OnResume != nil {
				c.opts.OnResume(j)
			}
		case errors.Is(err, wire.ErrClosed): // disconnected, or closed
		default:
			c.forgetRoom(room, m)
			c.report(EventJoin, fmt.Errorf("codec: re-join of room %q: %w", room, err))
		}
	}
	h := outHeader{event: EventJoin, room: room, id: c.nextID.Add(1), hasID: true}
	if !c.expect(l, h.id, p) {
		return false
	}
	_, err := c.send(c.stop, l, h, req)
	return err == nil
}

// reentered adopts the position of the reply j to a re-join of room, if m
// is still its membership (the room was not left meanwhile), and reports
// whether it is.
func (c *Client) reentered(room string, m *member, j Joined) bool {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	if c.joined[room] != m {
		return false
	}
	m.adopt(j)
	return true
}
