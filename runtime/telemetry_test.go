package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// The tests of this file pass providers to New as options; none of them
// installs a global tracer or meter provider, so that the rest of the
// package (and the benchmarks) run with instrumentation off. They do set
// the global propagator, which turns nothing on.

// otelKit is an SDK tracer provider recording every span, and an SDK meter
// provider read on demand.
type otelKit struct {
	sr     *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

// newOtelKit makes the providers; they are shut down after the test, once
// the runtimes started after this call are.
func newOtelKit(t testing.TB) *otelKit {
	t.Helper()
	k := &otelKit{sr: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	k.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(k.sr))
	k.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(k.reader))
	t.Cleanup(func() {
		ctx := context.Background()
		if err := errors.Join(k.tp.Shutdown(ctx), k.mp.Shutdown(ctx)); err != nil {
			t.Errorf("providers' shutdown: %v", err)
		}
	})
	return k
}

// traces and metrics are the options that send a runtime's spans and
// metrics to the kit.
func (k *otelKit) traces() runtime.Option  { return runtime.WithTracerProvider(k.tp) }
func (k *otelKit) metrics() runtime.Option { return runtime.WithMeterProvider(k.mp) }

// spans returns the ended spans called name (every span for "").
func (k *otelKit) spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range k.sr.Ended() {
		if name == "" || s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// waitSpans polls until n spans called name have ended, and returns them.
func (k *otelKit) waitSpans(t testing.TB, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	eventually(t, bound, fmt.Sprintf("%d %q spans", n, name), func() bool {
		got = k.spans(name)
		return len(got) >= n
	})
	return got
}

// setPropagator installs p as the global propagator for the test.
func setPropagator(t testing.TB, p propagation.TextMapPropagator) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// spanAttrs returns a span's attributes by key.
func spanAttrs(s sdktrace.ReadOnlySpan) map[string]attribute.Value {
	m := make(map[string]attribute.Value)
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

// attrValue makes an attribute.Value of a test's literal.
func attrValue(v any) attribute.Value {
	switch v := v.(type) {
	case string:
		return attribute.StringValue(v)
	case int:
		return attribute.Int64Value(int64(v))
	case int64:
		return attribute.Int64Value(v)
	case uint64:
		return attribute.Int64Value(int64(v))
	case bool:
		return attribute.BoolValue(v)
	}
	panic(fmt.Sprintf("attrValue: %T", v))
}

// wantAttrs checks that a span has (at least) these attributes.
func wantAttrs(t testing.TB, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	got := spanAttrs(s)
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s span: no attribute %s (has %v)", s.Name(), k, s.Attributes())
		} else if w := attrValue(v); g != w {
			t.Errorf("%s span: %s = %s, want %s", s.Name(), k, g.Emit(), w.Emit())
		}
	}
}

// wantChild checks that child is a child of parent, in its trace.
func wantChild(t testing.TB, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() ||
		child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("%q span (trace %s, parent %s) is not a child of %q span (trace %s, span %s)",
			child.Name(), child.SpanContext().TraceID(), child.Parent().SpanID(),
			parent.Name(), parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
	}
}

// bySession keeps the spans whose shockwave.session.id is id.
func bySession(spans []sdktrace.ReadOnlySpan, id uint64) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if v, ok := spanAttrs(s)["shockwave.session.id"]; ok && v.AsInt64() == int64(id) {
			out = append(out, s)
		}
	}
	return out
}

