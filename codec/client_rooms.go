package codec

import (
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Joined is the server's answer to a Client's Join, or to a re-join after
// a reconnection (ClientOptions.OnResume): a JoinReply, with the room's
// name.
type Joined struct {
	// Room is the room joined.
	Room string
	// Recovered says that the messages the client missed since the
	// position it gave follow the reply, and nothing is lost. False — a
	// first join, a room that keeps no history, a position the room no
	// longer serves (another epoch, messages trimmed) — and the client
	// should resynchronise: drop what it showed of the room and take
	// State and the Replayed messages that follow.
	Recovered bool
	// Replayed is how many of the room's messages follow the reply: the
	// missed ones when Recovered, else the latest ones Recent asked for.
	Replayed int
	// Epoch and Offset are the room's position just before the first
	// message that follows, in a room that keeps history; Offset is 0
	// when the room has published nothing yet, and both are when it
	// keeps no history.
	Epoch, Offset uint64
	// Present lists who is in the room, key to info, when it tracks
	// presence (runtime.WithRoomPresence), the client included: up to
	// Rooms.MaxPresent users.
	Present map[string]any
	// Count is how many users are present, whether Present lists them
	// or not.
	Count int

	state rawValue      // the reply's "state", nil when it has none
	codec envelopeCodec // what state is encoded in
}

// State decodes the room's state that the server joined to the reply
// (Rooms.State), as of the reply's position, into v, a pointer, as
// Request decodes a result. A reply without a state leaves v untouched
// and returns nil, as a JSON null would.
func (j Joined) State(v any) error {
	if j.state == nil {
		return nil
	}
	if err := j.codec.decodeParsed(j.state, v); err != nil {
		return fmt.Errorf("codec: the state of room %q does not decode into a %T: %w", j.Room, v, err)
	}
	return nil
}

// A JoinOption changes the request of one Join, and of the room's
// re-joins after reconnections.
type JoinOption func(*joinConfig)

// joinConfig is what JoinOptions set.
type joinConfig struct {
	recent int // JoinRequest.Recent
}

// Recent asks for up to n of the room's latest messages when the client
// cannot recover (a first join included), sent after the reply: a chat's
// last lines (JoinRequest.Recent). The room's history bounds it; zero or
// less asks for none, which is the default.
func Recent(n int) JoinOption { return func(jc *joinConfig) { jc.recent = n } }

// joinReply is a JoinReply as the client decodes it: its state kept
// encoded, for Joined.State. (Not JoinReply embedded: MessagePack's
// decoder would complain, on every decode, of the two fields called
// state.)
type joinReply struct {
	Recovered bool           `json:"recovered" msgpack:"recovered"`
	Replayed  int            `json:"replayed" msgpack:"replayed"`
	Epoch     uint64         `json:"g" msgpack:"g"`
	Offset    uint64         `json:"o" msgpack:"o"`
	Present   map[string]any `json:"present" msgpack:"present"`
	Count     int            `json:"count" msgpack:"count"`
	State     rawValue       `json:"state" msgpack:"state"`
}

// decodeJoined decodes the payload of a join's reply.
func decodeJoined(cd envelopeCodec, room string, data []byte) (Joined, error) {
	var r joinReply
	if err := cd.decodeParsed(data, &r); err != nil {
		return Joined{Room: room}, err
	}
	return Joined{
		Room: room, Recovered: r.Recovered, Replayed: r.Replayed,
		Epoch: r.Epoch, Offset: r.Offset, Present: r.Present, Count: r.Count,
		state: r.State, codec: cd,
	}, nil
}

// rawValue is a value kept in its encoding, JSON or MessagePack: nil for
// a null.
type rawValue []byte

// UnmarshalJSON keeps a copy of b.
func (r *rawValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append(rawValue(nil), b...)
	return nil
}

// DecodeMsgpack keeps the next value's encoding.
func (r *rawValue) DecodeMsgpack(d *msgpack.Decoder) error {
	b, err := d.DecodeRaw() // a new slice
	if err != nil {
		return err
	}
	if len(b) == 1 && b[0] == 0xc0 { // nil
		b = nil
	}
	*r = rawValue(b)
	return nil
}

var (
	_ json.Unmarshaler      = (*rawValue)(nil)
	_ msgpack.CustomDecoder = (*rawValue)(nil)
)

// member is a room the client joined with Join: what it re-joins after a
// reconnection, and from where.
type member struct {
	cfg           joinConfig
	epoch, offset uint64 // the last position got in the room; none when offset is 0
}

// Position returns the position of the last event the client got in
// room, a room it joined with Join (Meta.Epoch and Meta.Offset; in a
// listener, those of the event being handled), or the position the
// server's reply to the join gave, if later (offset 0: the room had
// published nothing). ok is false when the client has none: a room not
// joined, or left, or one that keeps no history. It is the position a
// re-join resumes from after a reconnection.
func (c *Client) Position(room string) (epoch, offset uint64, ok bool) {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	if m := c.joined[room]; m != nil && m.epoch != 0 {
		return m.epoch, m.offset, true
	}
	return 0, 0, false
}

// entered records room as joined with jc, on the reader, as the reply j
// to its join arrives, before the messages that follow it, and adopts the
// reply's position.
func (c *Client) entered(room string, jc joinConfig, j Joined) *member {
	c.jmu.Lock()
	defer c.jmu.Unlock()
	m := c.joined[room]
	if m == nil {
		m = &member{}
		c.joined[room] = m
	}
	m.cfg = jc
	m.adopt(j)
	return m
}

// adopt takes the position of a join's reply (just before the messages
// that follow it; offset 0 in a room that has published nothing yet),
// unless the client has already seen a later event of that epoch, so that
// it can resume even before the room publishes again. c.jmu is held.
func (m *member) adopt(j Joined) {
	if j.Epoch != 0 && (m.epoch != j.Epoch || m.offset < j.Offset) {
		m.epoch, m.offset = j.Epoch, j.Offset
	}
}

// advance records the position of an event got in room, if joined.
func (c *Client) advance(room []byte, epoch, offset uint64) {
	c.jmu.Lock()
	if m := c.joined[string(room)]; m != nil {
		m.epoch, m.offset = epoch, offset
	}
	c.jmu.Unlock()
}

// forgetRoom forgets room: no position, no re-join. With m, only if the
// room is still that membership (not left and joined again since).
func (c *Client) forgetRoom(room string, m *member) {
	c.jmu.Lock()
	if m == nil || c.joined[room] == m {
		delete(c.joined, room)
	}
	c.jmu.Unlock()
}
