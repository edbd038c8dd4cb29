package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
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

// memLog is a runtime.Log in memory, shared by the nodes of a test
// (logNode): a JetStream stream in miniature. One sequence numbers the
// messages of every room, so that a room's offsets skip those of the
// others; it keeps the latest keep messages of each room. Every
// subscription has a queue and a goroutine that delivers from it, in the
// log's order, so that a publish returns before its message comes back.
// Its knobs make the failures a real log has: a message lost to a node
// (dropNext), delivered twice (dupNext, redeliver, dupBackfill), a log
// lost and made again (newEpoch), messages that expire (expire), a Follow
// that fails (failFollow) or is slow (slowFollow), deliveries held back
// (hold).
type memLog struct {
	keep int // the most messages kept of each room
	// markOldest puts Follow's mark at the oldest message kept, which is
	// then not delivered, as Log's doc says; else the mark is just before
	// it and every message kept is delivered, as runtime/natsbroker does.
	markOldest bool

	dupBackfill atomic.Bool // a new follower's live queue starts with the last message its backfill delivered
	failFollow  atomic.Bool
	failAppend  atomic.Bool

	mu      sync.Mutex
	epoch   uint64
	seq     uint64 // the last sequence given, across rooms
	rooms   map[string]*logRoom
	drops   map[logKey]int // messages of a room not to deliver to a node
	dups    map[string]int // messages of a room to deliver twice
	held    chan struct{}  // non-nil while deliveries are held back
	slow    chan struct{}  // non-nil: Follow waits for it to close
	appends int            // the messages appended, signals not counted
}

// logEpoch is a memLog's first epoch.
const logEpoch = 41

type logKey struct {
	room string
	node *logNode
}

// logRoom is what memLog keeps of a room.
type logRoom struct {
	kept []logEntry // oldest first
	all  []logEntry // every message of the epoch, for redeliver
	last uint64     // the offset of the room's newest message, 0 for none
	subs []*logSub
}

// logEntry is a message of the log.
type logEntry struct {
	at, prev uint64
	origin   *logNode
	m        runtime.Carried // a copy; Except is for origin
}

// carried is e as the log delivers it to node's follower.
func (e logEntry) carried(l *memLog, to *logNode) runtime.Carried {
	c := runtime.Carried{Variants: e.m.Variants, At: runtime.Position{Epoch: l.epoch, Offset: e.at}, Prev: e.prev}
	if e.origin == to {
		c.Except = e.m.Except
	}
	return c
}

// newMemLog returns a log that keeps keep messages per room. Call it
// before the runtimes on it start: its cleanup, which runs after their
// Shutdown, fails the test if any subscription is left.
func newMemLog(t *testing.T, keep int) *memLog {
	l := &memLog{keep: keep, epoch: logEpoch, rooms: make(map[string]*logRoom),
		drops: make(map[logKey]int), dups: make(map[string]int)}
	t.Cleanup(func() {
		l.release()
		l.releaseFollow()
		l.mu.Lock()
		var left []*logSub
		for name, r := range l.rooms {
			for _, s := range r.subs {
				t.Errorf("room %q: a subscription of node %s left after Shutdown", name, s.node.name)
				left = append(left, s)
			}
		}
		l.mu.Unlock()
		for _, s := range left {
			s.unsubscribe()
		}
	})
	return l
}

// logNode is one node's runtime.Log on a memLog.
type logNode struct {
	log     *memLog
	name    string
	follows atomic.Int32 // the Follow calls that succeeded
}

func (l *memLog) node(name string) *logNode { return &logNode{log: l, name: name} }

// room returns the log's room, made if need be. l.mu is held.
func (l *memLog) room(name string) *logRoom {
	r := l.rooms[name]
	if r == nil {
		r = &logRoom{}
		l.rooms[name] = r
	}
	return r
}

// logSub is a subscription, or a follow, of a node to a room.
type logSub struct {
	log     *memLog
	node    *logNode
	room    string
	follow  bool
	deliver func(context.Context, runtime.Carried)

	mu    sync.Mutex
	queue []runtime.Carried // mu guards queue

	wake chan struct{} // one slot: the queue is not empty
	stop chan struct{}
	done chan struct{} // closed when run has returned
	once sync.Once
}

func (l *memLog) newSub(n *logNode, room string, follow bool, deliver func(context.Context, runtime.Carried)) *logSub {
	return &logSub{log: l, node: n, room: room, follow: follow, deliver: deliver,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// enqueue queues m for delivery. The log's mu is held, so that every
// queue has the log's order.
func (s *logSub) enqueue(m runtime.Carried) {
	s.mu.Lock()
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers what is queued, one message at a time, until unsubscribe.
func (s *logSub) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.stop:
			return
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			m := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			if g := s.log.gate(); g != nil {
				select {
				case <-g:
				case <-s.stop:
					return
				}
			}
			select {
			case <-s.stop:
				return
			default:
			}
			s.deliver(context.Background(), m)
		}
	}
}

