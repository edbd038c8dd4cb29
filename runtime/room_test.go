package runtime_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// joinHandler joins every session to room on open.
func joinHandler(ref *rtRef, room string, tr *tracker) handler {
	return handler{
		open: func(s *session.Session) error {
			if tr != nil {
				tr.opened(s)
			}
			ref.get().Join(room, s)
			return nil
		},
		close: func(s *session.Session, err error) {
			if tr != nil {
				tr.closed(s, err)
			}
		},
	}
}

// TestRoomThousandMembers broadcasts from 4 publishers at once to a room of
// 1,000 real connections: every member gets every message exactly once, in
// order per publisher.
func TestRoomThousandMembers(t *testing.T) { eachTransport(t, testRoomThousandMembers) }

func testRoomThousandMembers(t *testing.T) {
	const (
		members    = 1000
		publishers = 4
		perPub     = 50 // 200 frames in flight per member at most: under the 256-frame mailbox
		dialers    = 16
	)
	var ref rtRef
	rt, url := start(t, joinHandler(&ref, "big", nil))
	ref.p.Store(rt)

	conns := make([]*wire.Conn, members)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	readErrs := make(chan error, members)
	var next atomic.Int32
	var wg sync.WaitGroup
	dialErrs := make(chan error, dialers)
	for range dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= members {
					return
				}
				c, err := dialCtx(url, nil)
				if err != nil {
					dialErrs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
				go func() {
					sc := newSeqChecker(publishers)
					c.NetConn().SetReadDeadline(time.Now().Add(2 * bound))
					for range publishers * perPub {
						_, p, err := c.ReadMessage()
						if err == nil {
							err = sc.check(p)
						}
						if err != nil {
							readErrs <- fmt.Errorf("member %d: %w", i, err)
							return
						}
					}
					readErrs <- nil
				}()
			}
		})
	}
	wg.Wait()
	close(dialErrs)
	if err := <-dialErrs; err != nil {
		t.Fatal(err)
	}
	var room *runtime.Room
	eventually(t, bound, "1,000 members", func() bool {
		var ok bool
		room, ok = rt.Room("big")
		return ok && room.Len() == members
	})

	refused := make(chan string, publishers*perPub)
	for pub := range publishers {
		wg.Go(func() {
			for seq := range perPub {
				if n := room.Broadcast(wire.OpBinary, seqMsg(uint32(pub), uint32(seq), 8)); n != members {
					refused <- fmt.Sprintf("publisher %d seq %d reached %d members", pub, seq, n)
				}
			}
		})
	}
	wg.Wait()
	close(refused)
	for msg := range refused {
		t.Error(msg)
	}
	failed := 0
	for range members {
		if err := <-readErrs; err != nil {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d members did not get every message in order", failed, members)
	}

	for i, c := range conns {
		c.CloseNow()
		conns[i] = nil
	}
	eventually(t, bound, "every session to end", func() bool { return rt.Len() == 0 })
	if _, ok := rt.Room("big"); ok {
		t.Error("the room outlived its members")
	}
}

// TestSlowConsumer stalls one member of a room (a client that never reads,
// with a small receive buffer) while the room broadcasts 4 KiB messages,
// and checks, for each policy, that the other members get everything in
// order, that Broadcast never waits for the stalled member, and that the
// stalled one is dealt with by the policy: closed with ErrSlowConsumer, or
// frames dropped and counted, every frame either delivered or dropped.
func TestSlowConsumer(t *testing.T) {
	for _, policy := range []session.Policy{session.PolicyClose, session.PolicyDropNewest, session.PolicyDropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			eachTransport(t, func(t *testing.T) { testSlowConsumer(t, policy) })
		})
	}
}

