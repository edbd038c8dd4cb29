package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// posMsg is a message whose frames say its position: "offset epoch text",
// with the variant's name in front of variant 1 ("v1:").
type posMsg struct {
	text     string
	variants int
}

func (m *posMsg) Variants() int { return m.variants }

func (m *posMsg) Variant(s *session.Session) int {
	if s.Subprotocol() == "v1" {
		return 1
	}
	return 0
}

func (m *posMsg) Encode(pos runtime.Position, v int) (*session.Frame, error) {
	p := strconv.FormatUint(pos.Offset, 10) + " " + strconv.FormatUint(pos.Epoch, 10) + " " + m.text
	if v == 1 {
		p = "v1:" + p
	}
	return session.NewFrame(wire.OpText, []byte(p)), nil
}

// historyRig is a runtime whose rooms keep 8 messages, a client's
// session joining through Resume with the position the client asks for
// in its first message ("resume ROOM EPOCH OFFSET [RECENT]", answered
// "recovered BOOL replayed N at OFFSET" before the replay, or "join
// ROOM"), and a publish command ("pub ROOM TEXT") answered with the
// position.
type historyRig struct {
	rt  *runtime.Runtime
	url string
}

func newHistoryRig(t *testing.T, h runtime.History, opts ...runtime.Option) *historyRig {
	t.Helper()
	var ref rtRef
	rig := &historyRig{}
	rig.rt, rig.url = start(t, handler{
		msg: func(s *session.Session, m session.Message) error {
			f := strings.Fields(string(m.Data))
			switch f[0] {
			case "resume":
				epoch, _ := strconv.ParseUint(f[2], 10, 64)
				offset, _ := strconv.ParseUint(f[3], 10, 64)
				v := 0
				if s.Subprotocol() == "v1" {
					v = 1
				}
				recent := 0
				if len(f) > 4 {
					recent, _ = strconv.Atoi(f[4])
				}
				// The reply goes first, then the replay.
				res, err := ref.get().Resume(f[1], s, runtime.Rejoin{
					Since: runtime.Position{Epoch: epoch, Offset: offset}, Recent: recent, Variant: v,
					Reply: func(res runtime.Resumption) error {
						return s.Send(wire.OpText, fmt.Appendf(nil, "recovered %v replayed %d at %d", res.Recovered, res.Replayed, res.At.Offset))
					},
				})
				if err != nil {
					return err
				}
				// At is where the session stands before its replay: no
				// later than the room now (publishes may race), in the
				// same epoch.
				if r, _ := ref.get().Room(f[1]); res.Room != r || res.At.Epoch != r.Position().Epoch || res.At.Offset > r.Position().Offset {
					return fmt.Errorf("Resume at %+v in %p, the room at %+v, %p", res.At, res.Room, r.Position(), r)
				}
				return nil
			case "join":
				ref.get().Join(f[1], s)
				return s.Send(wire.OpText, []byte("joined"))
			case "leave":
				ref.get().Leave(f[1], s)
				return s.Send(wire.OpText, []byte("left"))
			}
			return nil
		},
	}, append([]runtime.Option{runtime.WithRoomHistory(func(string) runtime.History { return h }),
		runtime.WithSubprotocols("v0", "v1"), runtime.WithMessageRate(-1, 0)}, opts...)...)
	ref.p.Store(rig.rt)
	return rig
}

