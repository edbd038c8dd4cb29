package chatserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestTraceDemo plays the story of docs/observability.md, "A message that
// did not arrive": alice, bob and carol are in the lobby; carol's
// connection stops taking what it is sent (a phone in a tunnel), alice
// talks on, and carol, her mailbox full, is closed as a slow consumer.
// The trace of the message that did it says so: a deliver span for carol
// with outcome slow_consumer, and carol's session close span links to it.
//
// With SHOCKWAVE_TRACE_DEMO=file, the spans are written to file as
// OTEL_TRACES_EXPORTER=stdout writes them, for examples/waterfall:
//
//	SHOCKWAVE_TRACE_DEMO=/tmp/spans.json go test -run TestTraceDemo ./examples/chat/chatserver/
//	go run ./examples/waterfall -find shockwave.delivery.outcome=slow_consumer -o docs/trace-slow-consumer.svg /tmp/spans.json
func TestTraceDemo(t *testing.T) {
	var w io.Writer = io.Discard
	if path := os.Getenv("SHOCKWAVE_TRACE_DEMO"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	_, url := server(t, chatserver.Config{Rate: -1, Runtime: []runtime.Option{
		runtime.WithTracerProvider(tp),
		runtime.WithMailbox(64, 64<<10, session.PolicyClose), // small, so that the story is short
		runtime.WithCloseTimeout(200 * time.Millisecond),     // carol will not answer the close frame
	}})

	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	carol := stalled(t, url, "carol", "lobby")
	defer carol.CloseNow()

	slow := func() sdktrace.ReadOnlySpan {
		for _, s := range rec.Ended() {
			if s.Name() == "deliver" && attrOf(s, "shockwave.delivery.outcome") == "slow_consumer" {
				return s
			}
		}
		return nil
	}
	line := strings.Repeat("all work and no play makes jack a dull boy ", 40)
	var d sdktrace.ReadOnlySpan
	for i := 0; d == nil; i++ {
		if i == 5000 {
			t.Fatal("carol was never closed as a slow consumer")
		}
		alice.emit(send, "lobby", text(line[:1000+i%500]))
		message(bob, "lobby") // bob keeps up, and alice waits for him
		message(alice, "lobby")
		d = slow()
	}
	if u := attrOf(d, "user.id"); u != "carol" {
		t.Errorf("the slow consumer's deliver span names %q, want carol", u)
	}
	var end sdktrace.ReadOnlySpan
	deadline := time.Now().Add(bound)
	for end == nil {
		for _, s := range rec.Ended() {
			if s.Name() == "session close" && attrOf(s, "user.id") == "carol" {
				end = s
			}
		}
		if end == nil && time.Now().After(deadline) {
			t.Fatal("no session close span for carol")
		}
		time.Sleep(time.Millisecond)
	}
	linked := false
	for _, l := range end.Links() {
		linked = linked || l.SpanContext.TraceID() == d.SpanContext().TraceID()
	}
	if !linked || attrOf(end, "shockwave.close.cause") != "slow_consumer" {
		t.Errorf("carol's session close: cause %q, links %v; want slow_consumer, linked to trace %s",
			attrOf(end, "shockwave.close.cause"), end.Links(), d.SpanContext().TraceID())
	}
}

// stalled signs in as user, joins room, and then reads nothing more, with
// a small receive buffer, as a client whose network went quiet.
func stalled(t *testing.T, url, user, room string) *wire.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	conn, _, err := wire.Dial(ctx, wsURL(url), &wire.DialOptions{
		Subprotocols: []string{"shockwave.json"},
		Header:       cookieHeader(login(t, url, user)),
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.NetConn().(*net.TCPConn).SetReadBuffer(4 << 10)
	b, _ := json.Marshal(map[string]any{"e": join, "r": room, "i": 1})
	if err := conn.WriteMessage(wire.OpText, b); err != nil {
		t.Fatal(err)
	}
	for { // until the join's reply
		_, p, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			ID *uint64 `json:"i"`
		}
		if json.Unmarshal(p, &reply) == nil && reply.ID != nil && *reply.ID == 1 {
			return conn
		}
	}
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