func testSlowConsumer(t *testing.T, policy session.Policy) {
	const (
		healthy  = 3
		msgSize  = 4 << 10
		window   = 16      // messages a healthy member may lag behind
		maxMsgs  = 4 << 10 // 16 MiB: far more than the stalled socket holds
		extra    = 32      // broadcasts after the policy first acts
		mailbox  = 64
		maxBytes = 256 << 10
	)
	var ref rtRef
	tr := newTracker()
	rt, url := start(t, joinHandler(&ref, "room", tr),
		runtime.WithMailbox(mailbox, maxBytes, policy),
		runtime.WithWriteTimeout(time.Minute), // only the policy deals with the stalled member
		runtime.WithCloseTimeout(300*time.Millisecond),
	)
	ref.p.Store(rt)

	// 64 KiB, not less: on loopback the MSS is about 64 KiB, and a receive
	// buffer smaller than one segment makes Linux keep the window shut
	// even after the application has read everything (a TCP stall that
	// has nothing to do with the session).
	stalled := rawDial(t, url, 64<<10)
	type member struct {
		c    *wire.Conn
		got  atomic.Int64 // messages received, all in order
		done chan error
	}
	ms := make([]*member, healthy)
	for i := range ms {
		m := &member{c: dial(t, url), done: make(chan error, 1)}
		ms[i] = m
		go func() {
			m.c.NetConn().SetReadDeadline(time.Now().Add(3 * bound))
			for {
				_, p, err := m.c.ReadMessage()
				if err != nil {
					m.done <- err
					return
				}
				_, seq, err := parseSeq(p)
				if err == nil && int64(seq) != m.got.Load() {
					err = fmt.Errorf("got seq %d, want %d", seq, m.got.Load())
				}
				if err != nil {
					m.done <- err
					return
				}
				m.got.Add(1)
			}
		}()
	}
	slow := tr.session(t, stalled.nc.LocalAddr())
	var room *runtime.Room
	eventually(t, bound, "every member to join", func() bool {
		var ok bool
		room, ok = rt.Room("room")
		return ok && room.Len() == healthy+1
	})

	// acted reports whether the policy has dealt with the stalled member.
	acted := func() bool {
		if policy == session.PolicyClose {
			return rt.Counters().ClosedSlow.Load() > 0
		}
		return slow.Dropped() > 0
	}
	// pace waits until every healthy member is at most window messages
	// behind seq: the healthy members must never fill their own mailboxes.
	pace := func(seq int) error {
		deadline := time.Now().Add(bound)
		for _, m := range ms {
			for m.got.Load() < int64(seq-window) {
				select {
				case err := <-m.done:
					return fmt.Errorf("healthy member failed: %v", err)
				default:
				}
				if time.Now().After(deadline) {
					return errors.New("a healthy member stopped receiving")
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		return nil
	}

	// The broadcasts run on a goroutine of their own: if one blocked on
	// the stalled member (which reads nothing until they are all done), the
	// test would say so instead of hanging.
	type result struct {
		sent     int
		accepted []int
		err      error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		after := -1
		for seq := 0; ; seq++ {
			if seq == maxMsgs {
				r.err = fmt.Errorf("%s never acted after %d broadcasts of %d bytes", policy, seq, msgSize)
				break
			}
			r.accepted = append(r.accepted, room.Broadcast(wire.OpBinary, seqMsg(0, uint32(seq), msgSize)))
			r.sent = seq + 1
			if err := pace(seq); err != nil {
				r.err = err
				break
			}
			if after < 0 && acted() {
				after = seq
			}
			if after >= 0 && seq >= after+extra {
				break
			}
		}
		res <- r
	}()
	var r result
	select {
	case r = <-res:
	case <-time.After(3 * bound):
		t.Fatal("Broadcast blocked on the stalled member")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("%s acted within %d broadcasts; stalled member dropped %d frames", policy, r.sent-extra, slow.Dropped())

	c := rt.Counters()
	switch policy {
	case session.PolicyClose:
		if err := tr.endErr(t, stalled.nc.LocalAddr()); !errors.Is(err, session.ErrSlowConsumer) {
			t.Errorf("stalled member ended with %v, want ErrSlowConsumer", err)
		}
		if n := c.ClosedSlow.Load(); n != 1 {
			t.Errorf("ClosedSlow = %d, want 1", n)
		}
		if d := c.DroppedNewest.Load() + c.DroppedOldest.Load(); d != 0 {
			t.Errorf("%d frames dropped under PolicyClose", d)
		}
		if last := r.accepted[len(r.accepted)-1]; last != healthy {
			t.Errorf("the last broadcast reached %d members, want the %d healthy ones", last, healthy)
		}
		// What the stalled client got is a gapless prefix, then the end.
		stalled.nc.SetReadDeadline(time.Now().Add(bound))
		for seq := uint32(0); ; seq++ {
			op, p, err := stalled.rd.Next()
			if err != nil {
				break
			}
			if op == wire.OpClose {
				if code, _, _ := wire.ParseClosePayload(p); code != wire.StatusPolicyViolation {
					t.Errorf("stalled member closed with %d, want 1008", code)
				}
				break
			}
			if _, got, _ := parseSeq(p); got != seq {
				t.Fatalf("stalled member got seq %d, want %d", got, seq)
			}
		}

	case session.PolicyDropNewest, session.PolicyDropOldest:
		if tr.hasEnded(stalled.nc.LocalAddr()) {
			t.Fatalf("stalled member closed under %s", policy)
		}
		dropped := slow.Dropped()
		want, other := &c.DroppedNewest, &c.DroppedOldest
		if policy == session.PolicyDropOldest {
			want, other = other, want
		}
		if n := want.Load(); n != dropped || n == 0 {
			t.Errorf("counter = %d, stalled member dropped %d; want equal and positive", n, dropped)
		}
		if n := other.Load(); n != 0 {
			t.Errorf("the other drop counter = %d", n)
		}
		if n := c.ClosedSlow.Load(); n != 0 {
			t.Errorf("ClosedSlow = %d under %s", n, policy)
		}
		// Let the stalled client read, and broadcast a last message until
		// every member takes it; the stalled one must then get, in order,
		// every broadcast not dropped, up to that last one. Its reader
		// hands each message over as it comes, and this goroutine, which
		// alone knows which broadcast is the last, tells when it came:
		// the last one may well reach the client before Broadcast (or
		// pace) returns, and a reader that was told too late would wait
		// for a message that will never come.
		type read struct {
			seq uint32
			err error
		}
		reads := make(chan read, 2*maxMsgs+1) // room for all that can come: the reader never waits
		go func() {
			stalled.nc.SetReadDeadline(time.Now().Add(2 * bound))
			for {
				op, p, err := stalled.rd.Next()
				if err == nil && op.IsControl() {
					continue // a heartbeat's ping, if the test runs long
				}
				var seq uint32
				if err == nil {
					_, seq, err = parseSeq(p)
				}
				reads <- read{seq, err}
				if err != nil {
					return
				}
			}
		}()
		seq := r.sent
		for ; ; seq++ {
			if seq == r.sent+maxMsgs {
				t.Fatal("the stalled member never took a broadcast again")
			}
			n := room.Broadcast(wire.OpBinary, seqMsg(0, uint32(seq), msgSize))
			if err := pace(seq); err != nil {
				t.Fatal(err)
			}
			if n == healthy+1 {
				break
			}
		}
		r.sent = seq + 1
		var seqs []uint32
		timeout := time.After(3 * bound)
		for len(seqs) == 0 || seqs[len(seqs)-1] != uint32(seq) {
			select {
			case m := <-reads:
				if m.err != nil {
					t.Fatalf("stalled member: %v after %d messages", m.err, len(seqs))
				}
				if n := len(seqs); n > 0 && m.seq <= seqs[n-1] {
					t.Fatalf("stalled member: seq %d after %d", m.seq, seqs[n-1])
				}
				seqs = append(seqs, m.seq)
			case <-timeout:
				t.Fatalf("the stalled member did not get the last broadcast, %d: %d messages", seq, len(seqs))
			}
		}
		if delivered, dropped := len(seqs), slow.Dropped(); uint64(delivered)+dropped != uint64(r.sent) {
			t.Errorf("stalled member: %d delivered + %d dropped != %d broadcast", delivered, dropped, r.sent)
		}
	}

	// The healthy members got everything, in order, and none was dropped.
	eventually(t, bound, "the healthy members to catch up", func() bool {
		for _, m := range ms {
			if m.got.Load() < int64(r.sent) {
				return false
			}
		}
		return true
	})
	for i, m := range ms {
		select {
		case err := <-m.done:
			t.Errorf("healthy member %d: %v", i, err)
		default:
		}
		s := tr.session(t, m.c.NetConn().LocalAddr())
		if d := s.Dropped(); d != 0 {
			t.Errorf("healthy member %d: %d frames dropped", i, d)
		}
	}
}

// TestRoomMembership covers the room API: Join, Leave, Len, Members,
// Rooms, BroadcastFrame with an exception, and removal of empty rooms.
func TestRoomMembership(t *testing.T) { eachTransport(t, testRoomMembership) }

func testRoomMembership(t *testing.T) {
	var ref rtRef
	tr := newTracker()
	rt, url := start(t, handler{open: func(s *session.Session) error { tr.opened(s); return nil }})
	ref.p.Store(rt)
	a, b := dial(t, url), dial(t, url)
	sa, sb := tr.session(t, a.NetConn().LocalAddr()), tr.session(t, b.NetConn().LocalAddr())

	r := rt.Join("r", sa)
	if r2 := rt.Join("r", sa); r2 != r || r.Len() != 1 {
		t.Fatalf("joining twice: room %p then %p, %d members", r, r2, r.Len())
	}
	rt.Join("r", sb)
	rt.Join("other", sb)
	if r.Name() != "r" || r.Len() != 2 {
		t.Fatalf("room %q has %d members, want r with 2", r.Name(), r.Len())
	}
	members := slices.Collect(r.Members())
	if len(members) != 2 || !slices.Contains(members, sa) || !slices.Contains(members, sb) {
		t.Fatalf("Members = %v", members)
	}
	var names []string
	for room := range rt.Rooms() {
		names = append(names, room.Name())
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"other", "r"}) {
		t.Fatalf("Rooms = %v", names)
	}

	// BroadcastFrame skips the exception and leaves the caller's reference.
	f := session.NewFrame(wire.OpText, []byte("not for a"))
	if n := r.BroadcastFrame(f, sa); n != 1 {
		t.Fatalf("BroadcastFrame reached %d, want 1", n)
	}
	f.Release()
	if n := r.Broadcast(wire.OpText, []byte("for all")); n != 2 {
		t.Fatalf("Broadcast reached %d, want 2", n)
	}
	for _, want := range []string{"not for a", "for all"} {
		b.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, p, err := b.ReadMessage(); err != nil || string(p) != want {
			t.Fatalf("b got %q, %v; want %q", p, err, want)
		}
	}
	a.NetConn().SetReadDeadline(time.Now().Add(bound))
	if _, p, err := a.ReadMessage(); err != nil || string(p) != "for all" {
		t.Fatalf("a got %q, %v; want %q", p, err, "for all")
	}

	if !r.Leave(sa) || r.Leave(sa) || r.Len() != 1 {
		t.Fatalf("Leave: %d members left", r.Len())
	}
	if rt.Leave("nowhere", sa) {
		t.Fatal("left a room that does not exist")
	}
	if !rt.Leave("r", sb) {
		t.Fatal("rt.Leave of a member returned false")
	}
	if _, ok := rt.Room("r"); ok {
		t.Fatal("empty room still registered")
	}
	// A new Join after the room emptied makes a new room.
	if r3 := rt.Join("r", sa); r3 == r || r3.Len() != 1 {
		t.Fatalf("join after emptying: same room %v, %d members", r3 == r, r3.Len())
	}
	// Ending a session takes it out of its rooms, and empty rooms go.
	a.CloseNow()
	b.CloseNow()
	eventually(t, bound, "the rooms to empty", func() bool {
		_, ok1 := rt.Room("r")
		_, ok2 := rt.Room("other")
		return !ok1 && !ok2 && rt.Len() == 0
	})
}

// TestJoinAfterSessionEnd joins a session that has already ended (from its
// OnClose, and later from another goroutine). Nothing should be joined, and
// no room without members should stay registered.
func TestJoinAfterSessionEnd(t *testing.T) { eachTransport(t, testJoinAfterSessionEnd) }

func testJoinAfterSessionEnd(t *testing.T) {
	var ref rtRef
	tr := newTracker()
	rt, url := start(t, handler{
		open: func(s *session.Session) error { tr.opened(s); return nil },
		close: func(s *session.Session, err error) {
			ref.get().Join("from-onclose", s)
			tr.closed(s, err)
		},
	})
	ref.p.Store(rt)
	c := dial(t, url)
	addr := c.NetConn().LocalAddr()
	s := tr.session(t, addr)
	c.CloseNow()
	tr.endErr(t, addr)
	rt.Join("later", s)
	for _, name := range []string{"from-onclose", "later"} {
		if r, ok := rt.Room(name); ok {
			t.Errorf("room %q registered with %d members after joining an ended session", name, r.Len())
		}
	}
}

// TestJoinRacingSessionEnd joins and leaves a room from another goroutine
// while the session ends. Whatever the interleaving, once the session has
// ended it must not be a member of any room. An anchor member keeps the
// room alive, and a third goroutine keeps its lock busy, which widens the
// window between Join finding the session live and Join recording the room
// in the session's registry entry.
func TestJoinRacingSessionEnd(t *testing.T) { eachTransport(t, testJoinRacingSessionEnd) }

func testJoinRacingSessionEnd(t *testing.T) {
	const sessions = 150
	var ref rtRef
	tr := newTracker()
	rt, url := start(t, handler{
		open:  func(s *session.Session) error { tr.opened(s); return nil },
		close: tr.closed,
	})
	ref.p.Store(rt)
	anchor := dial(t, url)
	room := rt.Join("race", tr.session(t, anchor.NetConn().LocalAddr()))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				room.Len()
			}
		}
	})
	leaked := 0
	for range sessions {
		c := dial(t, url)
		addr := c.NetConn().LocalAddr()
		s := tr.session(t, addr)
		var joiners sync.WaitGroup
		for range 4 {
			joiners.Go(func() {
				// Join and leave until the registry has forgotten the
				// session, ending on a Join.
				for {
					rt.Join("race", s)
					if _, live := rt.Session(s.ID()); !live {
						return
					}
					rt.Leave("race", s)
				}
			})
		}
		c.CloseNow()
		tr.endErr(t, addr)
		joiners.Wait()
		if slices.Contains(slices.Collect(room.Members()), s) {
			leaked++
			room.Leave(s) // clean up, to count the next ones
		}
	}
	if leaked > 0 {
		t.Fatalf("%d of %d ended sessions stayed members of the room they were joining as they ended", leaked, sessions)
	}
}