// publish publishes text to room from the test, as a handler or a game
// loop would, and returns its position.
func (rig *historyRig) publish(t *testing.T, room, text string) runtime.Position {
	t.Helper()
	r, ok := rig.rt.Room(room)
	if !ok {
		t.Fatalf("no room %q", room)
	}
	pos, _, err := r.Publish(t.Context(), nil, &posMsg{text: text, variants: 2})
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// ask sends a command and returns the reply.
func ask(t *testing.T, c *wire.Conn, cmd string) string {
	t.Helper()
	if err := c.WriteMessage(wire.OpText, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	return next(t, c)
}

func next(t *testing.T, c *wire.Conn) string {
	t.Helper()
	c.NetConn().SetReadDeadline(time.Now().Add(bound))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

// TestHistoryPositions: a room that keeps history numbers its messages
// from 1 in an epoch of its own; one that keeps none gives no positions.
func TestHistoryPositions(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8})
	c := dial(t, rig.url)
	ask(t, c, "join lobby")
	var epoch uint64
	for i := uint64(1); i <= 3; i++ {
		pos := rig.publish(t, "lobby", "m"+strconv.FormatUint(i, 10))
		if pos.Offset != i || pos.Epoch == 0 || epoch != 0 && pos.Epoch != epoch {
			t.Fatalf("message %d at %+v (epoch before %d)", i, pos, epoch)
		}
		epoch = pos.Epoch
		if got, want := next(t, c), fmt.Sprintf("%d %d m%d", i, epoch, i); got != want {
			t.Fatalf("client got %q, want %q", got, want)
		}
	}
	if r, _ := rig.rt.Room("lobby"); r.Position() != (runtime.Position{Epoch: epoch, Offset: 3}) {
		t.Errorf("Position() = %+v", r.Position())
	}

	plain := newHistoryRig(t, runtime.History{})
	c = dial(t, plain.url)
	ask(t, c, "join lobby")
	if pos := plain.publish(t, "lobby", "x"); pos != (runtime.Position{}) {
		t.Errorf("a room without history gave position %+v", pos)
	}
	if got := next(t, c); got != "0 0 x" {
		t.Errorf("client got %q", got)
	}
}

// TestResume: a session that comes back with the last position it saw
// is told it recovered, then gets exactly what it missed, in its variant,
// then the live messages; with a position the room cannot serve (trimmed,
// another epoch, ahead, zero) it is told it did not, and gets the latest
// messages it asked for instead, or none.
func TestResume(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8})
	keeper := dial(t, rig.url) // keeps the room, and its epoch, alive
	ask(t, keeper, "join lobby")
	var last runtime.Position
	for i := range 10 {
		last = rig.publish(t, "lobby", "m"+strconv.Itoa(i+1))
		next(t, keeper)
	}
	behind := func(n uint64) func(runtime.Position) runtime.Position {
		return func(l runtime.Position) runtime.Position { l.Offset -= n; return l }
	}
	for _, tc := range []struct {
		name, proto string
		since       func(last runtime.Position) runtime.Position
		recent      int
		recovered   bool
		replayed    uint64 // the last ones
	}{
		{"missed 3", "v0", behind(3), 0, true, 3},
		{"missed 3, other variant", "v1", behind(3), 0, true, 3},
		{"missed 3, recent ignored", "v0", behind(3), 5, true, 3},
		{"missed 8, all kept", "v0", behind(8), 0, true, 8},
		{"missed nothing", "v0", behind(0), 0, true, 0},
		{"trimmed", "v0", behind(9), 0, false, 0},
		{"trimmed, 5 recent", "v1", behind(9), 5, false, 5},
		{"trimmed, more recent than kept", "v0", behind(9), 1000, false, 8},
		{"another epoch", "v0", func(l runtime.Position) runtime.Position { l.Epoch++; l.Offset--; return l }, 0, false, 0},
		{"ahead of the room", "v0", func(l runtime.Position) runtime.Position { l.Offset++; return l }, 0, false, 0},
		{"the largest position a client can send", "v0", func(runtime.Position) runtime.Position {
			return runtime.Position{Epoch: math.MaxUint64, Offset: math.MaxUint64}
		}, math.MaxInt, false, 8},
		{"the largest offset in the room's epoch", "v0", func(l runtime.Position) runtime.Position { l.Offset = math.MaxUint64; return l }, 0, false, 0},
		{"first join", "v0", func(runtime.Position) runtime.Position { return runtime.Position{} }, 0, false, 0},
		{"first join, 2 recent", "v1", func(runtime.Position) runtime.Position { return runtime.Position{} }, 2, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialCtx(rig.url, &wire.DialOptions{Subprotocols: []string{tc.proto}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			since := tc.since(last)
			prefix := ""
			if tc.proto == "v1" {
				prefix = "v1:"
			}
			if err := c.WriteMessage(wire.OpText, fmt.Appendf(nil, "resume lobby %d %d %d", since.Epoch, since.Offset, tc.recent)); err != nil {
				t.Fatal(err)
			}
			// The reply, then the replay, in order: offsets at+1 to
			// last.
			at := last.Offset - tc.replayed
			if w := fmt.Sprintf("recovered %v replayed %d at %d", tc.recovered, tc.replayed, at); next(t, c) != w {
				t.Fatalf("reply: want %q", w)
			}
			for want := at + 1; want <= last.Offset; want++ {
				if got, w := next(t, c), fmt.Sprintf("%s%d %d ", prefix, want, last.Epoch); !strings.HasPrefix(got, w) {
					t.Fatalf("replay: got %q, want %q...", got, w)
				}
			}
			last = rig.publish(t, "lobby", "live")
			next(t, keeper)
			if got, w := next(t, c), fmt.Sprintf("%s%d %d live", prefix, last.Offset, last.Epoch); got != w {
				t.Fatalf("live: got %q, want %q", got, w)
			}
		})
	}
}

