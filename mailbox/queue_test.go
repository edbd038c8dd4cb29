package mailbox

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
	"weak"
)

var seedFlag = flag.Uint64("mailbox.seed", 1, "seed for the randomized tests of package mailbox")

func TestNewCapacity(t *testing.T) {
	tests := []struct{ in, want int }{
		{0, 2}, {1, 2}, {2, 2}, {3, 4}, {4, 4}, {5, 8},
		{1000, 1024}, {1024, 1024}, {1025, 2048},
	}
	for _, tt := range tests {
		if got := New[int](tt.in).Cap(); got != tt.want {
			t.Errorf("New(%d).Cap() = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestNewPanics(t *testing.T) {
	for _, c := range []int{-1, maxCapacity + 1, int(^uint(0) >> 1)} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", c)
				}
			}()
			New[int](c)
		})
	}
}

func TestZeroQueuePanics(t *testing.T) {
	var q Queue[int]
	defer func() {
		if recover() == nil {
			t.Error("TryPush on a zero Queue did not panic")
		}
	}()
	q.TryPush(1)
}

// TestLayout checks the padding claims: the fields written by producers,
// by consumers and the read-only ones are at least a cache line apart, and a
// slot costs 8 bytes plus its value, rounded up to 8.
func TestLayout(t *testing.T) {
	var q Queue[int]
	readOnlyEnd := unsafe.Offsetof(q.slots) + unsafe.Sizeof(q.slots)
	if d := unsafe.Offsetof(q.tail) - readOnlyEnd; d < cacheLine {
		t.Errorf("tail is %d bytes after the read-only fields, want >= %d", d, cacheLine)
	}
	if d := unsafe.Offsetof(q.head) - unsafe.Offsetof(q.tail); d < cacheLine {
		t.Errorf("head is %d bytes after tail, want >= %d", d, cacheLine)
	}
	if d := unsafe.Sizeof(q) - unsafe.Offsetof(q.head); d < cacheLine {
		t.Errorf("head is %d bytes before the end, want >= %d", d, cacheLine)
	}
	if unsafe.Sizeof(q) > 256 {
		t.Errorf("Queue header is %d bytes, doc says about 224", unsafe.Sizeof(q))
	}
	// 8 bytes of sequence plus the value, rounded up to 8 (atomic.Uint64 is
	// 8-byte aligned on 32-bit platforms too).
	slotSize := func(valueSize uintptr) uintptr { return (8 + valueSize + 7) &^ 7 }
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"byte", unsafe.Sizeof(slot[byte]{}), 16},
		{"int64", unsafe.Sizeof(slot[int64]{}), 16},
		{"pointer", unsafe.Sizeof(slot[*int]{}), 16},
		{"[]byte", unsafe.Sizeof(slot[[]byte]{}), slotSize(unsafe.Sizeof([]byte(nil)))},
		{"[20]byte", unsafe.Sizeof(slot[[20]byte]{}), 32},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("sizeof slot[%s] = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestFillAndDrain(t *testing.T) {
	tests := []struct{ capacity, want int }{{1, 2}, {3, 4}, {1024, 1024}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("capacity=%d", tt.capacity), func(t *testing.T) {
			q := New[int](tt.capacity)
			if q.Cap() != tt.want {
				t.Fatalf("Cap() = %d, want %d", q.Cap(), tt.want)
			}
			for round := range 3 { // the second and third rounds start mid-ring
				for i := range tt.want {
					if q.Len() != i {
						t.Fatalf("round %d: Len() = %d before push %d", round, q.Len(), i)
					}
					if !q.TryPush(round*10000 + i) {
						t.Fatalf("round %d: TryPush %d failed below capacity", round, i)
					}
				}
				if q.TryPush(-1) {
					t.Fatalf("round %d: TryPush succeeded on a full queue", round)
				}
				if q.Len() != tt.want {
					t.Fatalf("round %d: Len() = %d when full, want %d", round, q.Len(), tt.want)
				}
				for i := range tt.want {
					v, ok := q.Pop()
					if !ok || v != round*10000+i {
						t.Fatalf("round %d: Pop() = %d, %v, want %d, true", round, v, ok, round*10000+i)
					}
				}
				if v, ok := q.Pop(); ok {
					t.Fatalf("round %d: Pop() on empty queue = %d, true", round, v)
				}
				if got := q.PopBatch(make([]int, 0, 4)); len(got) != 0 {
					t.Fatalf("round %d: PopBatch on empty queue = %v", round, got)
				}
				if q.Len() != 0 {
					t.Fatalf("round %d: Len() = %d when empty", round, q.Len())
				}
				// Shift the start of the next round by one slot.
				q.TryPush(0)
				q.Pop()
			}
		})
	}
}

