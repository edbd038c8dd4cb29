package chatserver_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
)

// TestTraces: with tracing on, what a client's event makes the chat send
// to a room is in the trace of that event: a message and the typing
// indicator are children of their message's receive span, and each
// member's delivery of a message is a deliver span with the member's
// name.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	_, url := server(t, chatserver.Config{Runtime: []runtime.Option{runtime.WithTracerProvider(tp)}})

	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	wantPresence(alice, "lobby", "bob", true)
	bob.ok(send, "lobby", text("hello"))
	wantMessages(alice, "lobby", "hello")
	bob.emit(typing, "lobby", nil)
	event[chatserver.Typing](alice, typing, "lobby")

	spans := func(name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}
	byID := func(id [8]byte) sdktrace.ReadOnlySpan {
		for _, s := range rec.Ended() {
			if s.SpanContext().SpanID() == id {
				return s
			}
		}
		return nil
	}
	// Four publishes: alice's and bob's arrivals, the message and the
	// typing. The arrivals are told outside any message's handling
	// (runtime.Presence's Changed), in traces of their own. A receive
	// span ends after its handler has returned: wait for both.
	parents := map[string]int{}
	waitFor(t, "the message's and the typing's publish spans under their receive spans", func() bool {
		clear(parents)
		for _, p := range spans("publish") {
			if parent := byID(p.Parent().SpanID()); parent != nil {
				parents[parent.Name()]++
			}
		}
		return len(spans("publish")) >= 4 && parents["receive"] >= 2
	})
	if len(spans("publish")) != 4 || parents["receive"] != 2 {
		t.Errorf("%d publish spans, parents %v; want 4, 2 of them under receive spans", len(spans("publish")), parents)
	}

	// Bob's message reached alice: her deliver span is in its trace.
	var delivered bool
	for _, d := range spans("deliver") {
		for _, kv := range d.Attributes() {
			if kv.Key == "user.id" && kv.Value.AsString() == "alice" {
				delivered = delivered || byID(d.Parent().SpanID()) != nil && byID(d.Parent().SpanID()).Name() == "publish"
			}
		}
	}
	if !delivered {
		t.Error("no deliver span for alice under a publish")
	}
}