// TestResumeRacingPublishes: while a publisher publishes as fast as it
// can, sessions resume from positions behind; each gets every message
// after its position exactly once, in order, after its reply, with no gap
// between the replay and the live stream.
func TestResumeRacingPublishes(t *testing.T) { eachTransport(t, testResumeRacingPublishes) }

func testResumeRacingPublishes(t *testing.T) {
	// The history holds every message published: a session that connects
	// late (under -race, with the other packages' tests) still recovers.
	rig := newHistoryRig(t, runtime.History{Size: 512})
	keeper := dial(t, rig.url)
	ask(t, keeper, "join lobby")
	go func() { // the keeper's mailbox must not fill: read and drop
		for {
			if _, _, err := keeper.ReadMessage(); err != nil {
				return
			}
		}
	}()
	const total = 400
	r, _ := rig.rt.Room("lobby")
	first := rig.publish(t, "lobby", "x")
	var published atomic.Uint64
	published.Store(1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range total {
			if _, _, err := r.Publish(t.Context(), nil, &posMsg{text: "x", variants: 1}); err != nil {
				t.Error(err)
				return
			}
			published.Add(1)
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for i := range 8 {
		// Resume from a little behind what has been published by now.
		since := runtime.Position{Epoch: first.Epoch, Offset: max(1, published.Load()-uint64(i%5))}
		c := dial(t, rig.url)
		if err := c.WriteMessage(wire.OpText, []byte(fmt.Sprintf("resume lobby %d %d", since.Epoch, since.Offset))); err != nil {
			t.Fatal(err)
		}
		want := since.Offset + 1
		recovered := false
		for want <= total+1 {
			got := next(t, c)
			if strings.HasPrefix(got, "recovered ") {
				if !strings.HasPrefix(got, "recovered true ") || recovered {
					t.Fatalf("resume %d from %+v: %s", i, since, got)
				}
				recovered = true
				continue
			}
			off, _ := strconv.ParseUint(strings.Fields(got)[0], 10, 64)
			if off != want || !recovered {
				t.Fatalf("resume %d from offset %d: got offset %d, want %d (recovered yet: %v)", i, since.Offset, off, want, recovered)
			}
			want++
		}
		c.CloseNow()
	}
	wg.Wait()
}

// TestHistoryEpoch: a room removed (its last member gone) and made again
// has a new epoch: a position of the old one does not recover.
func TestHistoryEpoch(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8})
	c := dial(t, rig.url)
	ask(t, c, "join lobby")
	old := rig.publish(t, "lobby", "a")
	next(t, c)
	ask(t, c, "leave lobby")
	eventually(t, bound, "the room to go", func() bool { _, ok := rig.rt.Room("lobby"); return !ok })
	// Its history goes with it: the frames it kept are out of the
	// outbound memory budget.
	eventually(t, bound, "the history's frames to be let go", func() bool { _, out := rig.rt.MemoryInUse(); return out == 0 })
	if got := ask(t, c, fmt.Sprintf("resume lobby %d %d", old.Epoch, 0)); !strings.HasPrefix(got, "recovered false ") {
		t.Fatalf("resume in the new room: %q", got)
	}
	if pos := rig.publish(t, "lobby", "b"); pos.Epoch == old.Epoch || pos.Offset != 1 {
		t.Errorf("new room's first position %+v, old epoch %d", pos, old.Epoch)
	}
}