// renderTrees renders spans as indented trees, one per trace, children in
// the order they started: the example trace of docs/observability.md comes
// from here (run the tests with -v).
func renderTrees(spans []sdktrace.ReadOnlySpan) string {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	known := make(map[trace.SpanID]bool)
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan)
	for _, s := range spans {
		known[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && known[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, indent string)
	walk = func(s sdktrace.ReadOnlySpan, indent string) {
		fmt.Fprintf(&b, "%s%s (%s, %s, span %s)", indent, s.Name(), s.SpanKind(),
			s.EndTime().Sub(s.StartTime()).Round(time.Microsecond), s.SpanContext().SpanID())
		if st := s.Status(); st.Code != codes.Unset {
			fmt.Fprintf(&b, " status=%s %q", st.Code, st.Description)
		}
		b.WriteString("\n")
		for _, kv := range s.Attributes() {
			fmt.Fprintf(&b, "%s    %s = %s\n", indent, kv.Key, kv.Value.Emit())
		}
		for _, l := range s.Links() {
			fmt.Fprintf(&b, "%s    link -> trace %s span %s\n", indent, l.SpanContext.TraceID(), l.SpanContext.SpanID())
		}
		for _, e := range s.Events() {
			var as []string
			for _, kv := range e.Attributes {
				as = append(as, fmt.Sprintf("%s=%s", kv.Key, kv.Value.Emit()))
			}
			fmt.Fprintf(&b, "%s    event %q {%s}\n", indent, e.Name, strings.Join(as, ", "))
		}
		for _, c := range children[s.SpanContext().SpanID()] {
			walk(c, indent+"  ")
		}
	}
	// One heading per trace, in the order the traces started.
	var traces []trace.TraceID
	byTrace := make(map[trace.TraceID][]sdktrace.ReadOnlySpan)
	for _, r := range roots {
		id := r.SpanContext().TraceID()
		if byTrace[id] == nil {
			traces = append(traces, id)
		}
		byTrace[id] = append(byTrace[id], r)
	}
	for _, id := range traces {
		fmt.Fprintf(&b, "trace %s\n", id)
		for _, r := range byTrace[id] {
			if p := r.Parent(); p.IsValid() {
				fmt.Fprintf(&b, "  (parent: the client's span %s)\n", p.SpanID())
			}
			walk(r, "  ")
		}
	}
	return b.String()
}

// Client-side trace context of the tests: a sampled remote parent.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// wantRemoteParent checks that s continues the client's trace.
func wantRemoteParent(t testing.TB, s sdktrace.ReadOnlySpan) {
	t.Helper()
	if got := s.SpanContext().TraceID().String(); got != clientTraceID {
		t.Errorf("%s span: trace %s, want the client's %s", s.Name(), got, clientTraceID)
	}
	if p := s.Parent(); p.SpanID().String() != clientSpanID || !p.IsRemote() {
		t.Errorf("%s span: parent %s (remote %v), want the client's %s", s.Name(), p.SpanID(), p.IsRemote(), clientSpanID)
	}
}

// TestTraceEcho checks the spans of an echo session: the upgrade, as a
// server span continuing the traceparent of the upgrade request, and one
// consumer span per message, with the handler's own spans as children and
// a failing handler's span marked as an error.
func TestTraceEcho(t *testing.T) {
	setPropagator(t, propagation.TraceContext{})
	k := newOtelKit(t)
	tr := newTracker()
	errFail := wire.CloseError{Code: 4000, Reason: "failed"}
	rt, url := start(t, handler{
		open: func(s *session.Session) error { tr.opened(s); return nil },
		msg: func(s *session.Session, m session.Message) error {
			switch string(m.Data) {
			case "child":
				_, sp := k.tp.Tracer("test").Start(m.Context(), "handler work")
				sp.End()
			case "fail":
				return errFail
			}
			return s.Send(m.Op, m.Data)
		},
		close: tr.closed,
	}, k.traces())

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, _, err := wire.Dial(ctx, url+"/chat", &wire.DialOptions{Header: http.Header{"Traceparent": {clientParent}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	sid := tr.session(t, c.NetConn().LocalAddr()).ID()
	for _, msg := range []string{"hello", "child"} {
		wantEcho(t, c, msg)
	}
	if err := c.WriteMessage(wire.OpBinary, []byte("fail")); err != nil {
		t.Fatal(err)
	}
	wantClose(t, readUntilError(c), errFail.Code, errFail.Reason)
	tr.endErr(t, c.NetConn().LocalAddr()) // every receive span has ended before OnClose
	if n := runtime.TracedUpgrades(rt); n != 0 {
		t.Errorf("%d upgrade span contexts kept after the session ended", n)
	}

	up := k.waitSpans(t, "websocket upgrade", 1)
	if len(up) != 1 {
		t.Fatalf("%d upgrade spans, want 1", len(up))
	}
	u := up[0]
	if u.SpanKind() != trace.SpanKindServer {
		t.Errorf("upgrade span kind %v, want server", u.SpanKind())
	}
	wantRemoteParent(t, u)
	wantAttrs(t, u, map[string]any{
		"http.request.method":   "GET",
		"url.path":              "/chat",
		"network.protocol.name": "websocket",
		"network.peer.address":  c.NetConn().LocalAddr().String(),
		"shockwave.session.id":  sid,
	})
	if u.Status().Code != codes.Unset {
		t.Errorf("upgrade span status %v, want unset", u.Status())
	}

	recv := k.spans("receive")
	if len(recv) != 3 {
		t.Fatalf("%d receive spans, want one per message (3):\n%s", len(recv), renderTrees(k.spans("")))
	}
	for i, tc := range []struct {
		op   string
		size int
		err  bool
	}{{"text", 5, false}, {"text", 5, false}, {"binary", 4, true}} {
		r := recv[i]
		if r.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("receive %d: kind %v, want consumer", i, r.SpanKind())
		}
		wantAttrs(t, r, map[string]any{
			"messaging.system":            "websocket",
			"messaging.operation.type":    "receive",
			"messaging.message.body.size": tc.size,
			"shockwave.session.id":        sid,
			"websocket.opcode":            tc.op,
		})
		// Each message starts a trace of its own: a session lasts hours,
		// and one trace per connection would never end.
		if r.Parent().IsValid() || r.SpanContext().TraceID() == u.SpanContext().TraceID() {
			t.Errorf("receive %d: parent %s in trace %s, want a root span of a new trace", i, r.Parent().SpanID(), r.SpanContext().TraceID())
		}
		// ... linked to the session's upgrade span instead.
		if l := r.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != u.SpanContext().SpanID() {
			t.Errorf("receive %d: links %v, want one to the upgrade span %s", i, l, u.SpanContext().SpanID())
		}
		if st := r.Status(); tc.err != (st.Code == codes.Error) {
			t.Errorf("receive %d: status %v, want error=%v", i, st, tc.err)
		}
		if tc.err && !slices.ContainsFunc(r.Events(), func(e sdktrace.Event) bool { return e.Name == "exception" }) {
			t.Errorf("receive %d: the handler's error is not recorded as an exception event: %v", i, r.Events())
		}
	}
	work := k.spans("handler work")
	if len(work) != 1 {
		t.Fatalf("%d handler spans, want 1", len(work))
	}
	wantChild(t, work[0], recv[1])
	if t.Failed() || testing.Verbose() {
		t.Logf("spans:\n%s", renderTrees(k.spans("")))
	}
}

// TestTracePanicEndsSpan: a handler that panics is a handler error too:
// its receive span must end, marked as an error, like a returned error's.
func TestTracePanicEndsSpan(t *testing.T) {
	k := newOtelKit(t)
	tr := newTracker()
	_, url := start(t, handler{
		open: func(s *session.Session) error { tr.opened(s); return nil },
		msg: func(s *session.Session, m session.Message) error {
			if string(m.Data) == "panic" {
				panic("handler bug")
			}
			return s.Send(m.Op, m.Data)
		},
		close: tr.closed,
	}, k.traces(), k.metrics(), runtime.WithErrorHandler(func(*session.Session, error) {}))
	c := dial(t, url)
	sid := tr.session(t, c.NetConn().LocalAddr()).ID()
	wantEcho(t, c, "hello")
	if err := c.WriteMessage(wire.OpText, []byte("panic")); err != nil {
		t.Fatal(err)
	}
	wantClose(t, readUntilError(c), wire.StatusInternalError, "*")
	tr.endErr(t, c.NetConn().LocalAddr()) // OnClose runs after the panic is recovered

	recv := bySession(k.spans("receive"), sid)
	if len(recv) != 2 {
		t.Fatalf("%d receive spans ended, want 2 (the panicking handler's span was never ended)", len(recv))
	}
	if st := recv[1].Status(); st.Code != codes.Error {
		t.Errorf("the panicking handler's span: status %v, want error", st)
	}
	if got := k.collect(t).histCount("shockwave.handler.duration", nil); got != 2 {
		t.Errorf("shockwave.handler.duration count %d, want 2 (the panicking call too)", got)
	}
}

// TestTraceBroadcast broadcasts from a handler to a room of 100 members:
// one producer span, child of the message's receive span, with the fan-out
// as an attribute and an event, and no span per member.
func TestTraceBroadcast(t *testing.T) {
	const members = 100
	k := newOtelKit(t)
	var ref rtRef
	tr := newTracker()
	rt, url := start(t, handler{
		open: func(s *session.Session) error {
			tr.opened(s)
			if s.Subprotocol() == "member" {
				ref.get().Join("room", s)
			}
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			r, _ := ref.get().Room("room")
			n := r.BroadcastContext(m.Context(), wire.OpText, []byte("news"))
			return s.Send(wire.OpText, []byte("sent "+strconv.Itoa(n)))
		},
		close: tr.closed,
	}, k.traces(), runtime.WithSubprotocols("member", "sender"), runtime.WithTraceDeliveries(members))
	ref.p.Store(rt)

	conns := make([]*wire.Conn, members)
	for i := range conns {
		c, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{"member"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		conns[i] = c
	}
	sender, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{"sender"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.CloseNow() })
	eventually(t, bound, "every member to join", func() bool { r, ok := rt.Room("room"); return ok && r.Len() == members })

	readAll := func(conns []*wire.Conn, want string) {
		t.Helper()
		for i, c := range conns {
			c.NetConn().SetReadDeadline(time.Now().Add(bound))
			if _, p, err := c.ReadMessage(); err != nil || string(p) != want {
				t.Fatalf("member %d: %q, %v; want %q", i, p, err, want)
			}
		}
	}
	ask := func(c *wire.Conn, msg, reply string) {
		t.Helper()
		if err := c.WriteMessage(wire.OpText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != reply {
			t.Fatalf("got %q, %v; want %q", p, err, reply)
		}
	}
	ask(sender, "go", "sent 100") // the reply follows the end of the receive span
	readAll(conns, "news")

	recv := k.spans("receive")
	pub := k.spans("publish")
	if len(recv) != 1 || len(pub) != 1 {
		t.Fatalf("%d receive and %d publish spans, want 1 and 1", len(recv), len(pub))
	}
	p := pub[0]
	if p.SpanKind() != trace.SpanKindProducer {
		t.Errorf("publish kind %v, want producer", p.SpanKind())
	}
	wantChild(t, p, recv[0])
	wantAttrs(t, p, map[string]any{
		"messaging.system":              "websocket",
		"messaging.operation.type":      "send",
		"messaging.destination.name":    "room",
		"messaging.message.body.size":   4,
		"messaging.batch.message_count": members,
	})
	wantFanout(t, p, members, 0)

	// A deliver span for each member (TraceDeliveries allows them all),
	// child of the publish span, from the publish to the kernel's taking
	// the frame: which session, and that it was written.
	wantDeliveries(t, k.waitSpans(t, "deliver", members), p, members, "written")
	up := k.waitSpans(t, "websocket upgrade", members+1)
	if all := k.spans(""); len(all) != len(up)+2+members {
		t.Errorf("%d spans, want %d: %d upgrades, 1 receive, 1 publish, %d deliveries", len(all), len(up)+2+members, len(up), members)
	}

	// Outside a handler, a broadcast starts a trace of its own; excepted
	// sessions are not counted.
	r, _ := rt.Room("room")
	except := tr.session(t, conns[0].NetConn().LocalAddr())
	f := session.NewFrame(wire.OpBinary, []byte("direct"))
	if n := r.BroadcastFrame(f, except); n != members-1 {
		t.Errorf("BroadcastFrame reached %d, want %d", n, members-1)
	}
	f.Release()
	readAll(conns[1:], "direct")
	pub = k.spans("publish")
	if len(pub) != 2 {
		t.Fatalf("%d publish spans, want 2", len(pub))
	}
	if p := pub[1]; p.Parent().IsValid() {
		t.Errorf("a broadcast outside a handler has parent %s, want a root span", p.Parent().SpanID())
	}
	wantAttrs(t, pub[1], map[string]any{"messaging.batch.message_count": members - 1, "messaging.message.body.size": 8})
	wantFanout(t, pub[1], members-1, 0)
	wantDeliveries(t, k.waitSpans(t, "deliver", 2*members-1)[members:], pub[1], members-1, "written")
	if t.Failed() || testing.Verbose() {
		t.Logf("spans:\n%s", renderTrees(slices.Concat(k.spans("receive"), k.spans("publish"))))
	}
}

// wantDeliveries checks that spans are n deliver spans, children of
// parent, of n sessions, each with the outcome.
func wantDeliveries(t testing.TB, spans []sdktrace.ReadOnlySpan, parent sdktrace.ReadOnlySpan, n int, outcome string) {
	t.Helper()
	ids := map[int64]bool{}
	for _, d := range spans {
		wantChild(t, d, parent)
		a := spanAttrs(d)
		if got := a["shockwave.delivery.outcome"].AsString(); got != outcome {
			t.Errorf("deliver span with outcome %q, want %q", got, outcome)
		}
		if d.StartTime().Before(parent.StartTime()) || d.EndTime().Before(d.StartTime()) {
			t.Errorf("deliver span from %v to %v, publish from %v", d.StartTime(), d.EndTime(), parent.StartTime())
		}
		ids[a["shockwave.session.id"].AsInt64()] = true
	}
	if len(spans) != n || len(ids) != n {
		t.Errorf("%d deliver spans for %d sessions, want %d", len(spans), len(ids), n)
	}
}

// wantFanout checks the fanout event of a publish span.
func wantFanout(t testing.TB, p sdktrace.ReadOnlySpan, accepted, refused int) {
	t.Helper()
	var evs []sdktrace.Event
	for _, e := range p.Events() {
		if e.Name == "fanout" {
			evs = append(evs, e)
		}
	}
	if len(evs) != 1 {
		t.Errorf("publish span has %d fanout events, want 1: %v", len(evs), p.Events())
		return
	}
	got := map[string]int64{}
	for _, kv := range evs[0].Attributes {
		got[string(kv.Key)] = kv.Value.AsInt64()
	}
	if got["shockwave.fanout.accepted"] != int64(accepted) || got["shockwave.fanout.refused"] != int64(refused) {
		t.Errorf("fanout event %v, want accepted=%d refused=%d", evs[0].Attributes, accepted, refused)
	}
}

// traceParentHandler echoes messages and implements runtime.TraceParenter:
// a message "tp:<traceparent>|<payload>" carries the client's trace
// context, as an envelope's "t" field does.
type traceParentHandler struct{ session.NopHandler }

var _ runtime.TraceParenter = traceParentHandler{}

func (traceParentHandler) TraceParent(_ *session.Session, m session.Message) string {
	tp, _, ok := strings.Cut(string(m.Data), "|")
	if !ok || !strings.HasPrefix(tp, "tp:") {
		return ""
	}
	return tp[3:]
}

func (traceParentHandler) OnMessage(s *session.Session, m session.Message) error {
	return s.Send(m.Op, m.Data)
}

// TestTraceContinuesClientTrace: a traceparent carried by a message, as
// runtime.TraceParenter returns it, makes the receive span a child of the
// client's span. The interface promises a W3C traceparent, so this must
// not depend on which global propagator is installed.
func TestTraceContinuesClientTrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		prop propagation.TextMapPropagator
	}{
		{"W3C global propagator", propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})},
		// The default: otel's global propagator does nothing until one is
		// installed.
		{"no global propagator", propagation.NewCompositeTextMapPropagator()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setPropagator(t, tc.prop)
			k := newOtelKit(t)
			_, url := start(t, traceParentHandler{}, k.traces())
			c := dial(t, url)
			unsampled := "00-" + clientTraceID + "-" + clientSpanID + "-00"
			for _, msg := range []string{
				"tp:" + clientParent + "|hello",
				"plain",
				"tp:not-a-traceparent|x",
				"tp:" + unsampled + "|not sampled", // the client's decision is kept: no span
			} {
				wantEcho(t, c, msg)
			}
			recv := k.spans("receive")
			if len(recv) != 3 {
				t.Fatalf("%d receive spans, want 3 (the unsampled message has none):\n%s", len(recv), renderTrees(recv))
			}
			wantRemoteParent(t, recv[0])
			for _, r := range recv[1:] {
				if r.Parent().IsValid() || r.SpanContext().TraceID().String() == clientTraceID {
					t.Errorf("a message without a valid traceparent: parent %s, trace %s; want a new trace",
						r.Parent().SpanID(), r.SpanContext().TraceID())
				}
			}
		})
	}
}

