package codec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// tracedRuntime serves r on a runtime that records every span, and returns
// the recorder.
func tracedRuntime(t *testing.T, r *Router, opts ...runtime.Option) (*runtime.Runtime, string, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) // after the runtime's shutdown
	rt, url := serve(t, r, append(opts, runtime.WithTracerProvider(tp))...)
	return rt, url, sr
}

// ended returns the ended spans called name.
func ended(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// waitEnded waits until n spans called name have ended, and returns them.
func waitEnded(t testing.TB, sr *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	waitUntil(t, name+" spans", func() bool { got = ended(sr, name); return len(got) >= n })
	return got
}

// waitReceive waits for the nth receive span of event to end, and returns
// it.
func waitReceive(t testing.TB, sr *tracetest.SpanRecorder, event string, nth int) sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	waitUntil(t, "receive spans of "+event, func() bool {
		got = got[:0]
		for _, s := range ended(sr, "receive") {
			if attr(s, "shockwave.event") == event {
				got = append(got, s)
			}
		}
		return len(got) >= nth
	})
	return got[nth-1]
}

// attr returns the value of a span's attribute as a string, or "" when it
// has none.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// exceptions returns the messages of a span's exception events.
func exceptions(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		if e.Name != "exception" {
			continue
		}
		for _, kv := range e.Attributes {
			if kv.Key == "exception.message" {
				out = append(out, kv.Value.AsString())
			}
		}
	}
	return out
}

func isChild(child, parent sdktrace.ReadOnlySpan) bool {
	return child.Parent().SpanID() == parent.SpanContext().SpanID() &&
		child.SpanContext().TraceID() == parent.SpanContext().TraceID()
}

// TestTraceFailures: every failure the Router handles marks the message's
// receive span with status Error, a description and the error code; the
// server's own errors are recorded as exceptions too. Requests that
// succeed leave the status unset.
func TestTraceFailures(t *testing.T) {
	r, _ := testRouter()
	_, url, sr := tracedRuntime(t, r)
	for _, cc := range clientCodecs[1:] {
		t.Run(cc.name, func(t *testing.T) {
			c := dialCodec(t, url, cc.codec)
			notEnvelope := map[Codec]string{JSON: "{garbage", MsgPack: "\xc1"}[c.codec]
			decoderError := map[Codec]string{JSON: "json: cannot unmarshal", MsgPack: "msgpack: invalid code"}[c.codec]
			for _, tc := range []struct {
				name      string
				send      func()
				code      string // "": the status stays Unset
				desc      string // a substring of the status description
				exception string // a substring of the exception recorded, "" for none
			}{
				{"not an envelope", func() { c.sendRaw(c.codec.Opcode(), []byte(notEnvelope)) },
					CodeBadMessage, "", ""},
				{"no event", func() { c.send(env{I: 1}) }, CodeBadMessage, "no event name", ""},
				{"unknown event", func() { c.send(env{E: "nope", I: 2}) }, CodeUnknownEvent, `unknown event "nope"`, ""},
				{"bad payload", func() { c.send(env{E: "echo", I: 3, D: map[string]any{"n": "x"}}) },
					CodeBadPayload, `payload of "echo": field "n" must be `, decoderError},
				{"handler *Error", func() { c.send(env{E: "fail", I: 4, D: echoReq{Text: "app"}}) },
					"forbidden", "not for you", ""},
				{"handler *Error, event", func() { c.send(env{E: "fail", D: echoReq{Text: "app"}}) },
					"forbidden", "not for you", ""},
				{"handler error", func() { c.send(env{E: "fail", I: 5}) },
					CodeInternal, "secret internal detail", "secret internal detail"},
				{"result does not encode", func() { c.send(env{E: "unencodable", I: 6}) },
					CodeInternal, "does not encode", "func"},
				{"request", func() { c.send(env{E: "echo", I: 7, D: echoReq{Text: "ok"}}) }, "", "", ""},
				{"event", func() { c.send(env{E: "chat.send", D: Chat{Text: "ok"}}) }, "", "", ""},
			} {
				before := len(ended(sr, "receive"))
				tc.send()
				c.read()
				recv := waitEnded(t, sr, "receive", before+1)
				s := recv[before]
				st := s.Status()
				switch {
				case tc.code == "" && (st.Code != codes.Unset || attr(s, attrErrorCode) != ""):
					t.Errorf("%s: status %v, %s %q; want unset", tc.name, st, attrErrorCode, attr(s, attrErrorCode))
				case tc.code != "" && (st.Code != codes.Error || !strings.Contains(st.Description, tc.desc)):
					t.Errorf("%s: status %v, want Error with %q", tc.name, st, tc.desc)
				case tc.code != "" && attr(s, attrErrorCode) != tc.code:
					t.Errorf("%s: %s = %q, want %q", tc.name, attrErrorCode, attr(s, attrErrorCode), tc.code)
				}
				ex := exceptions(s)
				if tc.exception == "" && len(ex) != 0 || tc.exception != "" && (len(ex) != 1 || !strings.Contains(ex[0], tc.exception)) {
					t.Errorf("%s: exceptions %q, want one with %q", tc.name, ex, tc.exception)
				}
			}
		})
	}
}