// TestHistoryTTL: messages older than the TTL are trimmed.
func TestHistoryTTL(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8, TTL: 20 * time.Millisecond})
	keeper := dial(t, rig.url)
	ask(t, keeper, "join lobby")
	p := rig.publish(t, "lobby", "a")
	rig.publish(t, "lobby", "b")
	time.Sleep(60 * time.Millisecond) // past the TTL: not a timing assertion, a wait
	c := dial(t, rig.url)
	if got := ask(t, c, fmt.Sprintf("resume lobby %d %d", p.Epoch, p.Offset)); !strings.HasPrefix(got, "recovered false ") {
		t.Fatalf("resume past the TTL: %q", got)
	}
}

// TestHistoryLinger: with Linger, a room that empties keeps its history
// for members who come back within it, who recover; past it, the room
// goes, and its frames with it; Shutdown takes a lingering room at once.
func TestHistoryLinger(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8, Linger: time.Hour})
	c := dial(t, rig.url)
	ask(t, c, "join lobby")
	rig.publish(t, "lobby", "a")
	p := rig.publish(t, "lobby", "b")
	next(t, c)
	next(t, c)
	c.CloseNow() // the only member drops
	eventually(t, bound, "the room to be empty", func() bool { r, ok := rig.rt.Room("lobby"); return ok && r.Len() == 0 })
	back := dial(t, rig.url)
	if got := ask(t, back, fmt.Sprintf("resume lobby %d %d", p.Epoch, p.Offset-1)); got != "recovered true replayed 1 at 1" {
		t.Fatalf("resume after the linger began: %q", got)
	}
	if got := next(t, back); !strings.HasPrefix(got, "2 ") {
		t.Fatalf("then %q, want the replay of offset 2", got)
	}

	short := newHistoryRig(t, runtime.History{Size: 8, Linger: 10 * time.Millisecond})
	c = dial(t, short.url)
	ask(t, c, "join lobby")
	short.publish(t, "lobby", "a")
	next(t, c)
	ask(t, c, "leave lobby")
	eventually(t, bound, "the room to go after its linger", func() bool { _, ok := short.rt.Room("lobby"); return !ok })
	eventually(t, bound, "its frames to be let go", func() bool { _, out := short.rt.MemoryInUse(); return out == 0 })

	long := newHistoryRig(t, runtime.History{Size: 8, Linger: time.Hour})
	c = dial(t, long.url)
	ask(t, c, "join lobby")
	long.publish(t, "lobby", "a")
	next(t, c)
	ask(t, c, "leave lobby")
	if err := long.rt.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := long.rt.Room("lobby"); ok {
		t.Error("a lingering room outlived Shutdown")
	}
	if _, out := long.rt.MemoryInUse(); out != 0 {
		t.Errorf("%d bytes of frames kept after Shutdown", out)
	}
}

// TestRoomHooks: OnJoin and OnLeave are told of every change of a room's
// members, once each: a second join of a member is none, and a session's
// end is a leave of each of its rooms; Has says who is in.
func TestRoomHooks(t *testing.T) { eachTransport(t, testRoomHooks) }