// TestTraceAckRequest checks a request answered by an acknowledgement sent
// from the handler (the request/ack convention is the test's own:
// "req:<id>:<body>" is answered "ack:<id>"): the receive span has the
// handler's work as its child, and the reply's write is counted.
func TestTraceAckRequest(t *testing.T) {
	k := newOtelKit(t)
	_, url := start(t, handler{
		msg: func(s *session.Session, m session.Message) error {
			id, _, ok := strings.Cut(strings.TrimPrefix(string(m.Data), "req:"), ":")
			if !ok {
				return wire.CloseError{Code: 4400, Reason: "bad request"}
			}
			_, sp := k.tp.Tracer("test").Start(m.Context(), "handle request",
				trace.WithAttributes(attribute.String("request.id", id)))
			defer sp.End()
			return s.Send(wire.OpText, []byte("ack:"+id))
		},
	}, k.traces(), k.metrics(), runtime.WithHeartbeat(-1, 0))
	c := dial(t, url)
	const req = "req:7:ping"
	if err := c.WriteMessage(wire.OpText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "ack:7" {
		t.Fatalf("got %q, %v; want ack:7", p, err)
	}

	k.waitSpans(t, "websocket upgrade", 1) // it ends after ServeHTTP, maybe after the reply
	recv, work := k.spans("receive"), k.spans("handle request")
	if len(recv) != 1 || len(work) != 1 {
		t.Fatalf("%d receive and %d handler spans, want 1 and 1", len(recv), len(work))
	}
	wantChild(t, work[0], recv[0])
	wantAttrs(t, recv[0], map[string]any{"messaging.message.body.size": len(req)})
	if work[0].EndTime().After(recv[0].EndTime()) {
		t.Error("the handler's span ends after the receive span")
	}
	if n := len(k.spans("")); n != 3 {
		t.Errorf("%d spans, want 3 (upgrade, receive, handle request)", n)
	}

	m := k.waitMetric(t, "shockwave.frames.sent", nil, 1)
	const ackFrame int64 = 2 + int64(len("ack:7"))
	for _, tc := range []struct {
		name string
		got  int64
		want int64
	}{
		{"shockwave.messages.received", m.sum("shockwave.messages.received", nil), 1},
		{"shockwave.bytes.received", m.sum("shockwave.bytes.received", nil), int64(len(req))},
		{"shockwave.frames.sent", m.sum("shockwave.frames.sent", nil), 1},
		{"shockwave.bytes.sent", m.sum("shockwave.bytes.sent", nil), ackFrame},
		{"shockwave.write.batch count", m.histCount("shockwave.write.batch", nil), 1},
		{"shockwave.write.batch sum", m.histSum("shockwave.write.batch", nil), 1},
		{"shockwave.handler.duration count", m.histCount("shockwave.handler.duration", nil), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

// orderServer is a codec.Router whose sessions all join the room
// "orders".
type orderServer struct {
	*codec.Router
	rt *rtRef
}

func (o orderServer) OnOpen(s *session.Session) error {
	o.rt.get().Join("orders", s)
	return nil
}

// TestTraceCodecRequest checks an acknowledged request through the codec's
// Router, with the client's traceparent in the envelope: the receive span
// continues the client's trace and names the event and the room, the
// handler's span and the publish span it causes are its children, and the
// published envelope carries the trace on. With the Router's default
// codecs (JSON and MsgPack), and with JSON alone (Router.publish takes a
// different path for each).
func TestTraceCodecRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []codec.Option
	}{
		{"default codecs", nil},
		{"one codec", []codec.Option{codec.WithCodecs()}},
	} {
		t.Run(tc.name, func(t *testing.T) { testTraceCodecRequest(t, tc.opts) })
	}
}

func testTraceCodecRequest(t *testing.T, opts []codec.Option) {
	setPropagator(t, propagation.TraceContext{})
	k := newOtelKit(t)
	type order struct {
		Item string `json:"item"`
	}
	type placed struct {
		ID int `json:"id"`
	}
	var rr rtRef
	r := codec.NewRouter(codec.JSON, opts...)
	codec.Handle(r, "orders.place", func(s *session.Session, req codec.Event[order]) (placed, error) {
		ctx, sp := k.tp.Tracer("test").Start(req.Ctx, "place order")
		defer sp.End()
		room, _ := rr.get().Room(req.Room)
		if _, err := r.PublishContext(ctx, room, "orders.placed", req.Data); err != nil {
			return placed{}, err
		}
		return placed{ID: 42}, nil
	})
	rt, url := start(t, orderServer{Router: r, rt: &rr}, k.traces(), k.metrics())
	rr.p.Store(rt)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	client, _, err := wire.Dial(ctx, url+"/orders", &wire.DialOptions{Header: http.Header{"Traceparent": {clientParent}}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	other := dial(t, url)
	eventually(t, bound, "both to join", func() bool { r, ok := rt.Room("orders"); return ok && r.Len() == 2 })

	req := `{"e":"orders.place","r":"orders","i":7,"t":"` + clientParent + `","d":{"item":"book"}}`
	if err := client.WriteMessage(wire.OpText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 { // the published event, then the reply
		client.NetConn().SetReadDeadline(time.Now().Add(bound))
		_, p, err := client.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got[string(p)] = true
	}
	other.NetConn().SetReadDeadline(time.Now().Add(bound))
	_, ev, err := other.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !got[`{"i":7,"d":{"id":42}}`] || !got[string(ev)] {
		t.Fatalf("the client got %q, the other member %q; want the reply and the event", slices.Collect(maps.Keys(got)), ev)
	}

	recv, work, pub := k.spans("receive"), k.spans("place order"), k.spans("publish")
	if len(recv) != 1 || len(work) != 1 || len(pub) != 1 {
		t.Fatalf("%d receive, %d handler and %d publish spans, want 1 each:\n%s",
			len(recv), len(work), len(pub), renderTrees(k.spans("")))
	}
	wantRemoteParent(t, recv[0])
	wantAttrs(t, recv[0], map[string]any{
		"shockwave.event":             "orders.place",
		"messaging.destination.name":  "orders",
		"messaging.message.body.size": len(req),
	})
	wantChild(t, work[0], recv[0])
	wantChild(t, pub[0], work[0])
	wantAttrs(t, pub[0], map[string]any{"messaging.destination.name": "orders", "messaging.batch.message_count": 2})
	wantFanout(t, pub[0], 2, 0)
	// The published envelope names the handler's span: a client tracing
	// its reception continues the same trace.
	wantT := `"t":"00-` + clientTraceID + "-" + work[0].SpanContext().SpanID().String() + `-01"`
	if !strings.Contains(string(ev), wantT) {
		t.Errorf("published envelope %s, want %s in it", ev, wantT)
	}
	sid := uint64(spanAttrs(recv[0])["shockwave.session.id"].AsInt64())
	up := bySession(k.waitSpans(t, "websocket upgrade", 2), sid)
	if len(up) != 1 {
		t.Fatalf("%d upgrade spans for the client's session, want 1", len(up))
	}
	wantRemoteParent(t, up[0])
	if t.Failed() || testing.Verbose() {
		t.Logf("spans:\n%s\npublished: %s", renderTrees(slices.Concat(up, recv, work, pub)), ev)
	}

	m := k.waitMetric(t, "shockwave.frames.sent", nil, 3)
	if n := m.sum("shockwave.frames.sent", nil); n != 3 {
		t.Errorf("shockwave.frames.sent = %d, want 3 (the reply and two copies of the event)", n)
	}
	if n := m.sum("shockwave.messages.received", nil); n != 1 {
		t.Errorf("shockwave.messages.received = %d, want 1", n)
	}
}

// metricsView is one collection of a ManualReader.
type metricsView struct {
	byName map[string]metricdata.Metrics
}

// collect reads the kit's metrics now.
func (k *otelKit) collect(t testing.TB) metricsView {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := k.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	v := metricsView{byName: make(map[string]metricdata.Metrics)}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			v.byName[m.Name] = m
		}
	}
	return v
}

// waitMetric polls until the sum of name's points matching attrs is at
// least min, and returns that collection.
func (k *otelKit) waitMetric(t testing.TB, name string, attrs map[string]string, min int64) metricsView {
	t.Helper()
	var v metricsView
	eventually(t, bound, fmt.Sprintf("%s%v >= %d", name, attrs, min), func() bool {
		v = k.collect(t)
		return v.sum(name, attrs) >= min
	})
	return v
}

// matches reports whether set has every attribute of attrs.
func matches(set attribute.Set, attrs map[string]string) bool {
	for k, want := range attrs {
		if v, ok := set.Value(attribute.Key(k)); !ok || v.Emit() != want {
			return false
		}
	}
	return true
}

// sum adds up the int64 sum points of name matching attrs.
func (v metricsView) sum(name string, attrs map[string]string) int64 {
	var n int64
	if s, ok := v.byName[name].Data.(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			if matches(p.Attributes, attrs) {
				n += p.Value
			}
		}
	}
	return n
}

// points returns the int64 sum or gauge points of name, by the value of
// key.
func (v metricsView) points(name, key string) map[string]int64 {
	var dps []metricdata.DataPoint[int64]
	switch d := v.byName[name].Data.(type) {
	case metricdata.Sum[int64]:
		dps = d.DataPoints
	case metricdata.Gauge[int64]:
		dps = d.DataPoints
	}
	out := make(map[string]int64)
	for _, p := range dps {
		val, _ := p.Attributes.Value(attribute.Key(key))
		out[val.Emit()] += p.Value
	}
	return out
}

// histCounts returns the counts of name's int64 histogram points, by the
// value of key.
func (v metricsView) histCounts(name, key string) map[string]int64 {
	out := make(map[string]int64)
	if h, ok := v.byName[name].Data.(metricdata.Histogram[int64]); ok {
		for _, p := range h.DataPoints {
			val, _ := p.Attributes.Value(attribute.Key(key))
			out[val.Emit()] += int64(p.Count)
		}
	}
	return out
}

// histCount returns the count of name's histogram points matching attrs.
func (v metricsView) histCount(name string, attrs map[string]string) int64 {
	var n int64
	switch h := v.byName[name].Data.(type) {
	case metricdata.Histogram[int64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, attrs) {
				n += int64(p.Count)
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, attrs) {
				n += int64(p.Count)
			}
		}
	}
	return n
}

// histSum returns the sum of name's int64 histogram points matching attrs.
func (v metricsView) histSum(name string, attrs map[string]string) int64 {
	var n int64
	if h, ok := v.byName[name].Data.(metricdata.Histogram[int64]); ok {
		for _, p := range h.DataPoints {
			if matches(p.Attributes, attrs) {
				n += p.Sum
			}
		}
	}
	return n
}

// TestMetricsScripted runs a scripted exchange and checks every metric's
// value after it, with metrics alone and with tracing on too (the two take
// different paths).
//
// Sessions A and B join the room "all" and C joins it too. The mailbox
// holds 4 frames, and the policy is drop-newest. Frames sent by the
// server: a data frame of n < 126 bytes takes 2+n bytes, a close frame
// 2+2+len(reason).
func TestMetricsScripted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		traces bool
	}{{"metrics", false}, {"metrics and traces", true}} {
		t.Run(tc.name, func(t *testing.T) { testMetricsScripted(t, tc.traces) })
	}
}

