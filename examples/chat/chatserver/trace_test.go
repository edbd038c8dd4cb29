package chatserver_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
)

// TestTraces: with tracing on, everything the chat sends to a room is in
// the trace of what caused it. A join's presence, a message, the typing
// indicator and a leave are children of their message's receive span; a
// departure announced when a connection ends is a child of the session
// close span; and each member's delivery of a message is a deliver span
// with the member's name.
func TestTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	_, url := server(t, chatserver.Config{Runtime: []runtime.Option{runtime.WithTracerProvider(tp)}})

	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	alice.join("lobby")
	bob.join("lobby")
	event[chatserver.Presence](alice, presence, "lobby")
	bob.ok(send, "lobby", text("hello"))
	event[chatserver.Message](alice, msg, "lobby")
	bob.emit(typing, "lobby", nil)
	event[chatserver.Typing](alice, typing, "lobby")
	carol.join("lobby")
	carol.drop()
	event[chatserver.Presence](alice, presence, "lobby") // carol joins
	event[chatserver.Presence](alice, presence, "lobby") // carol leaves

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
	deadline := time.Now().Add(bound)
	for len(spans("session close")) == 0 || len(spans("publish")) < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%d publish spans and %d session close, want 6 and 1", len(spans("publish")), len(spans("session close")))
		}
		time.Sleep(time.Millisecond)
	}
	parents := map[string]int{}
	for _, p := range spans("publish") {
		parent := byID(p.Parent().SpanID())
		if parent == nil {
			t.Errorf("publish span %s has no parent in the trace", p.SpanContext().SpanID())
			continue
		}
		parents[parent.Name()]++
	}
	if parents["receive"] != 5 || parents["session close"] != 1 {
		t.Errorf("publish spans' parents %v, want 5 receive (3 joins, the message, typing) and 1 session close (carol's departure)", parents)
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