func TestPopBatch(t *testing.T) {
	tests := []struct {
		name             string
		capacity, queued int
		dstLen, dstCap   int
		wantTaken        int
	}{
		{"empty queue", 8, 0, 0, 4, 0},
		{"empty queue, no room", 8, 0, 2, 2, 0},
		{"room limits", 8, 6, 0, 3, 3},
		{"room limits with prefix", 8, 6, 2, 5, 3},
		{"queue limits", 8, 5, 0, 100, 5},
		{"capacity limits", 4, 4, 0, 100, 4},
		{"no room takes one", 8, 3, 3, 3, 1},
		{"room of one", 8, 3, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[int](tt.capacity)
			// Start mid-ring so the batch wraps around the end of the slots.
			for range tt.capacity - 1 {
				q.TryPush(0)
				q.Pop()
			}
			for i := range tt.queued {
				q.TryPush(100 + i)
			}
			dst := make([]int, tt.dstLen, tt.dstCap)
			for i := range dst {
				dst[i] = -1 - i
			}
			prefix := slices.Clone(dst)
			got := q.PopBatch(dst)
			if len(got) != tt.dstLen+tt.wantTaken {
				t.Fatalf("PopBatch took %d items, want %d (got %v)", len(got)-tt.dstLen, tt.wantTaken, got)
			}
			if !slices.Equal(got[:tt.dstLen], prefix) {
				t.Errorf("PopBatch changed the prefix: %v, want %v", got[:tt.dstLen], prefix)
			}
			for i, v := range got[tt.dstLen:] {
				if v != 100+i {
					t.Errorf("item %d = %d, want %d", i, v, 100+i)
				}
			}
			if q.Len() != tt.queued-tt.wantTaken {
				t.Errorf("Len() = %d after PopBatch, want %d", q.Len(), tt.queued-tt.wantTaken)
			}
			// The rest follows in order.
			for i := tt.wantTaken; i < tt.queued; i++ {
				if v, ok := q.Pop(); !ok || v != 100+i {
					t.Fatalf("Pop() = %d, %v, want %d, true", v, ok, 100+i)
				}
			}
		})
	}
}

// TestAgainstModel runs a long random single-goroutine sequence of
// operations, wrapping around the ring many times, against a slice model.
func TestAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(*seedFlag, 1))
	for _, capacity := range []int{2, 4, 16, 1 + rng.IntN(100)} {
		t.Run(fmt.Sprintf("capacity=%d", capacity), func(t *testing.T) {
			q := New[uint64](capacity)
			var model []uint64
			var next uint64
			for op := range 20000 {
				switch r := rng.IntN(10); {
				case r < 5:
					ok := q.TryPush(next)
					if want := len(model) < q.Cap(); ok != want {
						t.Fatalf("op %d: TryPush = %v with %d of %d queued", op, ok, len(model), q.Cap())
					}
					if ok {
						model = append(model, next)
						next++
					}
				case r < 8:
					v, ok := q.Pop()
					if ok != (len(model) > 0) || ok && v != model[0] {
						t.Fatalf("op %d: Pop() = %d, %v, model %v", op, v, ok, model)
					}
					if ok {
						model = model[1:]
					}
				default:
					room := rng.IntN(q.Cap() + 3)
					got := q.PopBatch(make([]uint64, 0, room))
					n := min(max(room, 1), len(model))
					if !slices.Equal(got, model[:n]) {
						t.Fatalf("op %d: PopBatch(room %d) = %v, model %v", op, room, got, model)
					}
					model = model[n:]
				}
				if q.Len() != len(model) {
					t.Fatalf("op %d: Len() = %d, want %d", op, q.Len(), len(model))
				}
			}
			if laps := next / uint64(q.Cap()); laps < 10 {
				t.Errorf("only %d laps around the ring", laps)
			}
		})
	}
}

func TestInitEmbedded(t *testing.T) {
	var s struct {
		name string
		q    Queue[string]
	}
	s.q.Init(3)
	if s.q.Cap() != 4 {
		t.Fatalf("Cap() = %d, want 4", s.q.Cap())
	}
	s.q.TryPush("a")
	s.q.TryPush("b")
	if v, ok := s.q.Pop(); !ok || v != "a" {
		t.Fatalf("Pop() = %q, %v, want a, true", v, ok)
	}
	s.q.Init(2) // discards "b"
	if s.q.Len() != 0 || s.q.Cap() != 2 {
		t.Fatalf("after re-Init: Len() = %d, Cap() = %d, want 0, 2", s.q.Len(), s.q.Cap())
	}
	if v, ok := s.q.Pop(); ok {
		t.Fatalf("Pop() after re-Init = %q, true", v)
	}
}