func testMetricsScripted(t *testing.T, traces bool) {
	k := newOtelKit(t)
	var ref rtRef
	opts := []runtime.Option{k.metrics(), runtime.WithMailbox(4, 1<<20, session.PolicyDropNewest), runtime.WithHeartbeat(-1, 0)}
	if traces {
		opts = append(opts, k.traces())
	}
	rt, url := start(t, handler{
		open: func(s *session.Session) error { ref.get().Join("all", s); return nil },
		msg: func(s *session.Session, m session.Message) error {
			switch string(m.Data) {
			case "burst":
				// The handler is running: nothing is written until it
				// returns, so 4 of these 8 frames fit and 4 are dropped,
				// and so is the broadcast's copy for this session.
				for i := range 8 {
					s.Send(wire.OpText, []byte("b"+strconv.Itoa(i)))
				}
				r, _ := ref.get().Room("all")
				r.BroadcastContext(m.Context(), wire.OpText, []byte("tick"))
			case "oldest":
				for i := range 6 { // o0 and o1 make room for o4 and o5
					s.Enqueue(session.NewFrame(wire.OpText, []byte("o"+strconv.Itoa(i))), session.PolicyDropOldest)
				}
			default:
				return s.Send(m.Op, m.Data)
			}
			return nil
		},
	}, opts...)
	ref.p.Store(rt)

	read := func(c *wire.Conn, want ...string) {
		t.Helper()
		for _, w := range want {
			c.NetConn().SetReadDeadline(time.Now().Add(bound))
			if _, p, err := c.ReadMessage(); err != nil || string(p) != w {
				t.Fatalf("got %q, %v; want %q", p, err, w)
			}
		}
	}
	write := func(c *wire.Conn, msg string) {
		t.Helper()
		if err := c.WriteMessage(wire.OpText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}

	a, b := dial(t, url), dial(t, url)
	eventually(t, bound, "A and B to join", func() bool { r, ok := rt.Room("all"); return ok && r.Len() == 2 })
	if got := k.collect(t).sum("shockwave.sessions.active", nil); got != 2 {
		t.Errorf("shockwave.sessions.active = %d with 2 clients, want 2", got)
	}
	write(a, "hello")
	read(a, "hello") // 7 bytes
	room, _ := rt.Room("all")
	room.Broadcast(wire.OpText, []byte("news"))
	read(a, "news") // 6
	read(b, "news") // 6
	write(a, "burst")
	read(a, "b0", "b1", "b2", "b3") // 4 × 4; b4-b7 and the tick dropped
	read(b, "tick")                 // 6
	write(a, "oldest")
	read(a, "o2", "o3", "o4", "o5") // 4 × 4; o0 and o1 dropped
	big := strings.Repeat("x", 100)
	write(b, big)
	read(b, big) // 102
	if err := b.Close(wire.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	} // 4
	bad := rawDial(t, url, 0)
	if err := bad.write(wire.Header{Fin: true, Opcode: wire.OpText}, []byte("unmasked")); err != nil {
		t.Fatal(err)
	}
	if code, _ := bad.readClose(t); code != wire.StatusProtocolError {
		t.Fatalf("raw client: close %d, want 1002", code)
	} // 4 + len(reason)
	bad.nc.Close() // the server lingers until the client closes
	if err := a.Close(wire.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	} // 4
	eventually(t, bound, "every session to end", func() bool { return rt.Len() == 0 })

	const (
		framesSent = (1 + 1 + 4 + 4 + 1) + (1 + 1 + 1 + 1) + 1
		bytesA     = 7 + 6 + 16 + 16 + 4
		bytesB     = 6 + 6 + 102 + 4
	)
	bytesC := int64(4 + len(wire.ErrUnmasked.Msg))
	m := k.waitMetric(t, "shockwave.frames.sent", nil, framesSent)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"shockwave.messages.received", m.sum("shockwave.messages.received", nil), 4},
		{"shockwave.bytes.received", m.sum("shockwave.bytes.received", nil), 5 + 5 + 6 + 100},
		{"shockwave.frames.sent", m.sum("shockwave.frames.sent", nil), framesSent},
		{"shockwave.bytes.sent", m.sum("shockwave.bytes.sent", nil), bytesA + bytesB + bytesC},
		{"shockwave.write.batch sum", m.histSum("shockwave.write.batch", nil), framesSent},
		{"shockwave.handler.duration count", m.histCount("shockwave.handler.duration", nil), 4},
		{"shockwave.message.received.size count", m.histCount("shockwave.message.received.size", nil), 4},
		{"shockwave.message.received.size sum", m.histSum("shockwave.message.received.size", nil), 5 + 5 + 6 + 100},
		{"shockwave.mailbox.depth count", m.histCount("shockwave.mailbox.depth", nil), m.histCount("shockwave.write.batch", nil)},
		{"shockwave.broadcast.fanout count", m.histCount("shockwave.broadcast.fanout", nil), 2},
		{"shockwave.broadcast.fanout sum", m.histSum("shockwave.broadcast.fanout", nil), 2 + 1},
		{"shockwave.broadcast.refused", m.sum("shockwave.broadcast.refused", nil), 1}, // the tick, A's copy
		{"shockwave.sessions.active", m.sum("shockwave.sessions.active", nil), 0},
		{"shockwave.mailbox.drops drop-newest", m.sum("shockwave.mailbox.drops", map[string]string{"shockwave.policy": "drop-newest"}), 4 + 1},
		{"shockwave.mailbox.drops drop-oldest", m.sum("shockwave.mailbox.drops", map[string]string{"shockwave.policy": "drop-oldest"}), 2},
		{"shockwave.mailbox.drops close", m.sum("shockwave.mailbox.drops", map[string]string{"shockwave.policy": "close"}), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if n := m.histCount("shockwave.write.batch", nil); n < 1 || n > framesSent {
		t.Errorf("shockwave.write.batch count = %d, want 1 to %d", n, framesSent)
	}
	// Every write's depth counts at least the frames it completed; the
	// writes of data frames say how long the oldest waited.
	if d, b := m.histSum("shockwave.mailbox.depth", nil), m.histSum("shockwave.write.batch", nil); d < b {
		t.Errorf("shockwave.mailbox.depth sum %d < shockwave.write.batch sum %d", d, b)
	}
	if n := m.histCount("shockwave.mailbox.wait", nil); n < 1 || n > m.histCount("shockwave.write.batch", nil) {
		t.Errorf("shockwave.mailbox.wait count = %d, want 1 to the writes' count", n)
	}
	closes := m.points("shockwave.sessions.closed", "websocket.close.code")
	if want := map[string]int64{"1000": 2, "1002": 1}; !sameCounts(closes, want) {
		t.Errorf("shockwave.sessions.closed = %v, want %v", closes, want)
	}
	for name, md := range m.byName {
		if !strings.HasPrefix(name, "shockwave.") {
			t.Errorf("unexpected metric %s", name)
		}
		if md.Unit == "" || md.Description == "" {
			t.Errorf("%s has no unit or no description", name)
		}
	}

	if traces {
		var fromHandler []sdktrace.ReadOnlySpan
		for _, p := range k.spans("publish") {
			if p.Parent().IsValid() {
				fromHandler = append(fromHandler, p)
			}
		}
		if len(fromHandler) != 1 {
			t.Fatalf("%d publish spans under a receive span, want 1", len(fromHandler))
		}
		wantFanout(t, fromHandler[0], 1, 1)
	}
}

// sameCounts reports whether a and b hold the same entries.
func sameCounts(a, b map[string]int64) bool { return maps.Equal(a, b) }

// TestMetricsCloseCodes checks shockwave.sessions.closed for each way a
// session ends: the code is the one the session sent or received, and
// 1006 when the connection ended without a close frame.
func TestMetricsCloseCodes(t *testing.T) {
	plain := errors.New("plain")
	for _, tc := range []struct {
		name  string
		opts  []runtime.Option
		msg   func(s *session.Session, m session.Message) error
		run   func(t *testing.T, rt *runtime.Runtime, url string)
		code  string
		cause string
	}{
		{name: "client closes", code: "1000", cause: "closed", run: func(t *testing.T, _ *runtime.Runtime, url string) {
			if err := dial(t, url).Close(wire.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "client closes with 4001", code: "4001", cause: "closed", run: func(t *testing.T, _ *runtime.Runtime, url string) {
			if err := dial(t, url).Close(4001, "bye"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "protocol error", code: "1002", cause: "protocol_error", run: func(t *testing.T, _ *runtime.Runtime, url string) {
			c := rawDial(t, url, 0)
			c.write(wire.Header{Fin: true, Opcode: wire.OpText}, []byte("unmasked"))
			c.readClose(t)
			c.nc.Close() // the server lingers until the client closes
		}},
		{name: "message too big", code: "1009", cause: "protocol_error", opts: []runtime.Option{runtime.WithMaxMessageSize(16)},
			run: sendAndRead(strings.Repeat("x", 100))},
		{name: "handler close error", code: "4000", cause: "closed", run: sendAndRead("x"),
			msg: func(*session.Session, session.Message) error { return wire.CloseError{Code: 4000, Reason: "no"} }},
		{name: "handler error", code: "1011", cause: "handler_error", run: sendAndRead("x"),
			msg: func(*session.Session, session.Message) error { return plain }},
		{name: "handler panic", code: "1011", cause: "panic", run: sendAndRead("x"),
			opts: []runtime.Option{runtime.WithErrorHandler(func(*session.Session, error) {})},
			msg:  func(*session.Session, session.Message) error { panic("bug") }},
		{name: "server closes", code: "1000", cause: "closed", run: sendAndRead("x"),
			msg: func(s *session.Session, _ session.Message) error {
				s.Close(wire.StatusNormalClosure, "bye")
				return nil
			}},
		{name: "shutdown", code: "1001", cause: "closed", run: func(t *testing.T, rt *runtime.Runtime, url string) {
			c := dial(t, url)
			eventually(t, bound, "the session", func() bool { return rt.Len() == 1 })
			go rt.Shutdown(context.Background())
			readUntilError(c)
		}},
		{name: "client drops the connection", code: "1006", cause: "connection_lost", run: func(t *testing.T, rt *runtime.Runtime, url string) {
			c := rawDial(t, url, 0)
			eventually(t, bound, "the session", func() bool { return rt.Len() == 1 })
			c.nc.Close()
		}},
		// The session sends its SlowCode (1008) and the client answers it.
		{name: "slow consumer", code: "1008", cause: "slow_consumer", run: sendAndRead("x"),
			opts: []runtime.Option{runtime.WithMailbox(4, 1<<20, session.PolicyClose)},
			msg: func(s *session.Session, m session.Message) error {
				for range 5 {
					s.Send(wire.OpText, []byte("y"))
				}
				return nil
			}},
		// The session sends 1001 "idle timeout" and the client answers it.
		{name: "idle timeout", code: "1001", cause: "timeout", opts: []runtime.Option{runtime.WithIdleTimeout(50 * time.Millisecond)},
			run: func(t *testing.T, _ *runtime.Runtime, url string) { readUntilError(dial(t, url)) }},
		// The client never answers pings: the connection is dropped with
		// no close frame.
		{name: "dead peer", code: "1006", cause: "timeout", opts: []runtime.Option{runtime.WithHeartbeat(20*time.Millisecond, 50*time.Millisecond)},
			run: func(t *testing.T, rt *runtime.Runtime, url string) {
				rawDial(t, url, 0) // reads nothing, answers nothing; closed after the test
				eventually(t, bound, "the session", func() bool { return rt.Len() == 1 })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newOtelKit(t)
			msg := tc.msg
			if msg == nil {
				msg = func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) }
			}
			rt, url := start(t, handler{msg: msg}, append(tc.opts, k.metrics())...)
			tc.run(t, rt, url)
			m := k.waitMetric(t, "shockwave.sessions.closed", nil, 1)
			got := m.points("shockwave.sessions.closed", "websocket.close.code")
			if want := map[string]int64{tc.code: 1}; !sameCounts(got, want) {
				t.Errorf("shockwave.sessions.closed = %v, want %v", got, want)
			}
			got = m.points("shockwave.sessions.closed", "shockwave.close.cause")
			if want := map[string]int64{tc.cause: 1}; !sameCounts(got, want) {
				t.Errorf("shockwave.sessions.closed by cause = %v, want %v", got, want)
			}
			if tc.name == "slow consumer" {
				if n := m.sum("shockwave.mailbox.drops", map[string]string{"shockwave.policy": "close"}); n != 1 {
					t.Errorf("shockwave.mailbox.drops{close} = %d, want 1", n)
				}
			}
		})
	}
}

// sendAndRead returns a script that sends msg and reads until the session
// ends.
func sendAndRead(msg string) func(t *testing.T, rt *runtime.Runtime, url string) {
	return func(t *testing.T, _ *runtime.Runtime, url string) {
		c := dial(t, url)
		if err := c.WriteMessage(wire.OpText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		readUntilError(c)
	}
}

// TestTelemetryOffIsFree measures the allocations of an echo and of a
// broadcast to 10 members, each read back by the clients: 0 with no
// provider and with the no-op providers. The SDK configuration shows that
// the measurement does see instrumentation. Under -race, sync.Pool drops
// items at random, so the counts are logged, not checked; the benchmarks
// (BenchmarkTelemetry) give the same figures.
func TestTelemetryOffIsFree(t *testing.T) {
	const members = 10
	race := race.Enabled
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) []runtime.Option
		free bool
	}{
		{"no provider", func(*testing.T) []runtime.Option { return nil }, true},
		{"noop providers", func(*testing.T) []runtime.Option {
			return []runtime.Option{runtime.WithTracerProvider(tracenoop.NewTracerProvider()),
				runtime.WithMeterProvider(metricnoop.NewMeterProvider())}
		}, true},
		{"sdk", func(t *testing.T) []runtime.Option {
			k := newOtelKit(t)
			return []runtime.Option{k.traces(), k.metrics()}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ref rtRef
			rt, url := start(t, handler{
				open: func(s *session.Session) error {
					if s.Subprotocol() == "member" {
						ref.get().Join("room", s)
					}
					return nil
				},
				msg: func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) },
			}, append(tc.opts(t), runtime.WithSubprotocols("member"))...)
			ref.p.Store(rt)
			c := dial(t, url)
			conns := make([]*wire.Conn, members)
			for i := range conns {
				mc, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{"member"}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { mc.CloseNow() })
				conns[i] = mc
			}
			eventually(t, bound, "every member to join", func() bool { r, ok := rt.Room("room"); return ok && r.Len() == members })
			room, _ := rt.Room("room")
			msg := make([]byte, 32)
			echoOnce := func() {
				if err := c.WriteMessage(wire.OpBinary, msg); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					t.Fatal(err)
				}
			}
			broadcastOnce := func() {
				if n := room.Broadcast(wire.OpBinary, msg); n != members {
					t.Fatalf("broadcast reached %d members, want %d", n, members)
				}
				for _, mc := range conns {
					if _, _, err := mc.ReadMessage(); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 50 { // warm the pools
				echoOnce()
				broadcastOnce()
			}
			echo := testing.AllocsPerRun(300, echoOnce)
			bc := testing.AllocsPerRun(100, broadcastOnce)
			t.Logf("allocs per op: echo %.2f, broadcast to %d %.2f (race %v)", echo, members, bc, race)
			switch {
			case !tc.free && (echo == 0 || bc == 0):
				t.Errorf("with the SDK, echo %.2f and broadcast %.2f allocs: the measurement misses the instrumentation", echo, bc)
			case tc.free && !race && (echo != 0 || bc != 0):
				t.Errorf("instrumentation off, yet echo %.2f and broadcast %.2f allocs per op, want 0", echo, bc)
			}
		})
	}
}

