package mailbox

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/puzpuzpuz/xsync/v3"
)

// benchCapacity is the capacity of every queue in the benchmarks.
const benchCapacity = 1024

// benchMsg stands for an outbound frame; the queues carry pointers to it, as
// a session's mailbox does.
type benchMsg struct{ payload []byte }

var benchFrame = &benchMsg{payload: make([]byte, 64)}

// share returns how many of n items producer i of p pushes.
func share(n, p, i int) int {
	k := n / p
	if i < n%p {
		k++
	}
	return k
}

var benchProducers = []int{1, 4, 16}

// BenchmarkMPSC moves b.N items from P producers to one consumer, so ns/op is
// the cost per item. Producers of the lock-free queues retry a full queue
// after runtime.Gosched, and their consumer polls an empty one the same way;
// the channel's goroutines block instead. All goroutines have ended when each
// sub-benchmark returns.
func BenchmarkMPSC(b *testing.B) {
	impls := []struct {
		name string
		run  func(b *testing.B, producers int)
	}{
		{"mailbox", benchMailbox},
		{"mailbox-batch", benchMailboxBatch},
		{"chan", benchChan},
		{"xsync", benchXsync},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			for _, p := range benchProducers {
				b.Run(fmt.Sprintf("producers=%d", p), func(b *testing.B) {
					b.ReportAllocs()
					impl.run(b, p)
				})
			}
		})
	}
}

func benchMailbox(b *testing.B, producers int) {
	q := New[*benchMsg](benchCapacity)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range producers {
		wg.Go(func() {
			for n := share(b.N, producers, i); n > 0; {
				if q.TryPush(benchFrame) {
					n--
				} else {
					runtime.Gosched()
				}
			}
		})
	}
	for n := b.N; n > 0; {
		if _, ok := q.Pop(); ok {
			n--
		} else {
			runtime.Gosched()
		}
	}
	wg.Wait()
}

func benchMailboxBatch(b *testing.B, producers int) {
	q := New[*benchMsg](benchCapacity)
	batch := make([]*benchMsg, 0, 64)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range producers {
		wg.Go(func() {
			for n := share(b.N, producers, i); n > 0; {
				if q.TryPush(benchFrame) {
					n--
				} else {
					runtime.Gosched()
				}
			}
		})
	}
	for n := b.N; n > 0; {
		batch = q.PopBatch(batch[:0])
		if len(batch) > 0 {
			n -= len(batch)
		} else {
			runtime.Gosched()
		}
	}
	wg.Wait()
}

func benchChan(b *testing.B, producers int) {
	ch := make(chan *benchMsg, benchCapacity)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range producers {
		wg.Go(func() {
			for n := share(b.N, producers, i); n > 0; n-- {
				ch <- benchFrame
			}
		})
	}
	for range b.N {
		<-ch
	}
	wg.Wait()
}

func benchXsync(b *testing.B, producers int) {
	q := xsync.NewMPMCQueueOf[*benchMsg](benchCapacity)
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range producers {
		wg.Go(func() {
			for n := share(b.N, producers, i); n > 0; {
				if q.TryEnqueue(benchFrame) {
					n--
				} else {
					runtime.Gosched()
				}
			}
		})
	}
	for n := b.N; n > 0; {
		if _, ok := q.TryDequeue(); ok {
			n--
		} else {
			runtime.Gosched()
		}
	}
	wg.Wait()
}

// BenchmarkPushPop pushes and pops one item per op on one goroutine: the
// uncontended cost of the two operations.
func BenchmarkPushPop(b *testing.B) {
	b.Run("mailbox", func(b *testing.B) {
		b.ReportAllocs()
		q := New[*benchMsg](benchCapacity)
		for range b.N {
			q.TryPush(benchFrame)
			q.Pop()
		}
	})
	b.Run("chan", func(b *testing.B) {
		b.ReportAllocs()
		ch := make(chan *benchMsg, benchCapacity)
		for range b.N {
			ch <- benchFrame
			<-ch
		}
	})
	b.Run("xsync", func(b *testing.B) {
		b.ReportAllocs()
		q := xsync.NewMPMCQueueOf[*benchMsg](benchCapacity)
		for range b.N {
			q.TryEnqueue(benchFrame)
			q.TryDequeue()
		}
	})
}
