package gameserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/wire"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// match loop is stopped, every server shut down, every client closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is how long a test waits for something that should happen: far
// more than a correct run needs on a busy 2-core machine under -race.
const bound = 20 * time.Second

// event is an event from the server.
type event struct {
	Event string
	Data  msgpack.RawMessage
	Err   *codec.Error // of an error event
}

// welcome is the payload of "welcome".
type welcome struct {
	ID       uint32       `msgpack:"id"`
	Match    uint32       `msgpack:"m"`
	TickRate int          `msgpack:"tr"`
	W        int32        `msgpack:"w"`
	H        int32        `msgpack:"h"`
	Scale    int32        `msgpack:"sc"`
	State    sim.Snapshot `msgpack:"s"`
}

// player is a test client speaking MessagePack through codec.Client. Its
// listeners queue the game's events, which next takes in order.
type player struct {
	t      *testing.T
	c      *codec.Client
	events chan event
	seq    uint32
}

func dial(t *testing.T, url string) *player {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := codec.Dial(ctx, url, codec.WithClientCodecs(codec.MsgPack))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if c.Codec() != codec.MsgPack {
		t.Fatalf("speaking %s", c.Codec().Name())
	}
	p := &player{t: t, c: c, events: make(chan event, 4096)} // minutes of snapshots
	for _, name := range []string{"welcome", "snap"} {
		codec.Listen(c, name, func(d msgpack.RawMessage, m codec.Meta) { p.events <- event{Event: m.Event, Data: d} })
	}
	codec.Listen(c, codec.EventError, func(e *codec.Error, _ codec.Meta) { p.events <- event{Event: codec.EventError, Err: e} })
	return p
}

func (p *player) emit(name string, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound) // a hang fails the test
	defer cancel()
	return p.c.Emit(ctx, name, data)
}

func (p *player) input(keys sim.Keys) {
	p.t.Helper()
	p.seq++
	if err := p.emit("input", sim.Input{Seq: p.seq, Keys: keys}); err != nil {
		p.t.Fatal(err)
	}
}

// next takes the next event named name, skipping others, or returns why
// the connection ended.
func (p *player) next(name string) (event, error) {
	p.t.Helper()
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for {
		select {
		case e := <-p.events:
			if e.Event == name {
				return e, nil
			}
		case <-p.c.Done():
			if len(p.events) == 0 { // the reader has ended: nothing more comes
				return event{}, p.c.Err()
			}
		case <-timeout.C:
			p.t.Fatalf("no %q after %v", name, bound)
		}
	}
}

func (p *player) mustNext(name string, v any) event {
	p.t.Helper()
	e, err := p.next(name)
	if err != nil {
		p.t.Fatalf("waiting for %q: %v", name, err)
	}
	if v != nil {
		if err := codec.MsgPack.Decode(e.Data, v); err != nil {
			p.t.Fatalf("%q: %v", name, err)
		}
	}
	return e
}

func (p *player) join(name string) welcome {
	p.t.Helper()
	if err := p.emit("join", map[string]string{"n": name}); err != nil {
		p.t.Fatal(err)
	}
	var w welcome
	p.mustNext("welcome", &w)
	return w
}

// snapUntil reads snapshots until ok accepts one.
func (p *player) snapUntil(what string, ok func(sim.Snapshot) bool) sim.Snapshot {
	p.t.Helper()
	for {
		var s sim.Snapshot
		p.mustNext("snap", &s)
		if ok(s) {
			return s
		}
		if s.Tick > 10000 {
			p.t.Fatalf("no snapshot with %s", what)
		}
	}
}

func find(s sim.Snapshot, id uint32) (sim.Player, bool) {
	for _, pl := range s.Players {
		if pl.ID == id {
			return pl, true
		}
	}
	return sim.Player{}, false
}