// wrapped is a provider of the application's own, without the SDK's
// Shutdown: telemetry through it is on.
type wrapped struct{ trace.TracerProvider }

// TestTelemetryDetection: the no-op providers and the global ones while
// no SDK is installed record nothing, so instrumentation is off; the SDKs'
// providers and any other are on. Without a type name in sight.
func TestTelemetryDetection(t *testing.T) {
	sdk := sdktrace.NewTracerProvider()
	defer sdk.Shutdown(context.Background())
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	for _, tc := range []struct {
		name string
		p    any
		on   bool
	}{
		{"nil", nil, false},
		{"trace noop", tracenoop.NewTracerProvider(), false},
		{"metric noop", metricnoop.NewMeterProvider(), false},
		{"global tracer provider, no SDK", otel.GetTracerProvider(), false},
		{"global meter provider, no SDK", otel.GetMeterProvider(), false},
		{"trace SDK", sdk, true},
		{"metric SDK", mp, true},
		{"the application's own", wrapped{sdk}, true},
	} {
		if got := runtime.Enabled(tc.p); got != tc.on {
			t.Errorf("%s: enabled %v, want %v", tc.name, got, tc.on)
		}
	}
}

// TestTraceDeliveries: "did message X reach user Y" from the trace alone.
// A publish records at most TraceDeliveries deliver spans of each kind;
// a member whose session is closing gets one that says so, named by its
// user; a frame sent with SendContext gets its own, child of the
// message's span.
func TestTraceDeliveries(t *testing.T) { eachTransport(t, testTraceDeliveries) }