// unsubscribe ends s; no delivery is under way once it returns.
func (s *logSub) unsubscribe() {
	l := s.log
	l.mu.Lock()
	if r := l.rooms[s.room]; r != nil {
		if i := slices.Index(r.subs, s); i >= 0 {
			r.subs = slices.Delete(r.subs, i, i+1)
		}
	}
	l.mu.Unlock()
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

func (n *logNode) Subscribe(room string, deliver func(context.Context, runtime.Carried)) (func(), error) {
	l := n.log
	s := l.newSub(n, room, false, deliver)
	l.mu.Lock()
	r := l.room(room)
	r.subs = append(r.subs, s)
	l.mu.Unlock()
	go s.run()
	return s.unsubscribe, nil
}

// Publish carries m, a room's message without a place in the log (a
// signal, or a room without history), to the other nodes' subscriptions.
func (n *logNode) Publish(ctx context.Context, room string, m runtime.Carried) error {
	c := runtime.Carried{Variants: copyVariants(m.Variants)}
	l := n.log
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.room(room).subs {
		if s.node != n {
			s.enqueue(c)
		}
	}
	return nil
}

var errLogDown = errors.New("memLog: unavailable")

func (n *logNode) Append(ctx context.Context, room string, m runtime.Carried) (runtime.Position, error) {
	l := n.log
	if err := ctx.Err(); err != nil {
		return runtime.Position{}, err
	}
	if l.failAppend.Load() {
		return runtime.Position{}, errLogDown
	}
	if m.At != (runtime.Position{}) || m.Prev != 0 {
		return runtime.Position{}, fmt.Errorf("memLog: appended with a position: %+v, prev %d", m.At, m.Prev)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.appends++
	r := l.room(room)
	m.Variants = copyVariants(m.Variants)
	e := logEntry{at: l.seq, prev: r.last, origin: n, m: m}
	r.last = l.seq
	r.all = append(r.all, e)
	r.kept = append(r.kept, e)
	if len(r.kept) > l.keep {
		r.kept = slices.Delete(r.kept, 0, 1)
	}
	times := 1 + l.dups[room]
	delete(l.dups, room)
	for _, s := range r.subs {
		if !s.follow {
			continue
		}
		if k := (logKey{room, s.node}); l.drops[k] > 0 {
			l.drops[k]--
			continue
		}
		for range times {
			s.enqueue(e.carried(l, s.node))
		}
	}
	return runtime.Position{Epoch: l.epoch, Offset: e.at}, nil
}

// Follow delivers the mark and the room's messages kept, then, from a
// goroutine of its own, those appended since it looked.
func (n *logNode) Follow(room string, deliver func(context.Context, runtime.Carried)) (func(), error) {
	l := n.log
	if l.failFollow.Load() {
		return nil, errLogDown
	}
	s := l.newSub(n, room, true, deliver)
	l.mu.Lock()
	r := l.room(room)
	mark := runtime.Carried{At: runtime.Position{Epoch: l.epoch, Offset: r.last}}
	var backfill []runtime.Carried
	if len(r.kept) > 0 {
		kept := r.kept
		if l.markOldest {
			mark.At.Offset = kept[0].at
			kept = kept[1:]
		} else {
			mark.At.Offset = kept[0].at - 1
		}
		for i, e := range kept {
			c := e.carried(l, n)
			if i == 0 {
				c.Prev = mark.At.Offset
			}
			backfill = append(backfill, c)
		}
	}
	r.subs = append(r.subs, s)
	if l.dupBackfill.Load() && len(backfill) > 0 {
		s.queue = append(s.queue, backfill[len(backfill)-1])
		s.wake <- struct{}{}
	}
	slow := l.slow
	l.mu.Unlock()
	if slow != nil {
		<-slow
	}
	deliver(context.Background(), mark)
	for _, c := range backfill {
		deliver(context.Background(), c)
	}
	go s.run()
	n.follows.Add(1)
	return s.unsubscribe, nil
}

func copyVariants(vs []runtime.Variant) []runtime.Variant {
	c := make([]runtime.Variant, len(vs))
	for i, v := range vs {
		c[i] = runtime.Variant{Key: v.Key, Op: v.Op, Data: bytes.Clone(v.Data)}
	}
	return c
}

// gate returns what deliveries wait for, nil when they are not held.
func (l *memLog) gate() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// hold holds deliveries back (but Follow's own) until release.
func (l *memLog) hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = make(chan struct{})
	}
}

func (l *memLog) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held != nil {
		close(l.held)
		l.held = nil
	}
}

// slowFollow makes Follow wait, before it delivers anything, until
// releaseFollow; it is registered for the live messages already.
func (l *memLog) slowFollow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slow == nil {
		l.slow = make(chan struct{})
	}
}

func (l *memLog) releaseFollow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slow != nil {
		close(l.slow)
		l.slow = nil
	}
}

// dropNext loses the next message appended to room for node's follower.
func (l *memLog) dropNext(room string, n *logNode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drops[logKey{room, n}]++
}

// dupNext delivers the next message appended to room twice to every
// follower.
func (l *memLog) dupNext(room string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dups[room]++
}

// redeliver delivers room's message at offset again to every follower.
func (l *memLog) redeliver(room string, offset uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.room(room)
	for _, e := range r.all {
		if e.at == offset {
			for _, s := range r.subs {
				if s.follow {
					s.enqueue(e.carried(l, s.node))
				}
			}
		}
	}
}

// newEpoch loses the log and makes it again, empty, in the next epoch;
// with mark, every follower is told so by a mark.
func (l *memLog) newEpoch(mark bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch++
	l.seq = 0
	for _, r := range l.rooms {
		r.kept, r.all, r.last = nil, nil, 0
		for _, s := range r.subs {
			if s.follow && mark {
				s.enqueue(runtime.Carried{At: runtime.Position{Epoch: l.epoch}})
			}
		}
	}
	return l.epoch
}

// expire lets every message kept of room go, as a maximum age would.
func (l *memLog) expire(room string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.room(room).kept = nil
}

// followers returns how many nodes follow room.
func (l *memLog) followers(room string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.room(room).subs {
		if s.follow {
			n++
		}
	}
	return n
}

func (l *memLog) appended() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appends
}

var _ runtime.Log = (*logNode)(nil)

// logText is a message of one or two variants, for the subprotocols v0
// and v1, whose encoding is its text, after "v1:" in variant 1. It fails
// to encode at a position: in a logged room, the log gives the position,
// and Stamp writes it.
type logText struct {
	text     string
	variants int
}

func (m *logText) Variants() int { return m.variants }

func (m *logText) Variant(s *session.Session) int {
	if s.Subprotocol() == "v1" && m.variants > 1 {
		return 1
	}
	return 0
}

func (m *logText) Key(v int) string { return "v" + strconv.Itoa(v) }

func (m *logText) Encode(pos runtime.Position, v int) (*session.Frame, error) {
	if pos != (runtime.Position{}) {
		return nil, fmt.Errorf("logText encoded at %+v", pos)
	}
	p := m.text
	if v == 1 {
		p = "v1:" + p
	}
	return session.NewFrame(wire.OpText, []byte(p)), nil
}

// stampAt is the rigs' History.Stamp: "@EPOCH:OFFSET" after the payload,
// or an error for a message that says "nostamp".
func stampAt(dst []byte, v runtime.Variant, pos runtime.Position) ([]byte, error) {
	if bytes.Contains(v.Data, []byte("nostamp")) {
		return dst, errors.New("not stamped")
	}
	dst = append(dst, v.Data...)
	return fmt.Appendf(dst, "@%s", posString(pos)), nil
}

func posString(p runtime.Position) string { return fmt.Sprintf("%d:%d", p.Epoch, p.Offset) }

// unstamped is what a member of subprotocol proto gets of text unless
// Stamp writes in its position.
func unstamped(proto, text string) string {
	if proto == "v1" {
		return "v1:" + text
	}
	return text
}