// TestPoppedSlotsZeroed inspects the slots: every slot not holding a queued
// item holds the zero value.
func TestPoppedSlotsZeroed(t *testing.T) {
	q := New[*int](8)
	checkSlots := func(step string) {
		t.Helper()
		head, tail := q.head.Load(), q.tail.Load()
		for pos := tail; pos < head+uint64(q.Cap()); pos++ {
			if v := q.slots[pos&q.mask].val; v != nil {
				t.Fatalf("%s: free slot of position %d still holds %p", step, pos, v)
			}
		}
	}
	for round := range 5 {
		for range 6 {
			q.TryPush(new(int))
		}
		q.Pop()
		checkSlots(fmt.Sprintf("round %d after Pop", round))
		q.PopBatch(make([]*int, 0, 3))
		checkSlots(fmt.Sprintf("round %d after PopBatch", round))
		for {
			if _, ok := q.Pop(); !ok {
				break
			}
		}
		checkSlots(fmt.Sprintf("round %d after draining", round))
	}
}

type payload [64]byte // big enough to avoid the tiny allocator

//go:noinline
func pushPayloads(q *Queue[*payload], n int) []weak.Pointer[payload] {
	ws := make([]weak.Pointer[payload], n)
	for i := range ws {
		p := new(payload)
		ws[i] = weak.Make(p)
		q.TryPush(p)
	}
	return ws
}

// TestPoppedItemsCollectable checks from the outside that the queue does not
// keep popped items alive, and does keep queued ones.
func TestPoppedItemsCollectable(t *testing.T) {
	q := New[*payload](8)
	ws := pushPayloads(q, 5)
	q.Pop()
	clear(q.PopBatch(make([]*payload, 0, 2)))
	runtime.GC()
	runtime.GC()
	for i, w := range ws {
		alive := w.Value() != nil
		if want := i >= 3; alive != want {
			t.Errorf("item %d alive = %v, want %v", i, alive, want)
		}
	}
	runtime.KeepAlive(q)
}

func TestNoAllocs(t *testing.T) {
	type frame struct {
		op  int
		buf []byte
	}
	q := New[frame](16)
	f := frame{op: 1, buf: make([]byte, 8)}
	dst := make([]frame, 0, 8)
	tests := []struct {
		name string
		fn   func()
	}{
		{"TryPush", func() {
			q.TryPush(f)
			q.Pop() // keeps the queue from filling; measured below too
		}},
		{"Pop", func() {
			q.Pop()
			q.TryPush(f)
		}},
		{"PopBatch", func() {
			q.TryPush(f)
			q.TryPush(f)
			dst = q.PopBatch(dst[:0])
		}},
		{"TryPush full", func() {
			for q.TryPush(f) {
			}
			q.PopBatch(dst[:0])
		}},
		{"Len and Cap", func() { _ = q.Len() + q.Cap() }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, n)
		}
	}
}

// stuckAfter is how long runConcurrent waits without any push or pop before
// it declares the queue stuck.
const stuckAfter = 10 * time.Second

type item struct {
	producer int
	seq      int
}

type dropMode int

const (
	noDrop     dropMode = iota
	dropper             // an extra goroutine pops concurrently with the consumer
	dropOldest          // a producer that finds the queue full pops the oldest item
)

func (m dropMode) String() string {
	return [...]string{"no-drop", "dropper", "drop-oldest"}[m]
}

// TestConcurrent pushes (producer, seq) items from several producers and pops
// them from one consumer, plus a dropping goroutine or dropping producers,
// and checks that every item is popped exactly once and that each popper sees
// each producer's items in order.
func TestConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(*seedFlag, 2))
	const maxItems = 40000 // per run, across producers
	for _, producers := range []int{1, 4, 16} {
		for _, mode := range []dropMode{noDrop, dropper, dropOldest} {
			for round := range 3 {
				capacity := 1 + rng.IntN(64)
				if rng.IntN(2) == 0 {
					capacity = 1 << rng.IntN(9)
				}
				perProducer := 1 + rng.IntN(maxItems/producers)
				seed := rng.Uint64()
				name := fmt.Sprintf("producers=%d/%v/%d", producers, mode, round)
				t.Run(name, func(t *testing.T) {
					t.Logf("capacity %d, %d items per producer", capacity, perProducer)
					runConcurrent(t, producers, perProducer, capacity, mode, seed)
				})
			}
		}
	}
}

