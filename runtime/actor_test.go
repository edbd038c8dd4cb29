package runtime_test

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestActorGuarantees hammers one session from 16 goroutines (Send,
// SendFrame and Enqueue) while its client sends messages that the session
// echoes, and checks the actor's promises: callbacks never overlap,
// OnOpen comes first and OnClose once and last, and every frame sent
// reaches the client exactly once, in order per sender.
func TestActorGuarantees(t *testing.T) { eachTransport(t, testActorGuarantees) }

func testActorGuarantees(t *testing.T) {
	const (
		senders    = 16
		perSender  = 200
		clientMsgs = 200
		echoStream = senders // the stream id of the echoes
	)
	var (
		inCallback atomic.Int32
		overlaps   atomic.Int32
		opens      atomic.Int32
		messages   atomic.Int32
		closes     atomic.Int32
		misordered atomic.Int32
	)
	enter := func() {
		if inCallback.Add(1) != 1 {
			overlaps.Add(1)
		}
		goruntime.Gosched() // widen the window an overlap would need
	}
	exit := func() { inCallback.Add(-1) }
	opened := make(chan *session.Session, 1)
	closed := make(chan error, 1)
	h := handler{
		open: func(s *session.Session) error {
			enter()
			defer exit()
			if opens.Add(1) != 1 || messages.Load() != 0 || closes.Load() != 0 {
				misordered.Add(1)
			}
			opened <- s
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			enter()
			defer exit()
			messages.Add(1)
			if opens.Load() != 1 || closes.Load() != 0 {
				misordered.Add(1)
			}
			_, seq, err := parseSeq(m.Data)
			if err != nil {
				return err
			}
			return s.Send(wire.OpBinary, seqMsg(echoStream, seq, 8))
		},
		close: func(s *session.Session, err error) {
			enter()
			defer exit()
			if closes.Add(1) != 1 || opens.Load() != 1 {
				misordered.Add(1)
			}
			closed <- err
		},
	}
	// The mailbox holds everything at once: this test is about ordering,
	// not backpressure.
	rt, url := start(t, h, runtime.WithMailbox(1<<13, 8<<20, session.PolicyClose))
	c := dial(t, url)
	var s *session.Session
	select {
	case s = <-opened:
	case <-time.After(bound):
		t.Fatal("OnOpen not called")
	}

	// The client reads everything in a goroutine and checks the order.
	readErr := make(chan error, 1)
	go func() {
		sc := newSeqChecker(senders + 1)
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		for range senders*perSender + clientMsgs {
			_, p, err := c.ReadMessage()
			if err == nil {
				err = sc.check(p)
			}
			if err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()

	startLine := make(chan struct{})
	var wg sync.WaitGroup
	sendErrs := make(chan error, senders+1)
	for g := range senders {
		wg.Go(func() {
			<-startLine
			for i := range perSender {
				p := seqMsg(uint32(g), uint32(i), 8+g)
				var err error
				switch g % 3 {
				case 0:
					err = s.Send(wire.OpBinary, p)
				case 1:
					f := session.NewFrame(wire.OpBinary, p)
					err = s.SendFrame(f)
				case 2:
					f := session.NewFrame(wire.OpBinary, p)
					err = s.Enqueue(f, session.PolicyDropNewest)
				}
				if err != nil {
					sendErrs <- fmt.Errorf("sender %d, seq %d: %w", g, i, err)
					return
				}
				if i%16 == 0 {
					goruntime.Gosched()
				}
			}
		})
	}
	wg.Go(func() {
		<-startLine
		for i := range clientMsgs {
			if err := c.WriteMessage(wire.OpBinary, seqMsg(99, uint32(i), 8)); err != nil {
				sendErrs <- fmt.Errorf("client write %d: %w", i, err)
				return
			}
		}
	})
	close(startLine)
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Error(err)
	}
	if err := <-readErr; err != nil {
		t.Fatalf("client: %v", err)
	}

	if err := c.Close(wire.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	select {
	case err := <-closed:
		wantClose(t, err, wire.StatusNormalClosure, "bye")
	case <-time.After(bound):
		t.Fatal("OnClose not called")
	}
	eventually(t, bound, "the registry to empty", func() bool { return rt.Len() == 0 })

	if n := overlaps.Load(); n != 0 {
		t.Errorf("callbacks overlapped %d times", n)
	}
	if n := misordered.Load(); n != 0 {
		t.Errorf("%d callbacks out of order (OnOpen first, OnClose last)", n)
	}
	if o, m, cl := opens.Load(), messages.Load(), closes.Load(); o != 1 || m != clientMsgs || cl != 1 {
		t.Errorf("OnOpen %d, OnMessage %d, OnClose %d times; want 1, %d, 1", o, m, cl, clientMsgs)
	}
	if err := s.Send(wire.OpText, []byte("late")); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Send after the end: %v, want ErrClosed", err)
	}
	if err := s.Enqueue(session.NewFrame(wire.OpText, nil), session.PolicyClose); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Enqueue after the end: %v, want ErrClosed", err)
	}
	select {
	case <-s.Context().Done():
	default:
		t.Error("the session's context is not done after OnClose")
	}
	if _, ok := rt.Session(s.ID()); ok {
		t.Error("the session is still in the registry")
	}
}

// TestSessionsRunInParallel checks the other half of the actor model:
// callbacks of different sessions are not serialised with each other. One
// session's OnMessage waits until another's has started; if callbacks of
// different sessions were run one at a time, it would wait forever.
func TestSessionsRunInParallel(t *testing.T) { eachTransport(t, testSessionsRunInParallel) }

func testSessionsRunInParallel(t *testing.T) {
	first := make(chan struct{})
	var once sync.Once
	h := handler{msg: func(s *session.Session, m session.Message) error {
		switch string(m.Data) {
		case "wait":
			select {
			case <-first:
			case <-time.After(bound):
				return errors.New("the other session's callback never ran")
			}
		case "go":
			once.Do(func() { close(first) })
		}
		return s.Send(m.Op, m.Data)
	}}
	_, url := start(t, h)
	a, b := dial(t, url), dial(t, url)
	if err := a.WriteMessage(wire.OpText, []byte("wait")); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteMessage(wire.OpText, []byte("go")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wire.Conn{a, b} {
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, p, err := c.ReadMessage(); err != nil {
			t.Fatalf("%v (got %q)", err, p)
		}
	}
}