// stamped is what a member of subprotocol proto gets of text at pos.
func stamped(proto, text string, pos runtime.Position) string {
	return unstamped(proto, text) + "@" + posString(pos)
}

// parseStamped splits what a member got into its text and position.
func parseStamped(t testing.TB, got string) (string, runtime.Position) {
	t.Helper()
	i := strings.LastIndexByte(got, '@')
	e, o, ok := strings.Cut(got[i+1:], ":")
	epoch, err1 := strconv.ParseUint(e, 10, 64)
	offset, err2 := strconv.ParseUint(o, 10, 64)
	if i < 0 || !ok || err1 != nil || err2 != nil {
		t.Fatalf("%q is not a stamped message", got)
	}
	return got[:i], runtime.Position{Epoch: epoch, Offset: offset}
}

// logRig is a node: a runtime whose rooms keep size messages in the log
// of a memLog, but those whose name starts with "plain", which keep none. Its clients ask, in a message:
//
//	resume ROOM EPOCH OFFSET [RECENT]: Resume, answered
//	  "recovered BOOL replayed N at EPOCH:OFFSET" before the replay, or
//	  "error: ...";
//	join ROOM, leave ROOM: JoinRoom and Leave, answered "joined", "left";
//	pub ROOM TEXT, pubx ROOM TEXT: Publish (pubx except the client),
//	  answered "pub EPOCH:OFFSET n N";
//	signal ROOM TEXT: Signal except the client, answered "signal N".
type logRig struct {
	rt   *runtime.Runtime
	url  string
	node *logNode
}

func newLogRig(t *testing.T, l *memLog, name string, size int) *logRig {
	t.Helper()
	var ref rtRef
	rig := &logRig{node: l.node(name)}
	history := func(room string) runtime.History {
		if strings.HasPrefix(room, "plain") {
			return runtime.History{}
		}
		return runtime.History{Size: size, Stamp: stampAt}
	}
	rig.rt, rig.url = start(t, handler{msg: func(s *session.Session, m session.Message) error {
		return logCommand(ref.get(), s, string(m.Data))
	}}, runtime.WithBroker(rig.node), runtime.WithRoomHistory(history),
		runtime.WithSubprotocols("v0", "v1"), runtime.WithMessageRate(-1, 0))
	ref.p.Store(rig.rt)
	return rig
}

func logCommand(rt *runtime.Runtime, s *session.Session, cmd string) error {
	reply := func(format string, a ...any) error { return s.Send(wire.OpText, fmt.Appendf(nil, format, a...)) }
	f := strings.Fields(cmd)
	switch f[0] {
	case "resume":
		epoch, _ := strconv.ParseUint(f[2], 10, 64)
		offset, _ := strconv.ParseUint(f[3], 10, 64)
		recent := 0
		if len(f) > 4 {
			recent, _ = strconv.Atoi(f[4])
		}
		v := 0
		if s.Subprotocol() == "v1" {
			v = 1
		}
		_, err := rt.Resume(f[1], s, runtime.Rejoin{
			Since: runtime.Position{Epoch: epoch, Offset: offset}, Recent: recent, Variant: v,
			Reply: func(res runtime.Resumption) error {
				return reply("recovered %v replayed %d at %s", res.Recovered, res.Replayed, posString(res.At))
			},
		})
		if err != nil {
			return reply("error: %v", err)
		}
		return nil
	case "join":
		if _, err := rt.JoinRoom(f[1], s); err != nil {
			return reply("error: %v", err)
		}
		return reply("joined")
	case "leave":
		rt.Leave(f[1], s)
		return reply("left")
	case "pub", "pubx", "signal":
		r, ok := rt.Room(f[1])
		if !ok {
			return reply("error: no room")
		}
		m := &logText{text: f[2], variants: 2}
		if f[0] == "signal" {
			n, err := r.Signal(context.Background(), s, m)
			if err != nil {
				return reply("error: %v", err)
			}
			return reply("signal %d", n)
		}
		var except *session.Session
		if f[0] == "pubx" {
			except = s
		}
		pos, n, err := r.Publish(context.Background(), except, m)
		if err != nil {
			return reply("error: %v", err)
		}
		return reply("pub %s n %d", posString(pos), n)
	}
	return reply("error: unknown command")
}

// publish publishes text to room from the test, as a game loop would,
// and returns its position; the room must have a member on this node.
func (rig *logRig) publish(t testing.TB, room, text string) runtime.Position {
	t.Helper()
	pos, err := rig.tryPublish(room, text)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// tryPublish is publish for goroutines that cannot call t.Fatal.
func (rig *logRig) tryPublish(room, text string) (runtime.Position, error) {
	r, ok := rig.rt.Room(room)
	if !ok {
		return runtime.Position{}, fmt.Errorf("no room %q", room)
	}
	pos, n, err := r.Publish(context.Background(), nil, &logText{text: text, variants: 2})
	if err == nil && n != 0 {
		err = fmt.Errorf("Publish to a logged room: %d members, want 0: they get it from the log", n)
	}
	return pos, err
}

// position is the room's Position on this node.
func (rig *logRig) position(t testing.TB, room string) runtime.Position {
	t.Helper()
	r, ok := rig.rt.Room(room)
	if !ok {
		t.Fatalf("no room %q", room)
	}
	return r.Position()
}

// dialProto dials url offering the subprotocol proto.
func dialProto(t testing.TB, url, proto string) *wire.Conn {
	t.Helper()
	c, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// resumeReply is the reply to "resume".
func resumeReply(recovered bool, replayed int, at runtime.Position) string {
	return fmt.Sprintf("recovered %v replayed %d at %s", recovered, replayed, posString(at))
}

// TestLogOptions: New refuses a Broker that is not a Log for rooms that
// keep history, and takes a Log with or without them.
func TestLogOptions(t *testing.T) {
	l := newMemLog(t, 8)
	history := runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 8} })
	for _, tc := range []struct {
		name string
		opts []runtime.Option
		ok   bool
	}{
		{"a Broker with history", []runtime.Option{runtime.WithBroker((&memBus{}).node("a")), history}, false},
		{"a Broker without history", []runtime.Option{runtime.WithBroker((&memBus{}).node("a"))}, true},
		{"a Log with history", []runtime.Option{runtime.WithBroker(l.node("a")), history}, true},
		{"a Log without history", []runtime.Option{runtime.WithBroker(l.node("a"))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := runtime.New(echo, tc.opts...)
			if err == nil {
				if err := rt.Shutdown(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "Broker") {
				t.Fatalf("New: %v, want success %v", err, tc.ok)
			}
		})
	}
}