func testTraceDeliveries(t *testing.T) {
	const members = 5
	k := newOtelKit(t)
	var ref rtRef
	var n atomic.Int64
	h := handler{
		open: func(s *session.Session) error {
			if s.Subprotocol() == "member" {
				ref.get().Join("room", s)
			}
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			r, _ := ref.get().Room("room")
			switch string(m.Data) {
			case "close one":
				for member := range r.Members() {
					member.Close(wire.StatusNormalClosure, "bye") // closing: refuses the next frame
					break
				}
			case "publish":
				r.BroadcastContext(m.Context(), wire.OpText, []byte("news"))
			}
			return s.SendContext(m.Context(), wire.OpText, []byte("done"))
		},
	}
	rt, url := start(t, h, k.traces(), runtime.WithTraceDeliveries(2), runtime.WithSubprotocols("member", "sender"),
		runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
			return runtime.Admission{Identity: "user-" + strconv.FormatInt(n.Add(1), 10)}, nil
		}))
	ref.p.Store(rt)
	for range members {
		c, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{"member"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
	}
	sender, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{"sender"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.CloseNow() })
	eventually(t, bound, "every member to join", func() bool { r, ok := rt.Room("room"); return ok && r.Len() == members })
	ask := func(msg string) {
		t.Helper()
		if err := sender.WriteMessage(wire.OpText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		sender.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, p, err := sender.ReadMessage(); err != nil || string(p) != "done" {
			t.Fatalf("got %q, %v; want done", p, err)
		}
	}

	// The reply, sent with SendContext: its deliver span is the receive
	// span's child, with the sender's user.
	ask("hello")
	recv := k.waitSpans(t, "receive", 1)[0]
	d := k.waitSpans(t, "deliver", 1)
	wantChild(t, d[0], recv)
	wantAttrs(t, d[0], map[string]any{"shockwave.delivery.outcome": "written", "user.id": "user-6"})

	// One member closing, then a publish: 4 written, of which 2 are
	// recorded, and 1 refused, recorded with its user and an error
	// status.
	ask("close one")
	ask("publish")
	pub := k.waitSpans(t, "publish", 1)[0]
	wantFanout(t, pub, members-1, 1)
	var written, refused []sdktrace.ReadOnlySpan
	eventually(t, bound, "the publish's deliver spans", func() bool {
		written, refused = nil, nil
		for _, d := range k.spans("deliver") {
			if d.Parent().SpanID() != pub.SpanContext().SpanID() {
				continue
			}
			if spanAttrs(d)["shockwave.delivery.outcome"].AsString() == "written" {
				written = append(written, d)
			} else {
				refused = append(refused, d)
			}
		}
		return len(written) == 2 && len(refused) == 1
	})
	wantAttrs(t, refused[0], map[string]any{"shockwave.delivery.outcome": "session_closed"})
	if refused[0].Status().Code != codes.Error {
		t.Errorf("refused delivery's status %v, want Error", refused[0].Status())
	}
	if u := spanAttrs(refused[0])["user.id"].AsString(); !strings.HasPrefix(u, "user-") {
		t.Errorf("refused delivery's user.id %q", u)
	}
	time.Sleep(50 * time.Millisecond)                     // the bound holds: no more come
	if got := len(k.spans("deliver")); got != 1+1+2+1+1 { // hello, close one, 2 of 4 written, 1 refused, publish's reply
		t.Errorf("%d deliver spans in all, want 6", got)
	}
}