func runConcurrent(t *testing.T, producers, perProducer, capacity int, mode dropMode, seed uint64) {
	t.Helper()
	q := New[item](capacity)
	var (
		progress    atomic.Int64 // successful pushes and pops
		stuck       atomic.Bool  // set by the watchdog; every loop gives up
		pushersDone atomic.Bool
		pushers     sync.WaitGroup
		poppers     sync.WaitGroup
		popped      [][]item // one list per popper: consumer, dropper, producers
	)
	numPoppers := 1
	switch mode {
	case dropper:
		numPoppers = 2
	case dropOldest:
		numPoppers = 1 + producers
	}
	popped = make([][]item, numPoppers)

	// popUntilDone pops with Pop or PopBatch until the producers are done
	// and the queue is empty. Once all pushes have returned, every claimed
	// position is published, so a Pop that fails after seeing done means
	// the queue is empty.
	popUntilDone := func(out *[]item, rng *rand.Rand, lazy bool) {
		defer poppers.Done()
		batch := make([]item, 0, 8)
		for !stuck.Load() {
			done := pushersDone.Load()
			if lazy && !done && q.Len() < q.Cap()/2 {
				runtime.Gosched()
				continue
			}
			var got []item
			if rng.IntN(2) == 0 {
				// A prefix of stale items exercises a dst with len > 0;
				// k == cap exercises a dst without room.
				k := rng.IntN(cap(batch) + 1)
				got = q.PopBatch(batch[:k])[k:]
			} else if v, ok := q.Pop(); ok {
				got = append(batch[:0], v)
			}
			if len(got) == 0 {
				if done {
					return
				}
				runtime.Gosched()
				continue
			}
			*out = append(*out, got...)
			progress.Add(int64(len(got)))
		}
	}

	poppers.Add(1)
	go popUntilDone(&popped[0], rand.New(rand.NewPCG(seed, 0)), false)
	if mode == dropper {
		poppers.Add(1)
		go popUntilDone(&popped[1], rand.New(rand.NewPCG(seed, 1)), true)
	}
	for p := range producers {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			for i := 0; i < perProducer && !stuck.Load(); {
				if q.TryPush(item{p, i}) {
					progress.Add(1)
					i++
					continue
				}
				if mode == dropOldest {
					if v, ok := q.Pop(); ok {
						progress.Add(1)
						popped[1+p] = append(popped[1+p], v)
						continue
					}
				}
				runtime.Gosched()
			}
		}()
	}
	// A lost or stranded item makes the loops above spin forever. The
	// watchdog turns that into a failure with a diagnosis, once nothing has
	// moved for stuckAfter; this bounds a hang, it does not time the queue.
	watchdogDone := make(chan struct{})
	defer close(watchdogDone)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, since := progress.Load(), time.Now()
		for {
			select {
			case <-watchdogDone:
				return
			case <-tick.C:
			}
			if n := progress.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > stuckAfter {
				stuck.Store(true)
				return
			}
		}
	}()
	pushers.Wait()
	pushersDone.Store(true)
	poppers.Wait()
	if stuck.Load() {
		t.Fatalf("no progress for %v: head %d, tail %d, Len %d, pushers done %v",
			stuckAfter, q.head.Load(), q.tail.Load(), q.Len(), pushersDone.Load())
	}

	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, perProducer)
	}
	for who, list := range popped {
		last := make([]int, producers)
		for p := range last {
			last[p] = -1
		}
		for _, it := range list {
			if it.producer < 0 || it.producer >= producers || it.seq < 0 || it.seq >= perProducer {
				t.Fatalf("popper %d: popped bogus item %+v", who, it)
			}
			if seen[it.producer][it.seq] {
				t.Fatalf("popper %d: item %+v popped twice", who, it)
			}
			seen[it.producer][it.seq] = true
			if it.seq <= last[it.producer] {
				t.Fatalf("popper %d: item %+v popped after seq %d of the same producer", who, it, last[it.producer])
			}
			last[it.producer] = it.seq
		}
	}
	for p := range seen {
		for i, ok := range seen[p] {
			if !ok {
				t.Fatalf("item {%d %d} lost", p, i)
			}
		}
	}
	if q.Len() != 0 {
		t.Errorf("Len() = %d after draining", q.Len())
	}
	if mode != noDrop {
		t.Logf("consumer popped %d of %d items", len(popped[0]), producers*perProducer)
	}
}

// TestNewAllocations checks the allocation budget of the package doc: New
// allocates the header and the slots, Init only the slots.
func TestNewAllocations(t *testing.T) {
	var sink *Queue[*int]
	if n := testing.AllocsPerRun(100, func() { sink = New[*int](64) }); n != 2 {
		t.Errorf("New: %v allocations, want 2", n)
	}
	var q Queue[*int]
	if n := testing.AllocsPerRun(100, func() { q.Init(64) }); n != 1 {
		t.Errorf("Init: %v allocations, want 1", n)
	}
	runtime.KeepAlive(sink)
}