// TestTraceFailuresStrict: a message that closes a strict Router's session
// marks its span all the same.
func TestTraceFailuresStrict(t *testing.T) {
	r, _ := testRouter(WithStrict())
	_, url, sr := tracedRuntime(t, r)
	c := dialCodec(t, url, JSON)
	c.send(env{E: "echo", D: 5})
	if code := c.readClose(); code != wire.StatusInvalidFramePayloadData {
		t.Fatalf("close code %d", code)
	}
	s := waitEnded(t, sr, "receive", 1)[0]
	if s.Status().Code != codes.Error || attr(s, attrErrorCode) != CodeBadPayload {
		t.Fatalf("status %v, %s %q", s.Status(), attrErrorCode, attr(s, attrErrorCode))
	}
}

// TestTraceDeliveries: what the Router sends in a message's trace — the
// reply to a request, an error, an EmitContext, a PublishExceptContext —
// is delivered under the message's receive span, and the runtime records
// each delivery.
func TestTraceDeliveries(t *testing.T) {
	r := NewRouter(JSON)
	Handle(r, "ask", func(s *session.Session, ev Event[echoReq]) (echoReq, error) {
		if ev.Data.Text == "no" {
			return echoReq{}, &Error{Code: "refused", Message: "no"}
		}
		if err := r.EmitContext(ev.Ctx, s, "note", ev.Data); err != nil {
			return echoReq{}, err
		}
		return ev.Data, nil
	})
	var rt *runtime.Runtime
	On(r, "say", func(s *session.Session, ev Event[echoReq]) error {
		room, _ := rt.Room(ev.Room)
		_, err := r.PublishExceptContext(ev.Ctx, room, s, "said", ev.Data)
		return err
	})
	rt, url, sr := tracedRuntime(t, r)
	r.HandleRooms(rt, Rooms{})

	t.Run("reply and EmitContext", func(t *testing.T) {
		c := dialCodec(t, url, JSON)
		c.send(env{E: "ask", I: 1, D: echoReq{Text: "hi"}})
		note, rep := c.read(), c.read()
		if note.E != "note" || rep.id() != 1 || rep.X != nil {
			t.Fatalf("got %+v then %+v", note, rep)
		}
		recv := waitReceive(t, sr, "ask", 1)
		if want := traceparent(trace.ContextWithSpanContext(context.Background(), recv.SpanContext())); note.T != want {
			t.Errorf("the event's traceparent %q, want the receive span's %q", note.T, want)
		}
		wantDeliveries(t, sr, recv, 2)
	})
	t.Run("error reply", func(t *testing.T) {
		c := dialCodec(t, url, MsgPack)
		if rep := c.request(env{E: "ask", I: 1, D: echoReq{Text: "no"}}); rep.X == nil || rep.X.Code != "refused" {
			t.Fatalf("got %+v", rep)
		}
		wantDeliveries(t, sr, waitReceive(t, sr, "ask", 2), 1)
	})
	t.Run("error event", func(t *testing.T) {
		c := dialCodec(t, url, JSON)
		c.send(env{E: "nope"})
		if ev := c.read(); ev.E != EventError {
			t.Fatalf("got %+v", ev)
		}
		wantDeliveries(t, sr, waitReceive(t, sr, "nope", 1), 1)
	})
	t.Run("PublishExceptContext", func(t *testing.T) {
		var members []*client
		for _, cc := range clientCodecs {
			c := dialCodec(t, url, cc.codec)
			c.request(env{E: EventJoin, R: "traced", I: 1})
			members = append(members, c)
		}
		members[0].send(env{E: "say", R: "traced", D: echoReq{Text: "all"}})
		for _, c := range members[1:] {
			if ev := c.read(); ev.E != "said" || ev.R != "traced" {
				t.Fatalf("got %+v", ev)
			}
		}
		recv := waitReceive(t, sr, "say", 1)
		var pub sdktrace.ReadOnlySpan
		for _, s := range waitEnded(t, sr, "publish", 1) {
			if isChild(s, recv) {
				pub = s
			}
		}
		if pub == nil {
			t.Fatal("no publish span under the receive span")
		}
		// The sender was left out: a delivery for each other member.
		wantDeliveries(t, sr, pub, len(members)-1)
	})
}

// wantDeliveries waits for n deliver spans under parent, all written.
func wantDeliveries(t *testing.T, sr *tracetest.SpanRecorder, parent sdktrace.ReadOnlySpan, n int) {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	waitUntil(t, "deliver spans", func() bool {
		got = got[:0]
		for _, s := range ended(sr, "deliver") {
			if isChild(s, parent) {
				got = append(got, s)
			}
		}
		return len(got) >= n
	})
	if len(got) != n {
		t.Errorf("%d deliver spans under the %s span, want %d", len(got), parent.Name(), n)
	}
	for _, s := range got {
		if o := attr(s, "shockwave.delivery.outcome"); o != "written" {
			t.Errorf("deliver span: outcome %q", o)
		}
	}
}

// TestTraceUntracedFree: with no recording span, marking a failure costs
// nothing (and a frame sent in such a context carries none: see
// session.Session.SendFrameContext).
func TestTraceUntracedFree(t *testing.T) {
	nonRecording := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
	}))
	err := errors.New("x")
	for _, ctx := range []context.Context{context.Background(), nonRecording} {
		if n := testing.AllocsPerRun(100, func() {
			failed(ctx, CodeInternal, "x", err)
		}); n != 0 {
			t.Errorf("%.0f allocations", n)
		}
	}
}
