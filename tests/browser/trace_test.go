package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/runtime"
)

// TestTraceFromPage follows a chat message from the page that sent it into
// the server's traces, in Chromium, with examples/chat on a runtime that
// records its spans. Alice opens the page with ?debug=1: the client starts
// a trace for what she sends, and the debug panel shows the traceparent of
// her chat.send. In that very trace the server recorded the message's
// "receive" span, child of the page's span (a remote parent), the room's
// "publish" under it, and a "deliver" span for each member, alice and bob
// (user.id), under the publish; both
// pages show the trace id next to the message, as it arrived. The view is
// remembered; with it switched off, the next message carries no
// traceparent and the server's receive span starts a trace of its own.
func TestTraceFromPage(t *testing.T) {
	browser := newBrowser(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("tracer provider: %v", err)
		}
	})
	srv, err := chatserver.New(chatserver.Config{Runtime: []runtime.Option{runtime.WithTracerProvider(tp)}})
	if err != nil {
		t.Fatal(err)
	}
	url := serveLoopback(t, srv, srv.Shutdown)

	alice := newTab(t, newProfile(t, browser), "alice", 880, 600)
	bob := newTab(t, newProfile(t, browser), "bob", 880, 600)
	alice.do("open the page", chromedp.Navigate(url+"/?debug=1#lobby"))
	alice.signIn("alice")
	bob.login(url, "bob", "lobby")
	alice.waitFor("the room, with the debug view", `document.getElementById('room-title').textContent === '#lobby' &&
		document.getElementById('status').dataset.state === 'online' &&
		!document.getElementById('debug').hidden && document.getElementById('debug-toggle').checked`)
	alice.waitFor("bob in the member list", `[...document.querySelectorAll('#members .member')].some((b) => b.firstChild.textContent === 'bob')`)
	if eval[bool](bob, `!document.getElementById('debug').hidden`) {
		t.Error("bob's page shows the debug view, which he did not ask for")
	}

	const text = "Where does this one go?"
	alice.say(text)
	alice.waitForMessage("alice", text)
	bob.waitForMessage("alice", text)

	// What the page sent, as its debug panel shows it.
	alice.waitFor("chat.send in the trace panel", `document.querySelector('#traces li[data-direction="sent"][data-event="chat.send"] .trace-id') !== null`)
	sent := eval[string](alice, `document.querySelector('#traces li[data-direction="sent"][data-event="chat.send"] .trace-id').dataset.traceparent`)
	m := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`).FindStringSubmatch(sent)
	if m == nil {
		t.Fatalf("the page sent chat.send with traceparent %q, want 00-<trace id>-<span id>-01", sent)
	}
	traceID, pageSpan := m[1], m[2]
	if got := eval[string](alice, `document.querySelector('#traces li[data-direction="sent"][data-event="chat.send"] .trace-id').textContent`); got != traceID {
		t.Errorf("the panel shows %q for the traceparent %s, want its trace id", got, sent)
	}

	// The message arrived in that trace: both pages keep its trace id,
	// shown next to it in alice's debug view, hidden in bob's page.
	shownWith := func(tb *tab) (id string, visible bool) {
		tb.t.Helper()
		v := eval[[]any](tb, fmt.Sprintf(`(() => {
			const li = [...document.querySelectorAll('#messages .msg')].find((li) => li.querySelector('.text').textContent === %s);
			const c = li && li.querySelector('.trace-id');
			return c ? [c.textContent, getComputedStyle(c).display !== 'none'] : ['', false];
		})()`, jsString(text)))
		return v[0].(string), v[1].(bool)
	}
	if id, visible := shownWith(alice); id != traceID || !visible {
		t.Errorf("alice's page shows trace id %q (visible %v) next to her message, want %s", id, visible, traceID)
	}
	if id, visible := shownWith(bob); id != traceID || visible {
		t.Errorf("bob's page keeps trace id %q (visible %v) with alice's message, want %s, hidden", id, visible, traceID)
	}

	// The server's spans of that trace: the receive, the publish, a
	// delivery to each member.
	var recv, pub sdktrace.ReadOnlySpan
	delivered := map[string]sdktrace.ReadOnlySpan{} // the publish's, by user
	waitForSpans(t, "the receive, publish and deliver spans of the page's trace", func() bool {
		recv, pub = nil, nil
		clear(delivered)
		ended := spans.Ended()
		for _, s := range ended {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			switch s.Name() {
			case "receive":
				recv = s
			case "publish":
				pub = s
			}
		}
		if pub == nil {
			return false
		}
		for _, s := range ended {
			if s.Name() == "deliver" && s.Parent().SpanID() == pub.SpanContext().SpanID() {
				delivered[attr(s, "user.id")] = s
			}
		}
		return recv != nil && delivered["alice"] != nil && delivered["bob"] != nil
	}, func() string { return dumpSpans(spans.Ended()) })
	if p := recv.Parent(); p.SpanID().String() != pageSpan || !p.IsRemote() {
		t.Errorf("receive span: parent %s (remote %v), want the page's span %s", p.SpanID(), p.IsRemote(), pageSpan)
	}
	if got := attr(recv, "shockwave.event"); got != chatserver.EventSend {
		t.Errorf("receive span of %q, want %q", got, chatserver.EventSend)
	}
	if got := attr(pub, "messaging.destination.name"); got != "lobby" {
		t.Errorf("publish span to %q, want lobby", got)
	}
	if !descends(spans.Ended(), pub, recv) {
		t.Errorf("the publish span %s does not descend from the receive span %s", pub.SpanContext().SpanID(), recv.SpanContext().SpanID())
	}
	if got, want := attr(delivered["alice"], "shockwave.session.id"), attr(recv, "shockwave.session.id"); got != want {
		t.Errorf("deliver span to alice: session %s, want the sender's, %s", got, want)
	}
	for user, d := range delivered {
		if d.SpanContext().TraceID().String() != traceID {
			t.Errorf("deliver span to %s in trace %s, want %s", user, d.SpanContext().TraceID(), traceID)
		}
		if got := attr(d, "shockwave.delivery.outcome"); got != "written" {
			t.Errorf("deliver span to %s: outcome %q, want written", user, got)
		}
	}
	if len(delivered) != 2 {
		t.Errorf("deliver spans of the publish to %v, want alice and bob", keys(delivered))
	}

	// The view is remembered. Switched off, it hides the trace ids, and
	// the page sends no traceparent: the server's receive span of the next
	// message is the root of a new trace.
	if got := eval[string](alice, `localStorage.getItem('chat.debug')`); got != "1" {
		t.Errorf("localStorage chat.debug = %q after ?debug=1, want 1", got)
	}
	alice.do("switch the debug view off", chromedp.Click(chromedp.ID("debug-toggle")))
	alice.waitFor("the debug view hidden", `document.getElementById('debug').hidden && localStorage.getItem('chat.debug') === '0'`)
	if _, visible := shownWith(alice); visible {
		t.Error("with the debug view off, alice's page still shows trace ids")
	}
	const quiet = "And this one, untraced by the page?"
	alice.say(quiet)
	bob.waitForMessage("alice", quiet)
	var untraced sdktrace.ReadOnlySpan
	waitForSpans(t, "the receive span of the second chat.send", func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "receive" && attr(s, "shockwave.event") == chatserver.EventSend && s.SpanContext().TraceID().String() != traceID {
				untraced = s
				return true
			}
		}
		return false
	}, func() string { return dumpSpans(spans.Ended()) })
	if p := untraced.Parent(); p.IsValid() {
		t.Errorf("receive span of a message sent with the debug view off: parent %s (remote %v), want none", p.SpanID(), p.IsRemote())
	}
	if got := eval[string](alice, `String(document.querySelectorAll('#traces li').length)`); got != "0" {
		t.Errorf("the trace panel has %s rows with the debug view off", got)
	}
}

// TestTraceFromGamePage: examples/game's page with ?debug=1 traces its
// join and shows the trace id it sent, the one game.trace.sent gives; the
// server's receive span of the join continues that trace.
func TestTraceFromGamePage(t *testing.T) {
	browser := newBrowser(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	srv, err := gameserver.New(gameserver.Config{Runtime: []runtime.Option{runtime.WithTracerProvider(tp)}})
	if err != nil {
		t.Fatal(err)
	}
	url := serveLoopback(t, srv, srv.Shutdown)

	tb := newTab(t, browser, "player", 960, 600)
	tb.do("open the page", chromedp.Navigate(url+"/?debug=1"))
	tb.waitFor("the join, traced", `window.game !== undefined && game.connected && game.id > 0 &&
		!document.getElementById('debug').hidden && document.getElementById('debug-toggle').checked &&
		document.getElementById('trace-sent-event').textContent === 'join'`)
	sent := eval[string](tb, `document.getElementById('trace-sent').dataset.traceparent`)
	m := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`).FindStringSubmatch(sent)
	if m == nil {
		t.Fatalf("the page sent join with traceparent %q, want 00-<trace id>-<span id>-01", sent)
	}
	if got := eval[string](tb, `document.getElementById('trace-sent').textContent + ' ' + game.trace.sent`); got != m[1]+" "+m[1] {
		t.Errorf("the page shows, and game.trace.sent says, %q; want the trace id %s twice", got, m[1])
	}
	waitForSpans(t, "the join's receive span, in the page's trace", func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "receive" && s.SpanContext().TraceID().String() == m[1] &&
				s.Parent().SpanID().String() == m[2] && s.Parent().IsRemote() && attr(s, "shockwave.event") == "join" {
				return true
			}
		}
		return false
	})

	// Switched off, the view hides, and is remembered so.
	tb.do("switch the debug view off", chromedp.Click(chromedp.ID("debug-toggle")))
	tb.waitFor("the debug view hidden", `document.getElementById('debug').hidden && localStorage.getItem('game.debug') === '0'`)
}

