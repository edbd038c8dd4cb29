package runtime_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	swrt "github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// telModes are the telemetry configurations BenchmarkTelemetry compares.
// "off" is the default: no option, and no global provider installed (no
// test or benchmark of this package installs one).
var telModes = []struct {
	name string
	opts func(b *testing.B) []swrt.Option
}{
	{"off", func(*testing.B) []swrt.Option { return nil }},
	{"noop", func(*testing.B) []swrt.Option {
		return []swrt.Option{swrt.WithTracerProvider(tracenoop.NewTracerProvider()),
			swrt.WithMeterProvider(metricnoop.NewMeterProvider())}
	}},
	{"sdk-trace-100", func(b *testing.B) []swrt.Option { return benchTracer(b, sdktrace.AlwaysSample()) }},
	{"sdk-trace-1", func(b *testing.B) []swrt.Option { return benchTracer(b, sdktrace.TraceIDRatioBased(0.01)) }},
	{"sdk-metrics", func(b *testing.B) []swrt.Option {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { mp.Shutdown(context.Background()) })
		return []swrt.Option{swrt.WithMeterProvider(mp)}
	}},
}

// benchTracer is an SDK tracer provider as deployed: a sampler and a batch
// span processor, whose exporter discards the spans.
func benchTracer(b *testing.B, s sdktrace.Sampler) []swrt.Option {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	return []swrt.Option{swrt.WithTracerProvider(tp)}
}

// BenchmarkTelemetry measures the cost of the instrumentation in one run,
// with each configuration of telModes: an echo of 32 bytes (client write,
// OnMessage, Send, client read), and Room.Broadcast of 128 bytes to a room
// of 100 members, 16 broadcasts back to back (well within the mailboxes)
// until every member has read all 16.
//
// On a shared machine, loopback round trips vary by more than the 3% this
// is meant to resolve. So each configuration runs side by side with a
// runtime of its own that has telemetry off, in the same process, and the
// benchmark alternates between the two every iteration (in alternating
// order): load from elsewhere hits both alike. ns/op is the measured
// configuration's time per echo or per broadcast, off-ns/op that of its
// "off" twin, and x-off their ratio (1.00: no overhead). The "off" row pairs
// two "off" runtimes: its x-off shows the noise floor. allocs/op and B/op
// count the whole process, both runtimes, per echo or broadcast; the "off"
// twin allocates nothing.
//
//	go test -run '^$' -bench BenchmarkTelemetry -count 5 ./runtime/
func BenchmarkTelemetry(b *testing.B) {
	for _, w := range []struct {
		name string
		ops  int // operations per call of the rig's function
		rig  func(b *testing.B, opts []swrt.Option) func()
	}{
		{"echo-32B", 1, echoRig},
		{"broadcast-100", broadcastBatch, broadcastRig},
	} {
		b.Run(w.name, func(b *testing.B) {
			for _, m := range telModes {
				b.Run(m.name, func(b *testing.B) {
					off := w.rig(b, nil)
					on := w.rig(b, m.opts(b))
					for range 100 { // warm the pools of both
						off()
						on()
					}
					var tOff, tOn time.Duration
					var before, after runtime.MemStats
					n := 0
					b.ReportAllocs() // printed from the allocs/op and B/op reported below
					runtime.ReadMemStats(&before)
					for b.Loop() {
						first, second := off, on
						if n&1 == 1 {
							first, second = on, off
						}
						t0 := time.Now()
						first()
						t1 := time.Now()
						second()
						t2 := time.Now()
						if n&1 == 1 {
							tOn, tOff = tOn+t1.Sub(t0), tOff+t2.Sub(t1)
						} else {
							tOff, tOn = tOff+t1.Sub(t0), tOn+t2.Sub(t1)
						}
						n++
					}
					runtime.ReadMemStats(&after)
					ops := float64(n * w.ops)
					b.ReportMetric(float64(tOn.Nanoseconds())/ops, "ns/op")
					b.ReportMetric(float64(tOff.Nanoseconds())/ops, "off-ns/op")
					b.ReportMetric(float64(tOn)/float64(tOff), "x-off")
					b.ReportMetric(float64(after.Mallocs-before.Mallocs)/ops, "allocs/op")
					b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/ops, "B/op")
				})
			}
		})
	}
}

// echoRig starts an echo runtime with opts and a client, and returns one
// echo of 32 bytes.
func echoRig(b *testing.B, opts []swrt.Option) func() {
	// A benchmark sends as fast as it can: the default message rate
	// (1,000 a second) would pace it.
	_, url := start(b, echo, append(opts, swrt.WithMessageRate(-1, 0))...)
	c := dial(b, url)
	p := make([]byte, 32)
	return func() {
		if err := c.WriteMessage(wire.OpBinary, p); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// broadcastBatch is the number of broadcasts a call of broadcastRig's
// function makes.
const broadcastBatch = 16

// broadcastRig starts a runtime with opts and a room of 100 members, each
// read by a goroutine of its own, and returns a function that broadcasts
// broadcastBatch messages of 128 bytes and waits (parked, not spinning)
// until every member has read them.
func broadcastRig(b *testing.B, opts []swrt.Option) func() {
	const members = 100
	var ref rtRef
	rt, url := start(b, handler{open: func(s *session.Session) error { ref.get().Join("room", s); return nil }}, opts...)
	ref.p.Store(rt)
	var received, want atomic.Int64
	var failed atomic.Bool
	done := make(chan struct{}, 1) // the reader that completes a batch says so
	for range members {
		c := dial(b, url)
		go func() { // ends when the connection is closed, after the benchmark
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					if failed.CompareAndSwap(false, true) {
						done <- struct{}{}
					}
					return
				}
				if received.Add(1) == want.Load() {
					done <- struct{}{}
				}
			}
		}()
	}
	waitFor(b, func() bool { r, ok := rt.Room("room"); return ok && r.Len() == members })
	room, _ := rt.Room("room")
	msg := make([]byte, 128)
	return func() {
		want.Add(broadcastBatch * members) // before the first delivery
		for range broadcastBatch {
			if n := room.Broadcast(wire.OpBinary, msg); n != members {
				b.Fatalf("broadcast reached %d members, want %d", n, members)
			}
		}
		<-done
		if failed.Load() {
			b.Fatal("a member's read failed")
		}
	}
}
