package cluster

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
)

// TestTraceAcrossNodes: a message said on node a and delivered on node b
// is one trace, in a room that keeps nothing and in a durable one: a's receive and publish spans, then b's publish and
// deliver spans, each the child of the one before, b's publish with a
// remote parent. With the Broker's own spans, "nats send" on a and "nats
// receive" on b stand between the two publishes; without (a no-op
// TracerProvider for the Broker), the trace crosses all the same.
func TestTraceAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        []natsbroker.Option
		brokerSpans bool
		durable     bool
	}{
		{"with the broker's spans", nil, true, false},
		{"runtime spans only", []natsbroker.Option{natsbroker.WithTracerProvider(tracenoop.NewTracerProvider())}, false, false},
		{"a durable room", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *server.Server
			var a, b *node
			if tc.durable { // through the log: a's publish, its append, then b's delivery
				s = startJetStream(t, -1, t.TempDir())
				a, b = startDurable(t, s.ClientURL(), "a", nats.NoEcho()), startDurable(t, s.ClientURL(), "b", nats.NoEcho())
			} else {
				s = startNATS(t, -1)
				a = startNodeWith(t, s.ClientURL(), "a", tc.opts, nats.NoEcho())
				b = startNodeWith(t, s.ClientURL(), "b", tc.opts, nats.NoEcho())
			}
			x, y := a.dial(t, "x", codec.JSON), b.dial(t, "y", codec.MsgPack)
			x.join(t, "lobby")
			y.join(t, "lobby")
			waitInterest(t, s, "lobby", a, b)
			x.say(t, "lobby", 1)
			y.wait(t, 1)
			traceAcross(t, a, b, tc.brokerSpans)
		})
	}
}

// traceAcross checks the chain of spans from a's receive to b's deliver.
func traceAcross(t *testing.T, a, b *node, brokerSpans bool) {
	t.Helper()
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
	var last sdktrace.ReadOnlySpan // the last span of the chain on a
	eventually(t, "a's publish span under the say's receive", func() bool {
		for _, sp := range a.spans.Ended() {
			if sp.Name() == "receive" {
				if last = find(a, "publish", sp); last != nil {
					return true
				}
			}
		}
		return false
	})
	if brokerSpans {
		if last = find(a, "nats send", last); last == nil { // ended before the publish
			t.Fatal("no nats send span on a under its publish")
		}
	}
	// b's spans end after the member may have read the message.
	var recv, pub, deliver sdktrace.ReadOnlySpan
	parent := last // of b's publish
	if brokerSpans {
		eventually(t, "b's nats receive span under a's nats send", func() bool {
			recv = find(b, "nats receive", last)
			return recv != nil
		})
		attrs := map[string]string{}
		for _, kv := range recv.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		if attrs["messaging.system"] != "nats" || attrs["shockwave.broker.origin"] != "a" || attrs["messaging.destination.name"] != "sw.r.lobby" {
			t.Errorf("b's nats receive: %v", attrs)
		}
		parent = recv
	}
	eventually(t, "b's publish span under "+parent.Name(), func() bool { pub = find(b, "publish", parent); return pub != nil })
	first := pub // b's first span, whose parent is a's
	if brokerSpans {
		first = parent
	}
	if !first.Parent().IsRemote() {
		t.Errorf("b's %s: the parent is not remote", first.Name())
	}
	eventually(t, "b's deliver span", func() bool { deliver = find(b, "deliver", pub); return deliver != nil })
}