// serveLoopback serves h on loopback and returns its URL. When the test
// ends, shutdown (the server's Shutdown) runs, within bound, then the
// listener closes.
func serveLoopback(t *testing.T, h http.Handler, shutdown func(context.Context) error) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return hs.URL
}

// waitForSpans polls ok until it is true, within bound; dump, if any,
// says what was recorded instead.
func waitForSpans(t *testing.T, what string, ok func() bool, dump ...func() string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !ok() {
		if time.Now().After(deadline) {
			var got string
			for _, d := range dump {
				got += d()
			}
			t.Fatalf("waiting for %s: not recorded after %v%s", what, bound, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attr returns the value of s's attribute key as a string, or "".
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			if kv.Value.Type() == attribute.STRING {
				return kv.Value.AsString()
			}
			return kv.Value.Emit()
		}
	}
	return ""
}

// descends reports whether span s is ancestor, or a descendant of it,
// among spans.
func descends(spans []sdktrace.ReadOnlySpan, s, ancestor sdktrace.ReadOnlySpan) bool {
	byID := make(map[trace.SpanID]sdktrace.ReadOnlySpan, len(spans))
	for _, x := range spans {
		byID[x.SpanContext().SpanID()] = x
	}
	for range len(spans) + 1 { // bounded, whatever the spans say
		if s.SpanContext().SpanID() == ancestor.SpanContext().SpanID() {
			return true
		}
		p, ok := byID[s.Parent().SpanID()]
		if !ok {
			return false
		}
		s = p
	}
	return false
}

// keys returns the keys of m.
func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// dumpSpans lists spans, one a line: name, trace, span, parent, attributes.
func dumpSpans(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	b.WriteString("; the spans recorded:")
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s trace %s span %s parent %s (remote %v)", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID(), s.Parent().IsRemote())
		for _, kv := range s.Attributes() {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.Emit())
		}
	}
	return b.String()
}