// TestLogPublish: Publish in a logged room returns the log's position and
// 0 members, and queues nothing here until the log gives the message
// back; then every member, on every node, gets it once, in its variant,
// stamped with its position (as published when Stamp fails); except is
// left out on the publishing node only. Messages published from two
// nodes at once reach every member in the log's order, the same for all.
func TestLogPublish(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 64), newLogRig(t, l, "b", 64)
	protos := []string{"v0", "v1", "v0", "v1"}
	members := []*wire.Conn{
		dialProto(t, a.url, "v0"), dialProto(t, a.url, "v1"),
		dialProto(t, b.url, "v0"), dialProto(t, b.url, "v1"),
	}
	zero := runtime.Position{Epoch: logEpoch}
	for i, c := range members {
		if got, want := ask(t, c, "resume lobby 0 0"), resumeReply(false, 0, zero); got != want {
			t.Fatalf("member %d: %q, want %q", i, got, want)
		}
	}

	steps := []struct {
		name    string
		from    int // the member that publishes
		cmd     string
		stamped bool
		skip    int // the member that does not get it, or -1
	}{
		{"from a", 0, "pub lobby hello", true, -1},
		{"except the publisher", 0, "pubx lobby quiet", true, 0},
		{"from b, in v1", 3, "pub lobby there", true, -1},
		{"except the publisher on b", 2, "pubx lobby bx", true, 2},
		{"Stamp fails", 1, "pub lobby nostamp", false, -1},
		{"after the skips", 1, "pub lobby end", true, -1},
	}
	last := zero
	for _, st := range steps {
		text := strings.Fields(st.cmd)[2]
		l.hold()
		pos := runtime.Position{Epoch: logEpoch, Offset: last.Offset + 1}
		if got, want := ask(t, members[st.from], st.cmd), "pub "+posString(pos)+" n 0"; got != want {
			t.Fatalf("%s: the publisher got %q first, want %q", st.name, got, want)
		}
		for _, rig := range []*logRig{a, b} {
			if p := rig.position(t, "lobby"); p != last {
				t.Fatalf("%s: node %s's room at %+v before the log gave the message back, want %+v", st.name, rig.node.name, p, last)
			}
		}
		l.release()
		last = pos
		for i, c := range members {
			if i == st.skip {
				continue // its next message is the next step's
			}
			want := stamped(protos[i], text, pos)
			if !st.stamped {
				want = unstamped(protos[i], text)
			}
			if got := next(t, c); got != want {
				t.Fatalf("%s: member %d got %q, want %q", st.name, i, got, want)
			}
		}
	}

	// From two nodes at once, with another room's messages between.
	k := dial(t, a.url)
	ask(t, k, "resume other 0 0")
	const each = 20
	var mu sync.Mutex
	var published []uint64
	var wg sync.WaitGroup
	for _, p := range []struct {
		rig  *logRig
		room string
	}{{a, "lobby"}, {b, "lobby"}, {a, "other"}} {
		wg.Go(func() {
			for i := range each {
				pos, err := p.rig.tryPublish(p.room, fmt.Sprintf("%s%d", p.rig.node.name, i))
				if err != nil {
					t.Error(err)
					return
				}
				if p.room == "lobby" {
					mu.Lock()
					published = append(published, pos.Offset)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(published)
	for i, c := range members {
		var got []uint64
		for range 2 * each {
			_, pos := parseStamped(t, next(t, c))
			got = append(got, pos.Offset)
		}
		if !slices.Equal(got, published) {
			t.Fatalf("member %d got the offsets %v, want %v: each once, in the log's order", i, got, published)
		}
	}
}

// TestLogRecover: a session that was in a room on node a comes back on
// node b with the last position it saw, and is told it recovered, then
// gets what it missed, in order, then the live messages; the room's
// offsets skip those of another room published to between them. b may
// have followed the room before, or follow it for this resume.
func TestLogRecover(t *testing.T) {
	for _, followed := range []bool{false, true} {
		t.Run(fmt.Sprintf("followed before %v", followed), func(t *testing.T) {
			l := newMemLog(t, 64)
			a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
			keeper := dial(t, a.url)
			ask(t, keeper, "resume lobby 0 0")
			ask(t, keeper, "resume other 0 0")
			var bKeeper *wire.Conn
			if followed {
				bKeeper = dial(t, b.url)
				ask(t, bKeeper, "resume lobby 0 0")
			}
			var positions []runtime.Position
			publish := func(n int) {
				for range n {
					a.publish(t, "other", "o")
					i := len(positions)
					positions = append(positions, a.publish(t, "lobby", "m"+strconv.Itoa(i)))
					next(t, keeper) // the two rooms' messages, in either order
					next(t, keeper)
				}
			}

			c := dialProto(t, a.url, "v1")
			ask(t, c, "resume lobby 0 0")
			publish(3)
			var seen runtime.Position
			for i := range 3 {
				got := next(t, c)
				if want := stamped("v1", "m"+strconv.Itoa(i), positions[i]); got != want {
					t.Fatalf("on a: %q, want %q", got, want)
				}
				_, seen = parseStamped(t, got)
			}
			c.CloseNow()
			publish(3) // missed
			if positions[4].Offset-positions[3].Offset == 1 {
				t.Fatal("the room's offsets follow each other: nothing tested")
			}
			if followed {
				for range positions {
					next(t, bKeeper) // so that b has them all
				}
			}

			back := dialProto(t, b.url, "v1")
			if got, want := ask(t, back, fmt.Sprintf("resume lobby %d %d", seen.Epoch, seen.Offset)), resumeReply(true, 3, seen); got != want {
				t.Fatalf("resume on b: %q, want %q", got, want)
			}
			for i := 3; i < 6; i++ {
				if got, want := next(t, back), stamped("v1", "m"+strconv.Itoa(i), positions[i]); got != want {
					t.Fatalf("replay: %q, want %q", got, want)
				}
			}
			live := a.publish(t, "lobby", "live")
			if got, want := next(t, back), stamped("v1", "live", live); got != want {
				t.Fatalf("live: %q, want %q", got, want)
			}
			if n := b.node.follows.Load(); n != 1 {
				t.Errorf("b followed the room %d times", n)
			}
		})
	}
}

// TestLogFollowLate: a node that follows a room late holds what the log
// keeps of it, after the log's mark, whichever of the two readings of the
// mark the log takes (at the oldest message kept, or just before it): a
// session whose position is at or after the mark recovers; one before
// it, or of another epoch, does not, and gets the Recent messages it asks
// for; then every one of them gets the live messages.
func TestLogFollowLate(t *testing.T) {
	for _, conv := range []struct {
		name       string
		markOldest bool
	}{{"mark before the oldest kept", false}, {"mark at the oldest kept", true}} {
		t.Run(conv.name, func(t *testing.T) {
			l := newMemLog(t, 4)
			l.markOldest = conv.markOldest
			a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
			keeper := dial(t, a.url)
			ask(t, keeper, "resume other 0 0")
			ask(t, keeper, "resume lobby 0 0")
			// lobby at 2, 4, ..., 12, other at the odd offsets; the
			// log keeps 6, 8, 10 and 12.
			for i := range 6 {
				a.publish(t, "other", "o")
				if p := a.publish(t, "lobby", "m"); p.Offset != uint64(2*i+2) {
					t.Fatalf("lobby's message %d at %+v", i, p)
				}
			}
			pos := func(o uint64) runtime.Position { return runtime.Position{Epoch: logEpoch, Offset: o} }
			reading := 0
			if conv.markOldest {
				reading = 1
			}
			var clients []*wire.Conn
			for _, tc := range []struct {
				name      string
				since     runtime.Position
				recent    int
				recovered bool
				at        [2]uint64 // by the mark's reading
			}{
				{"missed nothing", pos(12), 0, true, [2]uint64{12, 12}},
				{"missed 2", pos(8), 0, true, [2]uint64{8, 8}},
				{"at the oldest kept", pos(6), 0, true, [2]uint64{6, 6}},
				{"before the oldest kept", pos(4), 0, false, [2]uint64{12, 12}},
				{"before the oldest kept, 2 recent", pos(4), 2, false, [2]uint64{8, 8}},
				{"before the oldest kept, all recent", pos(4), 10, false, [2]uint64{5, 6}},
				{"first join", runtime.Position{}, 0, false, [2]uint64{12, 12}},
				{"another epoch", runtime.Position{Epoch: logEpoch + 1, Offset: 8}, 0, false, [2]uint64{12, 12}},
			} {
				c := dial(t, b.url)
				clients = append(clients, c)
				at := pos(tc.at[reading])
				var replay []uint64
				for o := uint64(2); o <= 12; o += 2 {
					if o > at.Offset {
						replay = append(replay, o)
					}
				}
				got := ask(t, c, fmt.Sprintf("resume lobby %d %d %d", tc.since.Epoch, tc.since.Offset, tc.recent))
				if want := resumeReply(tc.recovered, len(replay), at); got != want {
					t.Fatalf("%s: %q, want %q", tc.name, got, want)
				}
				for _, o := range replay {
					if got, want := next(t, c), stamped("", "m", pos(o)); got != want {
						t.Fatalf("%s: replay %q, want %q", tc.name, got, want)
					}
				}
			}
			live := a.publish(t, "lobby", "live")
			for i, c := range clients {
				if got, want := next(t, c), stamped("", "live", live); got != want {
					t.Fatalf("client %d: %q, want %q", i, got, want)
				}
			}
			if n := b.node.follows.Load(); n != 1 {
				t.Errorf("b followed the room %d times", n)
			}
		})
	}
}

// TestLogEmptyRoom: in a room of which the log keeps nothing, a resume
// is at the mark's offset: 0 for a room that never had a message, the
// last one's for a room whose messages expired; a session at that
// position recovers, with nothing to replay, and the resumed ones get
// what follows, which a session at that position then recovers.
func TestLogEmptyRoom(t *testing.T) {
	l := newMemLog(t, 8)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	keeper := dial(t, a.url)
	ask(t, keeper, "resume empty 0 0")
	ask(t, keeper, "resume expired 0 0")
	x := a.publish(t, "expired", "x")
	y := a.publish(t, "expired", "y")
	next(t, keeper)
	next(t, keeper)
	l.expire("expired")
	zero := runtime.Position{Epoch: logEpoch}
	rows := []struct {
		name, room string
		since      runtime.Position
		recovered  bool
		at         runtime.Position
	}{
		{"never published, first join", "empty", runtime.Position{}, false, zero},
		{"never published, at 0", "empty", zero, true, zero},
		{"expired, first join", "expired", runtime.Position{}, false, y},
		{"expired, at the last", "expired", y, true, y},
		{"expired, before the last", "expired", x, false, y},
	}
	clients := make([]*wire.Conn, len(rows))
	for i, tc := range rows {
		clients[i] = dial(t, b.url)
		got := ask(t, clients[i], fmt.Sprintf("resume %s %d %d 5", tc.room, tc.since.Epoch, tc.since.Offset))
		if want := resumeReply(tc.recovered, 0, tc.at); got != want {
			t.Fatalf("%s: %q, want %q", tc.name, got, want)
		}
	}
	z := map[string]runtime.Position{"empty": a.publish(t, "empty", "z"), "expired": a.publish(t, "expired", "z")}
	for i, tc := range rows {
		if got, want := next(t, clients[i]), stamped("", "z", z[tc.room]); got != want {
			t.Fatalf("%s: then %q, want %q", tc.name, got, want)
		}
		c := dial(t, b.url)
		if got, want := ask(t, c, fmt.Sprintf("resume %s %d %d", tc.room, tc.at.Epoch, tc.at.Offset)), resumeReply(true, 1, tc.at); got != want {
			t.Fatalf("%s: from its position: %q, want %q", tc.name, got, want)
		}
		if got, want := next(t, c), stamped("", "z", z[tc.room]); got != want {
			t.Fatalf("%s: replay %q, want %q", tc.name, got, want)
		}
	}
}

// TestLogGap: a message the log loses for a node (its next one's Prev is
// not the last the node has) starts the node's history again after it: a
// session whose position precedes the loss does not recover there; one
// at or past it does. Another room's messages lie between the room's, so
// that the loss is at Prev, not at the offset before the next message.
func TestLogGap(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	ka, kb := dial(t, a.url), dial(t, b.url)
	ask(t, ka, "resume lobby 0 0")
	ask(t, kb, "resume lobby 0 0")
	other := dial(t, a.url)
	ask(t, other, "resume other 0 0")
	var m []runtime.Position
	publish := func(text string) runtime.Position {
		a.publish(t, "other", "o")
		p := a.publish(t, "lobby", text)
		m = append(m, p)
		return p
	}
	for range 2 {
		publish("m")
		next(t, ka)
		next(t, kb)
	}
	l.dropNext("lobby", b.node)
	lost, after := publish("lost"), publish("after")
	if got, want := next(t, ka), stamped("", "lost", lost); got != want {
		t.Fatalf("a: %q, want %q", got, want)
	}
	next(t, ka)
	if got, want := next(t, kb), stamped("", "after", after); got != want {
		t.Fatalf("b, after the loss: %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name  string
		since runtime.Position
		reply string
	}{
		{"before the loss", m[1], resumeReply(false, 0, after)},
		{"long before", m[0], resumeReply(false, 0, after)},
		{"at the lost message", lost, resumeReply(true, 1, lost)},
		{"after the loss", after, resumeReply(true, 0, after)},
	} {
		c := dial(t, b.url)
		if got := ask(t, c, fmt.Sprintf("resume lobby %d %d", tc.since.Epoch, tc.since.Offset)); got != tc.reply {
			t.Fatalf("%s: %q, want %q", tc.name, got, tc.reply)
		}
		if strings.Contains(tc.reply, "replayed 1") {
			if got, want := next(t, c), stamped("", "after", after); got != want {
				t.Fatalf("%s: replay %q, want %q", tc.name, got, want)
			}
		}
	}
	later := publish("later")
	if got, want := next(t, kb), stamped("", "later", later); got != want {
		t.Fatalf("b, later: %q, want %q", got, want)
	}
}

// TestLogEpoch: when the log is lost and made again, in a new epoch,
// whether it says so by a mark or its next message does, a node forgets
// the room's history: positions of the old epoch, the same offsets
// included, do not recover; those of the new one do.
func TestLogEpoch(t *testing.T) {
	for _, mark := range []bool{true, false} {
		t.Run(fmt.Sprintf("mark %v", mark), func(t *testing.T) {
			l := newMemLog(t, 64)
			a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
			ka, kb := dial(t, a.url), dial(t, b.url)
			for _, c := range []*wire.Conn{ka, kb} {
				ask(t, c, "resume lobby 0 0")
				ask(t, c, "resume quiet 0 0") // no message in the old epoch
			}
			var old [2]runtime.Position
			for i := range old {
				old[i] = a.publish(t, "lobby", "old")
				next(t, ka)
				next(t, kb)
			}
			epoch := l.newEpoch(mark)
			origin := runtime.Position{Epoch: epoch}
			if mark {
				eventually(t, bound, "b to take the mark", func() bool { return b.position(t, "lobby") == origin })
				c := dial(t, b.url)
				if got, want := ask(t, c, fmt.Sprintf("resume lobby %d %d", old[1].Epoch, old[1].Offset)), resumeReply(false, 0, origin); got != want {
					t.Fatalf("resume after the mark: %q, want %q", got, want)
				}
			}
			first := a.publish(t, "lobby", "new")
			if first != (runtime.Position{Epoch: epoch, Offset: 1}) {
				t.Fatalf("the new log's first message at %+v", first)
			}
			for _, c := range []*wire.Conn{ka, kb} {
				if got, want := next(t, c), stamped("", "new", first); got != want {
					t.Fatalf("%q, want %q", got, want)
				}
			}
			for _, tc := range []struct {
				name  string
				since runtime.Position
				reply string
			}{
				{"the old epoch's last", old[1], resumeReply(false, 0, first)},
				{"the old epoch's offset 1", old[0], resumeReply(false, 0, first)},
				{"the new epoch's start", origin, resumeReply(true, 1, origin)},
				{"the new epoch's first", first, resumeReply(true, 0, first)},
			} {
				for _, rig := range []*logRig{a, b} {
					c := dial(t, rig.url)
					if got := ask(t, c, fmt.Sprintf("resume lobby %d %d", tc.since.Epoch, tc.since.Offset)); got != tc.reply {
						t.Fatalf("%s on %s: %q, want %q", tc.name, rig.node.name, got, tc.reply)
					}
					c.CloseNow()
				}
			}

			// A room that had no message in the old epoch: its offset was
			// 0 there as it is in the new one, until its first message.
			q := a.publish(t, "quiet", "q")
			for _, c := range []*wire.Conn{ka, kb} {
				if got, want := next(t, c), stamped("", "q", q); got != want {
					t.Fatalf("%q, want %q", got, want)
				}
			}
			for _, rig := range []*logRig{a, b} {
				if p := rig.position(t, "quiet"); p != q {
					t.Errorf("the quiet room on %s at %+v, want %+v", rig.node.name, p, q)
				}
				for since, reply := range map[runtime.Position]string{
					{Epoch: old[0].Epoch}: resumeReply(false, 0, q),
					origin:                resumeReply(true, 1, origin),
				} {
					c := dial(t, rig.url)
					if got := ask(t, c, fmt.Sprintf("resume quiet %d %d", since.Epoch, since.Offset)); got != reply {
						t.Fatalf("quiet room on %s from %+v: %q, want %q", rig.node.name, since, got, reply)
					}
					c.CloseNow()
				}
			}
		})
	}
}

// TestLogDuplicates: a message the log delivers twice, at once or after
// later ones, or once by a new follower's read and once live, is kept and
// sent once.
func TestLogDuplicates(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	ka, kb := dial(t, a.url), dial(t, b.url)
	ask(t, ka, "resume lobby 0 0")
	ask(t, kb, "resume lobby 0 0")
	var m []runtime.Position
	expect := func(text string) {
		t.Helper()
		p := a.publish(t, "lobby", text)
		m = append(m, p)
		for _, c := range []*wire.Conn{ka, kb} {
			if got, want := next(t, c), stamped("", text, p); got != want {
				t.Fatalf("%q, want %q", got, want)
			}
		}
	}
	expect("first")
	l.dupNext("lobby")
	expect("twice")
	expect("after")
	l.redeliver("lobby", m[0].Offset)
	l.redeliver("lobby", m[1].Offset)
	expect("after the stale ones")

	c := dial(t, b.url)
	if got, want := ask(t, c, fmt.Sprintf("resume lobby %d %d", m[0].Epoch, m[0].Offset)), resumeReply(true, 3, m[0]); got != want {
		t.Fatalf("resume: %q, want %q", got, want)
	}
	for i, text := range []string{"twice", "after", "after the stale ones"} {
		if got, want := next(t, c), stamped("", text, m[i+1]); got != want {
			t.Fatalf("replay: %q, want %q", got, want)
		}
	}

	// A third node's follow reads the last message and gets it live too.
	l.dupBackfill.Store(true)
	third := newLogRig(t, l, "c", 8)
	kc := dial(t, third.url)
	if got, want := ask(t, kc, fmt.Sprintf("resume lobby %d %d", m[2].Epoch, m[2].Offset)), resumeReply(true, 1, m[2]); got != want {
		t.Fatalf("resume on a new follower: %q, want %q", got, want)
	}
	if got, want := next(t, kc), stamped("", "after the stale ones", m[3]); got != want {
		t.Fatalf("replay on a new follower: %q, want %q", got, want)
	}
	last := a.publish(t, "lobby", "last")
	for _, c := range []*wire.Conn{ka, kb, kc} {
		if got, want := next(t, c), stamped("", "last", last); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
}

// TestLogUnavailable: when the log cannot be followed, Resume returns
// ErrNoLog and leaves no room behind; once it can, a resume recovers.
func TestLogUnavailable(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	ka := dial(t, a.url)
	ask(t, ka, "resume lobby 0 0")
	m := a.publish(t, "lobby", "m")
	next(t, ka)

	l.failFollow.Store(true)
	c := dial(t, b.url)
	for range 2 {
		if got, want := ask(t, c, fmt.Sprintf("resume lobby %d %d", m.Epoch, m.Offset)), "error: "+runtime.ErrNoLog.Error(); got != want {
			t.Fatalf("resume without the log: %q, want %q", got, want)
		}
		if _, ok := b.rt.Room("lobby"); ok {
			t.Fatal("a room left behind by a resume that failed")
		}
		if n := l.followers("lobby"); n != 1 {
			t.Fatalf("%d nodes follow the room, want a alone", n)
		}
	}

	l.failFollow.Store(false)
	if got, want := ask(t, c, fmt.Sprintf("resume lobby %d %d", m.Epoch, m.Offset)), resumeReply(true, 0, m); got != want {
		t.Fatalf("resume once the log is back: %q, want %q", got, want)
	}
	live := a.publish(t, "lobby", "live")
	if got, want := next(t, c), stamped("", "live", live); got != want {
		t.Fatalf("then %q, want %q", got, want)
	}
}

// TestLogResumeConcurrent: many sessions resume in a room on a node that
// has yet to follow it, all at once, while messages are published to it
// and to another room: the first follows the log (slowly) and the others
// wait for it; each gets every message after its position exactly once,
// in order, after its reply.
func TestLogResumeConcurrent(t *testing.T) {
	const (
		sessions = 16
		before   = 10 // published before the resumes
		during   = 10 // while the Follow is under way
		after    = 100
		// the offset of the last message, "end": the log numbers the two
		// rooms' messages in turn
		end = 2*(before+during+after) + 1
	)
	l := newMemLog(t, 1000)
	a, b := newLogRig(t, l, "a", 1000), newLogRig(t, l, "b", 1000)
	keeper := dial(t, a.url)
	ask(t, keeper, "resume lobby 0 0")
	ask(t, keeper, "resume other 0 0")
	go func() { // its mailbox must not fill: read and drop
		for {
			if _, _, err := keeper.ReadMessage(); err != nil {
				return
			}
		}
	}()
	var published []runtime.Position
	publish := func(n int) error {
		for range n {
			if _, err := a.tryPublish("other", "o"); err != nil {
				return err
			}
			p, err := a.tryPublish("lobby", "m")
			if err != nil {
				return err
			}
			published = append(published, p)
		}
		return nil
	}
	if err := publish(before); err != nil {
		t.Fatal(err)
	}

	l.slowFollow()
	var wg sync.WaitGroup
	got := make([][]runtime.Position, sessions)
	since := make([]runtime.Position, sessions)
	conns := make([]*wire.Conn, sessions)
	fail := func(format string, a ...any) { // with the readers stopped first
		t.Helper()
		l.releaseFollow()
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
		t.Fatalf(format, a...)
	}
	for i := range sessions {
		c := dial(t, b.url)
		conns[i] = c
		since[i] = published[i%before]
		if i%4 == 3 {
			since[i] = runtime.Position{} // a first join: at the latest
		}
		wg.Go(func() {
			if err := c.WriteMessage(wire.OpText, fmt.Appendf(nil, "resume lobby %d %d", since[i].Epoch, since[i].Offset)); err != nil {
				t.Error(err)
				return
			}
			c.NetConn().SetReadDeadline(time.Now().Add(bound))
			for {
				_, p, err := c.ReadMessage()
				if err != nil {
					t.Errorf("session %d from %+v: %v after %v", i, since[i], err, got[i])
					return
				}
				s := string(p)
				if reply, ok := strings.CutPrefix(s, "recovered "); ok {
					if len(got[i]) > 0 {
						t.Errorf("session %d: the reply after messages", i)
					}
					recovered := strings.HasPrefix(reply, "true ")
					_, at, _ := strings.Cut(reply, " at ")
					e, o, _ := strings.Cut(at, ":")
					epoch, _ := strconv.ParseUint(e, 10, 64)
					offset, _ := strconv.ParseUint(o, 10, 64)
					if recovered != (since[i] != runtime.Position{}) || recovered && (runtime.Position{Epoch: epoch, Offset: offset}) != since[i] {
						t.Errorf("session %d from %+v: %q", i, since[i], s)
					}
					since[i] = runtime.Position{Epoch: epoch, Offset: offset}
					got[i] = append(got[i], runtime.Position{}) // the reply
					if offset == end {
						return // a first join after the end
					}
					continue
				}
				_, pos := parseStamped(t, s)
				got[i] = append(got[i], pos)
				if pos.Offset == end {
					return
				}
			}
		})
	}
	// The first resume follows; the others wait in attach for it.
	for deadline := time.Now().Add(bound); waitingToFollow() != sessions-1; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("%d resumes wait for the first's Follow after %v, want %d", waitingToFollow(), bound, sessions-1)
		}
	}
	err := publish(during)
	l.releaseFollow()
	if err == nil {
		err = publish(after)
	}
	var last runtime.Position
	if err == nil {
		last, err = a.tryPublish("lobby", "end")
	}
	switch {
	case err != nil:
		fail("%v", err)
	case last.Offset != end:
		fail("the last message at %+v, want offset %d", last, end)
	}
	published = append(published, last)
	wg.Wait()
	for i := range sessions {
		if len(got[i]) == 0 || got[i][0] != (runtime.Position{}) {
			t.Fatalf("session %d: no reply first", i)
		}
		var want []runtime.Position
		for _, p := range published {
			if p.Offset > since[i].Offset {
				want = append(want, p)
			}
		}
		if !slices.Equal(got[i][1:], want) {
			t.Fatalf("session %d from %+v got %v, want %v", i, since[i], got[i][1:], want)
		}
	}
	if n := b.node.follows.Load(); n != 1 {
		t.Errorf("b followed the room %d times", n)
	}
}

// waitingToFollow counts the goroutines in a Room's attach but not in the
// Log's Follow: those waiting for another's Follow to settle.
func waitingToFollow() int {
	buf := make([]byte, 1<<20)
	for {
		n := goruntime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "runtime.(*Room).attach(") && !strings.Contains(g, "(*logNode).Follow(") {
			n++
		}
	}
	return n
}

// TestLogSignal: a signal in a logged room reaches the members of every
// node, live, without a position, and is not kept: the log does not
// carry it, and a session that resumes gets the messages it missed, not
// the signal.
func TestLogSignal(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	sa, ka, kb := dial(t, a.url), dial(t, a.url), dial(t, b.url)
	for _, c := range []*wire.Conn{sa, ka, kb} {
		ask(t, c, "resume lobby 0 0")
	}
	first := a.publish(t, "lobby", "first")
	for _, c := range []*wire.Conn{sa, ka, kb} {
		next(t, c)
	}
	if got := ask(t, sa, "signal lobby typing"); got != "signal 1" {
		t.Fatalf("signal: %q, want the other member here", got)
	}
	for _, c := range []*wire.Conn{ka, kb} {
		if got := next(t, c); got != "typing" {
			t.Fatalf("the signal reached a member as %q", got)
		}
	}
	if n := l.appended(); n != 1 {
		t.Fatalf("%d messages in the log, want the publish alone", n)
	}
	second := a.publish(t, "lobby", "second")
	for _, c := range []*wire.Conn{ka, kb} {
		next(t, c)
	}
	c := dial(t, b.url)
	if got, want := ask(t, c, fmt.Sprintf("resume lobby %d %d", first.Epoch, first.Offset)), resumeReply(true, 1, first); got != want {
		t.Fatalf("resume: %q, want %q", got, want)
	}
	if got, want := next(t, c), stamped("", "second", second); got != want {
		t.Fatalf("replay: %q, want %q alone", got, want)
	}
}

// TestLogJoin: a session that joins a logged room with JoinRoom, as the
// first member on its node, gets the messages published after its join,
// not what the log kept before it.
func TestLogJoin(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	ka := dial(t, a.url)
	ask(t, ka, "resume lobby 0 0")
	a.publish(t, "lobby", "old")
	next(t, ka)
	c := dial(t, b.url)
	if got := ask(t, c, "join lobby"); got != "joined" {
		t.Fatalf("join: %q", got)
	}
	live := a.publish(t, "lobby", "live")
	if got, want := next(t, c), stamped("", "live", live); got != want {
		t.Fatalf("after its join: %q, want %q", got, want)
	}
}

// TestLogHistorySize: a node keeps the History.Size latest of the
// messages the log gives it, live or read when it follows, whose offsets
// are not contiguous: a session recovers from the message before the
// oldest it keeps, not from an earlier one, and Recent counts messages,
// not offsets.
func TestLogHistorySize(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 3), newLogRig(t, l, "b", 3)
	keeper := dial(t, a.url)
	ask(t, keeper, "resume other 0 0")
	ask(t, keeper, "resume lobby 0 0")
	for range 6 { // lobby at 2, 4, ..., 12; a keeps 8, 10, 12
		a.publish(t, "other", "o")
		a.publish(t, "lobby", "m")
		next(t, keeper)
		next(t, keeper)
	}
	pos := func(o uint64) runtime.Position { return runtime.Position{Epoch: logEpoch, Offset: o} }
	for _, rig := range []*logRig{a, b} { // b follows the room at its first resume
		for _, tc := range []struct {
			name      string
			since     runtime.Position
			recent    int
			recovered bool
			at        uint64
		}{
			{"before the oldest kept", pos(6), 0, true, 6},
			{"the other room's offset between", pos(7), 0, true, 7},
			{"earlier", pos(4), 0, false, 12},
			{"earlier, 2 recent", pos(4), 2, false, 8},
			{"earlier, 5 recent", pos(4), 5, false, 6},
		} {
			c := dial(t, rig.url)
			var replay []uint64
			for o := uint64(8); o <= 12; o += 2 {
				if o > tc.at {
					replay = append(replay, o)
				}
			}
			got := ask(t, c, fmt.Sprintf("resume lobby %d %d %d", tc.since.Epoch, tc.since.Offset, tc.recent))
			if want := resumeReply(tc.recovered, len(replay), pos(tc.at)); got != want {
				t.Fatalf("%s on %s: %q, want %q", tc.name, rig.node.name, got, want)
			}
			for _, o := range replay {
				if got, want := next(t, c), stamped("", "m", pos(o)); got != want {
					t.Fatalf("%s on %s: replay %q, want %q", tc.name, rig.node.name, got, want)
				}
			}
		}
	}
}

// TestLogPlainRoom: with a Log, a room that keeps no history is a
// Broker's room: subscribed, not followed; its messages go to the members
// here at once and to the other nodes without the log, unstamped.
func TestLogPlainRoom(t *testing.T) {
	l := newMemLog(t, 64)
	a, b := newLogRig(t, l, "a", 8), newLogRig(t, l, "b", 8)
	ca, cb := dial(t, a.url), dialProto(t, b.url, "v1")
	for _, c := range []*wire.Conn{ca, cb} {
		if got := ask(t, c, "resume plain 0 0"); got != resumeReply(false, 0, runtime.Position{}) {
			t.Fatalf("resume in a room without history: %q", got)
		}
	}
	if got := ask(t, ca, "pub plain hi"); got != "hi" {
		t.Fatalf("the publisher got %q first, want its own copy, at once", got)
	}
	if got := next(t, ca); got != "pub 0:0 n 1" {
		t.Fatalf("publish: %q, want no position and the member here", got)
	}
	if got := ask(t, ca, "pubx plain again"); got != "pub 0:0 n 0" {
		t.Fatalf("publish except the publisher: %q", got)
	}
	for _, text := range []string{"v1:hi", "v1:again"} {
		if got := next(t, cb); got != text {
			t.Fatalf("b got %q, want %q", got, text)
		}
	}
	if n, f := l.appended(), l.followers("plain"); n != 0 || f != 0 {
		t.Fatalf("%d messages appended, %d followers of a room without history", n, f)
	}
}