// TestMetricsRooms: the rooms Options.MeteredRooms names carry their name
// on the broadcast metrics, at most MaxMeteredRooms at once (the others
// that match count as "_other", and a removed room frees its place);
// rooms that match no pattern carry no name.
func TestMetricsRooms(t *testing.T) {
	k := newOtelKit(t)
	var ref rtRef
	rt, url := start(t, handler{
		open: func(s *session.Session) error {
			ref.get().Join(s.Subprotocol(), s) // each client's subprotocol names its room
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			r, _ := ref.get().Room(s.Subprotocol())
			r.BroadcastContext(m.Context(), wire.OpText, m.Data)
			return nil
		},
	}, k.metrics(), runtime.WithRoomMetrics(2, "match-*"),
		runtime.WithSubprotocols("match-1", "match-2", "match-3", "match-4", "lobby"))
	ref.p.Store(rt)
	clients := map[string]*wire.Conn{}
	publish := func(room string) {
		t.Helper()
		c, ok := clients[room]
		if !ok {
			var err error
			if c, err = dialCtx(url, &wire.DialOptions{Subprotocols: []string{room}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.CloseNow() })
			clients[room] = c
			eventually(t, bound, "the join", func() bool { _, ok := rt.Room(room); return ok })
		}
		if err := c.WriteMessage(wire.OpText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	for _, room := range []string{"match-1", "match-2", "match-3", "lobby"} {
		publish(room)
	}
	var m metricsView
	eventually(t, bound, "4 publishes", func() bool {
		m = k.collect(t)
		return m.histCount("shockwave.broadcast.fanout", nil) == 4
	})
	const room = "messaging.destination.name"
	if got, want := m.histCounts("shockwave.broadcast.fanout", room), map[string]int64{"match-1": 1, "match-2": 1, "_other": 1, "": 1}; !sameCounts(got, want) {
		t.Errorf("fanout by room = %v, want %v", got, want)
	}
	if got, want := m.points("shockwave.room.members", room), map[string]int64{"match-1": 1, "match-2": 1}; !sameCounts(got, want) {
		t.Errorf("room members = %v, want %v", got, want)
	}

	// match-1 empties and goes: match-4 takes its place.
	clients["match-1"].Close(wire.StatusNormalClosure, "")
	eventually(t, bound, "match-1 to go", func() bool { _, ok := rt.Room("match-1"); return !ok })
	publish("match-4")
	eventually(t, bound, "match-4's publish", func() bool {
		m = k.collect(t)
		return m.histCounts("shockwave.broadcast.fanout", room)["match-4"] == 1
	})
	if got, want := m.points("shockwave.room.members", room), map[string]int64{"match-2": 1, "match-4": 1}; !sameCounts(got, want) {
		t.Errorf("room members = %v, want %v", got, want)
	}
}

// TestTraceSessionClose: a session's end is a "session close" span with
// its cause, linked to the message that made it a slow consumer; what
// OnClose does in s.Context() (a departure announced to a room) is part
// of that trace.
func TestTraceSessionClose(t *testing.T) { eachTransport(t, testTraceSessionClose) }

func testTraceSessionClose(t *testing.T) {
	k := newOtelKit(t)
	var ref rtRef
	rt, url := start(t, handler{
		open: func(s *session.Session) error { ref.get().Join("all", s); return nil },
		msg: func(s *session.Session, m session.Message) error {
			for range 5 { // 4 fit the mailbox while the handler runs; the 5th makes it a slow consumer
				s.SendContext(m.Context(), wire.OpText, []byte("y"))
			}
			return nil
		},
		close: func(s *session.Session, err error) {
			if r, ok := ref.get().Room("all"); ok {
				r.BroadcastContext(s.Context(), wire.OpText, []byte("left"))
			}
		},
	}, k.traces(), runtime.WithMailbox(4, 1<<20, session.PolicyClose))
	ref.p.Store(rt)
	other := dial(t, url)
	slow := dial(t, url)
	eventually(t, bound, "both to join", func() bool { r, ok := rt.Room("all"); return ok && r.Len() == 2 })
	if err := slow.WriteMessage(wire.OpText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	readUntilError(slow)
	other.NetConn().SetReadDeadline(time.Now().Add(bound))
	if _, p, err := other.ReadMessage(); err != nil || string(p) != "left" {
		t.Fatalf("other got %q, %v; want left", p, err)
	}

	recv := k.waitSpans(t, "receive", 1)[0]
	end := k.waitSpans(t, "session close", 1)[0]
	wantAttrs(t, end, map[string]any{"shockwave.close.cause": "slow_consumer", "websocket.close.code": 1008})
	if end.Status().Code != codes.Error || end.Parent().IsValid() {
		t.Errorf("session close: status %v, parent %v; want Error, a root", end.Status(), end.Parent())
	}
	linked := false
	for _, l := range end.Links() {
		linked = linked || l.SpanContext.SpanID() == recv.SpanContext().SpanID()
	}
	if !linked {
		t.Errorf("session close links %v, not the receive span %s", end.Links(), recv.SpanContext().SpanID())
	}
	pub := k.waitSpans(t, "publish", 1)[0]
	wantChild(t, pub, end)
	if t.Failed() || testing.Verbose() {
		t.Logf("spans:\n%s", renderTrees(k.spans("")))
	}
}

// TestOutcomeNames: every way a frame or a session ends has the name the
// spans and metrics give it (docs/observability.md lists them).
func TestOutcomeNames(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "written"},
		{session.ErrClosed, "session_closed"},
		{session.ErrSlowConsumer, "slow_consumer"},
		{session.ErrDropped, "dropped"},
		{session.ErrOverBudget, "outbound_memory"},
		{fmt.Errorf("write: %w", syscall.EPIPE), "write_failed"},
	} {
		if got := runtime.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	oldest := fmt.Errorf("%w (%w)", session.ErrDropped, engine.ErrDroppedOldest) // as the session says it
	for _, tc := range []struct {
		err  error
		want string
	}{
		{session.ErrSlowConsumer, "close"},
		{session.ErrDropped, "drop-newest"},
		{oldest, "drop-oldest"},
		{session.ErrOverBudget, ""},
		{session.ErrClosed, ""},
	} {
		if got := runtime.PolicyOf(tc.err); got != tc.want {
			t.Errorf("PolicyOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		code wire.StatusCode
		want string
	}{
		{nil, 1000, "closed"},
		{wire.CloseError{Code: 4000}, 4000, "closed"},
		{session.ErrSlowConsumer, 1008, "slow_consumer"},
		{session.ErrMessageTimeout, 1008, "message_timeout"},
		{fmt.Errorf("%w: idle", session.ErrTimeout), 1001, "timeout"},
		{session.ErrExpired, 3000, "expired"},
		{wire.ErrBudgetExhausted, 1013, "inbound_memory"},
		{&session.PanicError{Value: "x"}, 1011, "panic"},
		{wire.ErrMessageTooBig, 1009, "protocol_error"},
		{errors.New("the handler's"), 1011, "handler_error"},
		{io.EOF, 1006, "connection_lost"},
	} {
		if got := runtime.CloseCause(tc.err, tc.code); got != tc.want {
			t.Errorf("CloseCause(%v, %d) = %q, want %q", tc.err, tc.code, got, tc.want)
		}
	}
}