// TestJoinMoveLeave walks through a match's life: the first player is
// welcomed, a late joiner gets the full state with both, an input moves
// its player, a departure shows in the next snapshots, and the match ends
// with its last player.
func TestJoinMoveLeave(t *testing.T) {
	game, url := start(t, gameserver.Config{World: sim.Config{Seed: 7}})
	a := dial(t, url)
	wa := a.join("alice")
	if wa.ID == 0 || wa.Match == 0 || wa.TickRate != 30 || wa.Scale != sim.Scale || wa.W <= 0 || wa.H <= 0 {
		t.Fatalf("welcome %+v", wa)
	}
	if pl, ok := find(wa.State, wa.ID); !ok || pl.Name != "alice" {
		t.Fatalf("alice not in her welcome state: %+v", wa.State)
	}

	b := dial(t, url)
	wb := b.join("bob")
	if wb.Match != wa.Match || len(wb.State.Players) != 2 || len(wb.State.Items) == 0 {
		t.Fatalf("late joiner's welcome: match %d (want %d), state %+v", wb.Match, wa.Match, wb.State)
	}
	if pl, ok := find(wb.State, wa.ID); !ok || pl.Name != "alice" {
		t.Fatalf("alice not in bob's welcome state: %+v", wb.State)
	}
	// The snapshot after the welcome is the welcome's next tick.
	var first sim.Snapshot
	b.mustNext("snap", &first)
	if first.Tick != wb.State.Tick+1 {
		t.Fatalf("first snapshot at tick %d after a welcome at %d", first.Tick, wb.State.Tick)
	}

	// Right: bob sees alice move right, with her input acknowledged.
	start, _ := find(first, wa.ID)
	a.input(sim.Right)
	b.snapUntil("alice moved right", func(s sim.Snapshot) bool {
		pl, ok := find(s, wa.ID)
		return ok && pl.Ack == 1 && pl.X > start.X
	})

	// Alice leaves: bob's snapshots lose her.
	a.c.Close()
	b.snapUntil("alice gone", func(s sim.Snapshot) bool { _, ok := find(s, wa.ID); return !ok })

	// Bob goes too: the match ends.
	b.c.Close()
	for deadline := time.Now().Add(bound); len(game.Matches()) != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("matches left: %+v", game.Matches())
		}
	}
}

// TestMatchSize checks that a full match sends newcomers to a new one.
func TestMatchSize(t *testing.T) {
	_, url := start(t, gameserver.Config{MatchSize: 2})
	var ids []uint32
	for range 3 {
		ids = append(ids, dial(t, url).join("").Match)
	}
	if ids[0] != ids[1] || ids[2] == ids[0] {
		t.Fatalf("matches %v, want the first two together and the third apart", ids)
	}
}

// TestBadInput checks that mistakes get error events, not a closed
// connection, while a flood of inputs or an oversized message is closed
// with the right code.
func TestBadInput(t *testing.T) {
	_, url := start(t, gameserver.Config{InputRate: 10, InputBurst: 5})

	p := dial(t, url)
	p.input(sim.Up) // before join
	if e := p.mustNext("error", nil); e.Err == nil || e.Err.Code != "not_joined" {
		t.Fatalf("input before join: %+v", e.Err)
	}
	p.join("x")
	if err := p.emit("join", map[string]string{"n": "again"}); err != nil {
		t.Fatal(err)
	}
	if e := p.mustNext("error", nil); e.Err == nil || e.Err.Code != "joined" {
		t.Fatalf("second join: %+v", e.Err)
	}
	if err := p.emit("input", "not an input"); err != nil {
		t.Fatal(err)
	}
	if e := p.mustNext("error", nil); e.Err == nil || e.Err.Code != codec.CodeBadPayload {
		t.Fatalf("bad payload: %+v", e.Err)
	}

	// Beyond the rate, inputs are dropped; far beyond, the player is cut.
	for range 100 {
		if p.emit("input", sim.Input{Seq: p.seq + 1, Keys: sim.Left}) != nil {
			break
		}
		p.seq++
	}
	_, err := p.next("nothing")
	if code := wire.CodeOf(err); code != wire.StatusPolicyViolation {
		t.Fatalf("flooding: %v (code %d), want 1008", err, code)
	}

	// A message over the limit: 1009.
	q := dial(t, url)
	q.join("y")
	if err := q.emit("join", strings.Repeat("x", 8<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.next("nothing"); wire.CodeOf(err) != wire.StatusMessageTooBig {
		t.Fatalf("oversized: %v, want 1009", err)
	}
}

// TestShutdown checks that players are told the server is going away and
// that the matches stop.
func TestShutdown(t *testing.T) {
	game, url := start(t, gameserver.Config{})
	p := dial(t, url)
	p.join("z")
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- game.Shutdown(ctx) }()
	if _, err := p.next("nothing"); wire.CodeOf(err) != wire.StatusGoingAway {
		t.Fatalf("at shutdown: %v, want 1001", err)
	}
	p.c.CloseNow()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(game.Matches()); n != 0 {
		t.Fatalf("%d matches after shutdown", n)
	}
	if c, _, err := wire.Dial(ctx, url, nil); err == nil {
		c.CloseNow()
		t.Fatal("a session after shutdown")
	} else if he := (*wire.HandshakeError)(nil); !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v, want 503", err)
	}
}

// TestHTTP checks the page, the modules it imports and the figures.
func TestHTTP(t *testing.T) {
	_, url := start(t, gameserver.Config{})
	dial(t, url).join("w")
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/ws")
	for _, tc := range []struct{ path, ctype, body string }{
		{"/", "text/html", "<canvas"},
		{"/shockwave.js", "text/javascript", "export function connect"},
		{"/msgpack.js", "text/javascript", "export function decode"},
		{"/stats", "application/json", `"matches":1`},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.body, strings.Contains(string(b), tc.body))
		}
	}
	var st gameserver.Stats
	resp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Players != 1 || st.Sessions != 1 || st.Ticks == 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}
