package cluster

import (
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/shockwave-go/shockwave/codec"
)

// TestTraceAcrossNodes: a message said on node a and delivered on node b
// is one trace: a's receive, publish and "nats send" spans, then b's
// "nats receive", publish and deliver spans, each the child of the one
// before.
func TestTraceAcrossNodes(t *testing.T) {
	s := startNATS(t, -1)
	a := startNode(t, s.ClientURL(), "a", nats.NoEcho())
	b := startNode(t, s.ClientURL(), "b", nats.NoEcho())
	x, y := a.dial(t, "x", codec.JSON), b.dial(t, "y", codec.MsgPack)
	x.join(t, "lobby")
	y.join(t, "lobby")
	waitInterest(t, s, "lobby", a, b)
	x.say(t, "lobby", 1)
	y.wait(t, 1)

	// find returns the ended span of n called name whose parent is
	// parent (any, when nil).
	find := func(n *node, name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
		for _, sp := range n.spans.Ended() {
			if sp.Name() != name {
				continue
			}
			if parent == nil || sp.Parent().SpanID() == parent.SpanContext().SpanID() &&
				sp.SpanContext().TraceID() == parent.SpanContext().TraceID() {
				return sp
			}
		}
		return nil
	}
	var send, deliver sdktrace.ReadOnlySpan
	eventually(t, "a's nats send span", func() bool { send = find(a, "nats send", nil); return send != nil })
	if find(a, "receive", nil) == nil {
		t.Fatal("no receive span on a")
	}
	chain := []sdktrace.ReadOnlySpan{find(a, "publish", nil), send}
	if chain[0] == nil || send.Parent().SpanID() != chain[0].SpanContext().SpanID() {
		t.Fatalf("a's nats send is not the child of its publish: %v", send.Parent())
	}
	recv := find(b, "nats receive", send)
	if recv == nil {
		t.Fatalf("no nats receive span on b under a's send (trace %s)", send.SpanContext().TraceID())
	}
	if !recv.Parent().IsRemote() {
		t.Error("b's nats receive: the parent is not remote")
	}
	pub := find(b, "publish", recv)
	if pub == nil {
		t.Fatal("no publish span on b under its nats receive")
	}
	eventually(t, "b's deliver span", func() bool { deliver = find(b, "deliver", pub); return deliver != nil })
	for _, sp := range []sdktrace.ReadOnlySpan{recv, pub, deliver} {
		if sp.SpanContext().TraceID() != send.SpanContext().TraceID() {
			t.Errorf("b's %s is in trace %s, a's send in %s", sp.Name(), sp.SpanContext().TraceID(), send.SpanContext().TraceID())
		}
	}
	attrs := map[string]string{}
	for _, kv := range recv.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["messaging.system"] != "nats" || attrs["shockwave.broker.origin"] != "a" || attrs["messaging.destination.name"] != "sw.r.lobby" {
		t.Errorf("b's nats receive: %v", attrs)
	}
}