func testRoomHooks(t *testing.T) {
	var mu sync.Mutex
	var got []string
	note := func(what string) func(r *runtime.Room, s *session.Session) {
		return func(r *runtime.Room, s *session.Session) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, what+" "+r.Name()+" "+strconv.FormatBool(r.Has(s)))
		}
	}
	rt, url := start(t, roomCommands, runtime.WithRoomHooks(note("join"), note("leave")))
	c := dial(t, url)
	for _, cmd := range []string{"join a", "join a", "join b", "leave a", "leave a", "join a"} {
		ask(t, c, cmd)
	}
	c.Close(wire.StatusNormalClosure, "")
	eventually(t, bound, "the session's end", func() bool { return rt.Len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	want := []string{"join a true", "join b true", "leave a false", "join a true"}
	if len(got) != 6 || !slices.Equal(got[:4], want) {
		t.Fatalf("hooks told %q, want %q then the leaves of a and b", got, want)
	}
	if rest := got[4:]; !slices.Contains(rest, "leave a false") || !slices.Contains(rest, "leave b false") {
		t.Errorf("at the session's end: %q", rest)
	}
}

// roomCommands joins and leaves the rooms its client asks for ("join
// ROOM", "leave ROOM"), answering "ok".
var roomCommands = handler{msg: func(s *session.Session, m session.Message) error {
	f := strings.Fields(string(m.Data))
	switch f[0] {
	case "join":
		runtime.Of(s).Join(f[1], s)
	case "leave":
		runtime.Of(s).Leave(f[1], s)
	}
	return s.Send(wire.OpText, []byte("ok"))
}}

// TestResumeReplyFails: when Rejoin.Reply fails, Resume returns its error,
// nothing is queued, and the session is not left in the room; the
// presence it entered departs again.
func TestResumeReplyFails(t *testing.T) {
	var ref rtRef
	var changes atomic.Int32
	errReply := errors.New("no reply")
	rt, url := start(t, handler{
		msg: func(s *session.Session, m session.Message) error {
			res, err := ref.get().Resume("lobby", s, runtime.Rejoin{Recent: 8, Reply: func(runtime.Resumption) error { return errReply }})
			r, _ := ref.get().Room("lobby")
			return s.Send(wire.OpText, fmt.Appendf(nil, "%v %v %v", errors.Is(err, errReply), res.Room == nil, r != nil && r.Has(s)))
		},
	}, runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 8} }),
		runtime.WithRoomPresence(func(string) *runtime.Presence {
			return &runtime.Presence{
				Who:     func(*session.Session) (string, any) { return "u", nil },
				Changed: func(*runtime.Room, string, any, bool) { changes.Add(1) },
			}
		}))
	ref.p.Store(rt)
	c := dial(t, url)
	if got := ask(t, c, "join"); got != "true true false" {
		t.Fatalf("failed reply: %q, want the error, no room, not a member", got)
	}
	eventually(t, bound, "the arrival and the departure", func() bool { return changes.Load() == 2 })
}

// TestSignal: a signal reaches the members live, without a position, and
// is not kept: a session that resumes gets the publishes it missed, not
// the signals.
func TestSignal(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8})
	keeper := dial(t, rig.url)
	ask(t, keeper, "join lobby")
	first := rig.publish(t, "lobby", "a")
	next(t, keeper)
	r, _ := rig.rt.Room("lobby")
	if n, err := r.Signal(t.Context(), nil, &posMsg{text: "typing", variants: 2}); n != 1 || err != nil {
		t.Fatalf("signal: %d, %v", n, err)
	}
	if got := next(t, keeper); got != "0 0 typing" {
		t.Fatalf("the signal reached the member as %q", got)
	}
	second := rig.publish(t, "lobby", "b")
	next(t, keeper)
	c := dial(t, rig.url)
	if got := ask(t, c, fmt.Sprintf("resume lobby %d %d", first.Epoch, first.Offset)); got != "recovered true replayed 1 at 1" {
		t.Fatalf("resume: %q", got)
	}
	if got, want := next(t, c), fmt.Sprintf("%d %d b", second.Offset, second.Epoch); got != want {
		t.Fatalf("replay: %q, want %q alone", got, want)
	}
	if _, err := r.Signal(t.Context(), nil, &posMsg{text: "x", variants: 0}); !errors.Is(err, runtime.ErrVariants) {
		t.Errorf("a signal of no variant: %v", err)
	}
}
