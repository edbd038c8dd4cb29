package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The trace of the fixture that continues a client's span (W3C's
// example), and that span.
const (
	chatTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan = "00f067aa0ba902b7"
)

// exported runs the fixture through the SDK and stdouttrace with opts,
// and returns what the exporter wrote. The fixture is the life of a chat
// message and of a slow member, as the runtime traces them:
//
//   - trace c4a7, continuing a client's span: alice's "receive", the
//     handler's "store message" and the "publish" to the lobby, which
//     reached bob ("deliver", written) and not carol (slow_consumer, an
//     error);
//   - trace 1: carol's "session close", an error, linked to her upgrade
//     and to the message that made her slow;
//   - trace 2: carol's "websocket upgrade", and a span whose parent never
//     ended, so was never exported.
//
// The IDs come from a seeded generator and the times from a fixed clock,
// so the output is the same on every run.
func exported(t testing.TB, opts ...stdouttrace.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	exp, err := stdouttrace.New(append([]stdouttrace.Option{stdouttrace.WithWriter(&buf)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(&seeded{rnd: rand.New(rand.NewPCG(1, 2))}))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("waterfall_test")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	start := func(ctx context.Context, name string, us int, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
		return tr.Start(ctx, name, append(opts, trace.WithTimestamp(at(us)))...)
	}
	end := func(s trace.Span, us int) { s.End(trace.WithTimestamp(at(us))) }

	// Carol's upgrade, before it all.
	_, upgrade := start(context.Background(), "websocket upgrade", 0, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("url.path", "/ws"), attribute.Int64("shockwave.session.id", 3)))
	end(upgrade, 150)
	lost, _ := start(trace.ContextWithSpan(context.Background(), upgrade), "never ended", 100)
	_, orphan := start(lost, "orphan", 110)
	end(orphan, 120)

	// Alice's message, continuing her client's span.
	client := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: hexID[trace.TraceID](chatTrace), SpanID: hexID[trace.SpanID](clientSpan),
		TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx, receive := start(trace.ContextWithRemoteSpanContext(context.Background(), client), "receive", 1000,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(trace.Link{SpanContext: upgrade.SpanContext()}), // not carol's, but an upgrade
		trace.WithAttributes(
			attribute.String("messaging.system", "websocket"),
			attribute.Int64("shockwave.session.id", 1),
			attribute.String("shockwave.event", "chat.send"),
			attribute.String("messaging.destination.name", "lobby"),
		))
	// Started after the publish is, but before it in time.
	pctx, publish := start(ctx, "publish", 1040, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.destination.name", "lobby")))
	_, store := start(ctx, "store message", 1010)
	end(store, 1030)
	publish.AddEvent("fanout", trace.WithTimestamp(at(1050)),
		trace.WithAttributes(attribute.Int("shockwave.fanout.accepted", 2)))
	_, carol := start(pctx, "deliver", 1045, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.Int64("shockwave.session.id", 3),
			attribute.String("shockwave.delivery.outcome", "slow_consumer"), attribute.String("user.id", "carol")))
	carol.SetStatus(codes.Error, "not delivered: slow_consumer")
	end(carol, 1046)
	_, bob := start(pctx, "deliver", 1042, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.Int64("shockwave.session.id", 2),
			attribute.String("shockwave.delivery.outcome", "written"), attribute.String("user.id", "bob")))
	end(bob, 1120)
	end(publish, 1130)
	end(receive, 1200)

	// Carol's end.
	_, closing := start(context.Background(), "session close", 2000, trace.WithNewRoot(),
		trace.WithLinks(trace.Link{SpanContext: upgrade.SpanContext()},
			trace.Link{SpanContext: receive.SpanContext(), Attributes: []attribute.KeyValue{
				attribute.String("shockwave.close.cause", "slow_consumer")}}),
		trace.WithAttributes(attribute.Int64("shockwave.session.id", 3), attribute.String("user.id", "carol"),
			attribute.Int("websocket.close.code", 1008), attribute.String("shockwave.close.cause", "slow_consumer")))
	closing.SetStatus(codes.Error, "slow_consumer")
	end(closing, 2300)
	return buf.Bytes()
}

// seeded makes IDs as the SDK's generator does, from a fixed seed.
type seeded struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func (g *seeded) NewIDs(ctx context.Context) (tid trace.TraceID, sid trace.SpanID) {
	g.mu.Lock()
	binary.BigEndian.PutUint64(tid[:8], g.rnd.Uint64())
	binary.BigEndian.PutUint64(tid[8:], g.rnd.Uint64())
	g.mu.Unlock()
	return tid, g.NewSpanID(ctx, tid)
}

func (g *seeded) NewSpanID(context.Context, trace.TraceID) (sid trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	binary.BigEndian.PutUint64(sid[:], g.rnd.Uint64())
	return sid
}

func hexID[ID trace.TraceID | trace.SpanID](s string) ID {
	var id ID
	var err error
	switch p := any(&id).(type) {
	case *trace.TraceID:
		*p, err = trace.TraceIDFromHex(s)
	case *trace.SpanID:
		*p, err = trace.SpanIDFromHex(s)
	}
	if err != nil {
		panic(err)
	}
	return id
}

// traceOf is the trace of the first span called name.
func traceOf(spans []Span, name string) string {
	for _, s := range spans {
		if s.Name == name {
			return s.TraceID
		}
	}
	return ""
}

// encodings are the two ways stdouttrace writes.
var encodings = []struct {
	name string
	opts []stdouttrace.Option
}{
	{"compact", nil},
	{"pretty", []stdouttrace.Option{stdouttrace.WithPrettyPrint()}},
}

// parsed exports the fixture in each encoding and parses it back.
func parsed(t *testing.T) map[string][]Span {
	t.Helper()
	out := map[string][]Span{}
	for _, enc := range encodings {
		spans, err := Parse(bytes.NewReader(exported(t, enc.opts...)))
		if err != nil {
			t.Fatalf("%s: %v", enc.name, err)
		}
		out[enc.name] = spans
	}
	return out
}

// TestParse reads both encodings to the same spans, with the kind, status,
// attributes of every type, remote parent and links that were recorded.
func TestParse(t *testing.T) {
	all := parsed(t)
	spans := all["compact"]
	if !slices.EqualFunc(spans, all["pretty"], func(a, b Span) bool { return a.SpanID == b.SpanID && a.Name == b.Name }) {
		t.Fatalf("compact and pretty differ:\n%v\n%v", spans, all["pretty"])
	}
	// In the order they ended.
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	want := []string{"websocket upgrade", "orphan", "store message", "deliver", "deliver", "publish", "receive", "session close"}
	if !slices.Equal(names, want) {
		t.Fatalf("spans %q, want %q", names, want)
	}

	closing := spans[7]
	if closing.TraceID == chatTrace || closing.TraceID == spans[0].TraceID || closing.ParentID != "" || closing.Kind != 1 || !closing.Error || closing.Status != "slow_consumer" {
		t.Errorf("session close: %+v", closing)
	}
	if v, _ := closing.Attr("websocket.close.code"); v != "1008" {
		t.Errorf("websocket.close.code %q, want 1008", v)
	}
	if len(closing.Links) != 2 || closing.Links[1].TraceID != chatTrace || closing.Links[1].SpanID != spans[6].SpanID ||
		!slices.Equal(closing.Links[1].Attrs, []Attr{{"shockwave.close.cause", "slow_consumer"}}) {
		t.Errorf("session close links %+v", closing.Links)
	}
	receive := spans[6]
	if receive.TraceID != chatTrace || receive.ParentID != clientSpan || !receive.ParentRemote || receive.Kind != 5 || receive.Error {
		t.Errorf("receive: %+v", receive)
	}
	if publish := spans[5]; len(publish.Events) != 1 || publish.Events[0].Name != "fanout" ||
		!publish.Events[0].Time.Equal(receive.Start.Add(50*time.Microsecond)) {
		t.Errorf("publish events %+v", publish.Events)
	}
	if d := receive.Duration(); d != 200*time.Microsecond {
		t.Errorf("receive took %v, want 200µs", d)
	}
}

// TestParseStream: what else may be in the stream.
func TestParseStream(t *testing.T) {
	compact := exported(t)
	lines := bytes.SplitAfter(bytes.TrimSpace(compact), []byte("\n"))
	for _, tc := range []struct {
		name  string
		in    []byte
		spans int
		err   string // in the error; "" for none
	}{
		{"no trailing newline", bytes.TrimSpace(compact), 8, ""},
		{"objects on one line", bytes.ReplaceAll(compact, []byte("\n"), nil), 8, ""},
		{"every span twice", append(slices.Clone(compact), compact...), 8, ""},
		{"a metric export between", slices.Concat(lines[0], []byte(`{"Resource":[],"ScopeMetrics":[{"Scope":{"Name":"x"},"Metrics":[]}]}`+"\n"), lines[1]), 2, ""},
		{"not objects between", slices.Concat(lines[0], []byte("42\n\"x\"\n[1]\nnull\n"), lines[1]), 2, ""},
		{"a log line", slices.Concat(lines[0], lines[1], []byte("2026/01/02 chat: open http://localhost:8080\n"), lines[2]), 2, "after 2 spans"},
		{"cut short", compact[:len(compact)-40], 7, "unexpected EOF"},
		{"empty", nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spans, err := Parse(bytes.NewReader(tc.in))
			if len(spans) != tc.spans {
				t.Errorf("%d spans, want %d", len(spans), tc.spans)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one saying %q", err, tc.err)
			}
		})
	}
}

// TestTree: each trace's rows, depth first, siblings by start time (not
// by the order they were started or ended in), the spans whose parent is
// missing at the top, marked.
func TestTree(t *testing.T) {
	spans := parsed(t)["pretty"]
	closeTrace, upgradeTrace := traceOf(spans, "session close"), traceOf(spans, "websocket upgrade")
	for _, tc := range []struct {
		trace string
		want  []string // name, indented by depth, and marker
	}{
		{chatTrace, []string{
			"receive (remote parent)",
			"  store message",
			"  publish",
			"    deliver user=bob",
			"    deliver user=carol",
		}},
		{closeTrace, []string{"session close user=carol"}},
		{upgradeTrace, []string{"websocket upgrade", "orphan (parent not in input)"}},
	} {
		t.Run(tc.trace, func(t *testing.T) {
			tr := Build(spans, tc.trace)
			var got []string
			for _, r := range tr.Rows {
				line := strings.Repeat("  ", r.Depth) + r.Name
				if u, ok := r.Attr("user.id"); ok {
					line += " user=" + u
				}
				if m := r.marker(); m != "" {
					line += " " + m
				}
				got = append(got, line)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestTreeCycle: spans that name each other as parents are drawn all the
// same, once each, after the tops (a span its own parent is one).
func TestTreeCycle(t *testing.T) {
	id := strings.Repeat("ab", 16)
	spans := []Span{
		{Name: "a", TraceID: id, SpanID: "000000000000000a", ParentID: "000000000000000b"},
		{Name: "b", TraceID: id, SpanID: "000000000000000b", ParentID: "000000000000000a"},
		{Name: "self", TraceID: id, SpanID: "000000000000000c", ParentID: "000000000000000c"},
	}
	tr := Build(spans, id)
	var got []string
	for _, r := range tr.Rows {
		got = append(got, strings.Repeat(" ", r.Depth)+r.Name)
	}
	if want := []string{"self", "a", " b"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestPick: -trace, -find and the default.
func TestPick(t *testing.T) {
	spans := parsed(t)["compact"]
	closeTrace, upgradeTrace := traceOf(spans, "session close"), traceOf(spans, "websocket upgrade")
	for _, tc := range []struct {
		name  string
		trace string
		find  []string
		want  string // the trace, or words of the error
	}{
		{"most spans", "", nil, chatTrace},
		{"trace", closeTrace, nil, closeTrace},
		{"trace in upper case", strings.ToUpper(upgradeTrace), nil, upgradeTrace},
		{"user", "", []string{"user.id=bob"}, chatTrace},
		{"first span to end with it", "", []string{"user.id=carol"}, chatTrace},
		{"close cause", "", []string{"shockwave.close.cause=slow_consumer"}, closeTrace},
		{"delivery outcome", "", []string{"shockwave.delivery.outcome=slow_consumer"}, chatTrace},
		{"an integer", "", []string{"websocket.close.code=1008"}, closeTrace},
		{"two on one span", "", []string{"user.id=carol", "shockwave.close.cause=slow_consumer"}, closeTrace},
		{"two on two spans", "", []string{"shockwave.event=chat.send", "user.id=carol"}, chatTrace},
		{"the same key twice", "", []string{"user.id=bob", "user.id=carol"}, chatTrace},
		{"two in no one trace", "", []string{"user.id=bob", "websocket.close.code=1008"},
			"no trace has spans with user.id=bob and websocket.close.code=1008"},
		{"value with =", "", []string{"user.id=a=b"}, "no span has user.id=a=b"},
		{"empty value", "", []string{"user.id="}, "no span has user.id="},
		{"no match", "", []string{"user.id=dave"}, "no span has user.id=dave"},
		{"no =", "", []string{"user.id"}, "want key=value"},
		{"no key", "", []string{"user.id=bob", "=bob"}, "want key=value"},
		{"unknown trace", strings.Repeat("f", 32), nil, "no span of trace"},
		{"short trace", "c4a7", nil, "want 32 hex digits"},
		{"both", chatTrace, []string{"user.id=bob"}, "give one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Pick(spans, tc.trace, tc.find)
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("Pick(%q, %q) = %q, want %q", tc.trace, tc.find, got, tc.want)
			}
		})
	}
	if _, err := Pick(nil, "", nil); err == nil {
		t.Error("Pick of no spans succeeded")
	}
}

// TestText compares the text of each trace with its golden file, from
// both encodings. go test -update rewrites the files.
func TestText(t *testing.T) {
	for _, enc := range encodings {
		spans, err := Parse(bytes.NewReader(exported(t, enc.opts...)))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"receive", "session close", "websocket upgrade"} {
			t.Run(enc.name+"/"+name, func(t *testing.T) {
				var b bytes.Buffer
				if err := WriteText(&b, Build(spans, traceOf(spans, name))); err != nil {
					t.Fatal(err)
				}
				golden(t, strings.ReplaceAll(name, " ", "-")+".txt", b.Bytes())
			})
		}
	}
}

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got\n%s\nwant\n%s", path, got, want)
	}
}

// TestUntimed: spans exported WithoutTimestamps still make a tree, with no
// times to tell.
func TestUntimed(t *testing.T) {
	spans, err := Parse(bytes.NewReader(exported(t, stdouttrace.WithoutTimestamps())))
	if err != nil {
		t.Fatal(err)
	}
	tr := Build(spans, chatTrace)
	if tr.Timed || len(tr.Rows) != 5 {
		t.Fatalf("timed %v, %d rows", tr.Timed, len(tr.Rows))
	}
	var b bytes.Buffer
	WriteText(&b, tr)
	if !strings.Contains(b.String(), "no timestamps") || !strings.Contains(b.String(), "       -         -    publish (producer)") {
		t.Errorf("text:\n%s", b.String())
	}
	b.Reset()
	WriteSVG(&b, tr, 0)
	svg := decodeSVG(t, b.Bytes())
	if len(svg.rows()) != 5 {
		t.Errorf("%d rows in the SVG", len(svg.rows()))
	}
}

// TestSVG draws each trace at several widths, reads the SVG back as XML,
// and checks a row per span, in the tree's order, with its bar coloured by
// kind or red for an error, its error and links written under it.
func TestSVG(t *testing.T) {
	spans := parsed(t)["pretty"]
	closeTrace := traceOf(spans, "session close")
	for _, width := range []int{400, 1000, 1600} {
		for _, id := range []string{chatTrace, closeTrace, traceOf(spans, "websocket upgrade")} {
			tr := Build(spans, id)
			var b bytes.Buffer
			if err := WriteSVG(&b, tr, width); err != nil {
				t.Fatal(err)
			}
			svg := decodeSVG(t, b.Bytes())
			rows := svg.rows()
			if len(rows) != len(tr.Rows) {
				t.Fatalf("trace %s at %d px: %d rows, want %d", id, width, len(rows), len(tr.Rows))
			}
			for i, r := range tr.Rows {
				g := rows[i]
				if title := g.child("title").Text; !strings.HasPrefix(title, r.Name+" (") || !strings.Contains(title, r.SpanID) {
					t.Errorf("row %d's title %q is not %s's", i, title, r.Name)
				}
				want := kindColours[r.Kind]
				if r.Error {
					want = errorColour
				}
				if bar := g.bar(); bar == nil || bar.attr("fill") != want {
					t.Errorf("%s %s: bar %v, want fill %s", id, r.Name, bar, want)
				}
				if r.Error && !strings.Contains(g.text(), "✗ "+r.Status[:min(len(r.Status), 10)]) {
					t.Errorf("%s %s at %d px: no error text in %q", id, r.Name, width, g.text())
				}
				if len(r.Links) > 0 && !strings.Contains(g.text(), "link → ") {
					t.Errorf("%s %s at %d px: no link in %q", id, r.Name, width, g.text())
				}
			}
		}
	}

	var b bytes.Buffer
	WriteSVG(&b, Build(spans, closeTrace), 1000)
	text := decodeSVG(t, b.Bytes()).text()
	for _, want := range []string{
		"trace " + closeTrace + " · 1 span · 300µs",
		"session close",
		"user=carol session=3 cause=slow_consumer code=1008",
		"✗ slow_consumer",
		"link → " + short(spans[0].SpanID) + " (websocket upgrade)",
		"link → " + short(spans[6].SpanID) + " (receive) cause=slow_consumer",
		"0", "100µs", "300µs", // ticks
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the SVG of session close has no %q:\n%s", want, text)
		}
	}
}

// TestSVGDeterministic: the same trace, parsed from either encoding, is
// the same bytes.
func TestSVGDeterministic(t *testing.T) {
	var out []string
	for _, spans := range parsed(t) {
		var b bytes.Buffer
		WriteSVG(&b, Build(spans, chatTrace), 1000)
		out = append(out, b.String())
	}
	if out[0] != out[1] {
		t.Errorf("two SVGs of one trace differ:\n%s\n%s", out[0], out[1])
	}
}

// TestSVGEscapes: names and values are text, whatever they hold.
func TestSVGEscapes(t *testing.T) {
	id := strings.Repeat("ab", 16)
	hostile := `<script>alert("&")</script> ]]> ` + "\x01\xff\u2028"
	spans := []Span{{Name: hostile, TraceID: id, SpanID: "000000000000000a", Error: true, Status: hostile,
		Attrs: []Attr{{"user.id", hostile}}, Links: []Link{{TraceID: id, SpanID: "000000000000000b", Attrs: []Attr{{"user.id", hostile}}}}}}
	var b bytes.Buffer
	WriteSVG(&b, Build(spans, id), 1000)
	svg := decodeSVG(t, b.Bytes())
	if !strings.Contains(svg.text(), `<script>alert("&")`) {
		t.Errorf("the name is not in the text:\n%s", svg.text())
	}
}

// TestSVGFarApart: a span that lost its timestamps among spans that did
// not makes the trace 292 years long, as long as a time.Duration goes;
// the axis still has its ten ticks at most, and the bars stay on it.
func TestSVGFarApart(t *testing.T) {
	id := strings.Repeat("ab", 16)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spans := []Span{
		{Name: "timed", TraceID: id, SpanID: "000000000000000a", Start: t0, End: t0.Add(time.Millisecond)},
		{Name: "zero", TraceID: id, SpanID: "000000000000000b", ParentID: "000000000000000a"},
	}
	var b bytes.Buffer
	WriteSVG(&b, Build(spans, id), 1000)
	svg := decodeSVG(t, b.Bytes())
	if n := strings.Count(b.String(), "<line "); n > 11 {
		t.Errorf("%d lines on the axis", n)
	}
	for _, g := range svg.rows() {
		if x := g.bar().attr("x"); strings.HasPrefix(x, "-") {
			t.Errorf("a bar at x=%s", x)
		}
	}
}

// TestRun runs the command on a file and on standard input.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "spans.json")
	if err := os.WriteFile(file, exported(t, stdouttrace.WithPrettyPrint()), 0o644); err != nil {
		t.Fatal(err)
	}
	spans := parsed(t)["pretty"]
	closeTrace, upgradeTrace := traceOf(spans, "session close"), traceOf(spans, "websocket upgrade")
	want, err := os.ReadFile(filepath.Join("testdata", "receive.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin []byte
		want  string // the output starts with it, or the error says it
	}{
		{"file", []string{"-format", "text", "-find", "user.id=bob", file}, nil, string(want)},
		{"two -find", []string{"-format", "text", "-find", "user.id=carol", "-find", "websocket.close.code=1008", file}, nil,
			"trace " + closeTrace + ": 1 span, 300µs\n"},
		{"stdin", []string{"-format=text", "-"}, exported(t), string(want)},
		{"svg", []string{"-trace", closeTrace, file}, nil, `<?xml version="1.0" encoding="UTF-8"?>` + "\n<svg "},
		{"list", []string{"-list", file}, nil, upgradeTrace + "    2 spans    150µs  websocket upgrade\n" +
			chatTrace + "    5 spans    200µs  receive\n" + closeTrace + "    1 span     300µs  session close\n"},
		{"a log line", []string{"-format", "text"}, append(exported(t), "chat: bye\n"...), string(want)},
		{"nothing", nil, nil, "no spans in the input"},
		{"only a log line", nil, []byte("chat: open http://localhost:8080\n"), "reading spans: byte"},
		{"no file", []string{filepath.Join(dir, "none.json")}, nil, "no such file"},
		{"two files", []string{file, file}, nil, "one file at most"},
		{"format", []string{"-format", "png", file}, nil, `-format "png"`},
		{"flag", []string{"-x"}, nil, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tc.args, bytes.NewReader(tc.stdin), &stdout, &stderr)
			got := stdout.String()
			if err != nil {
				got = err.Error() + stderr.String()
			}
			if !strings.HasPrefix(got, tc.want) && !(err != nil && strings.Contains(got, tc.want)) {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}

	out := filepath.Join(dir, "trace.svg")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-o", out, "-find", "shockwave.delivery.outcome=slow_consumer", file}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.Len() > 0 || len(decodeSVG(t, svg).rows()) != 5 {
		t.Errorf("-o wrote %d bytes to stdout, and %d rows to the file", stdout.Len(), len(decodeSVG(t, svg).rows()))
	}
}

// TestFmtDur: three significant digits at most, in the largest unit.
func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                            "0",
		-5:                           "0",
		850:                          "850ns",
		time.Microsecond:             "1µs",
		12345:                        "12.3µs",
		999_700:                      "1ms", // not 1000µs
		1_500_000:                    "1.5ms",
		20 * time.Millisecond:        "20ms",
		123_456_789:                  "123ms",
		2 * time.Second:              "2s",
		90 * time.Second:             "90s",
		1_000_000 * time.Second:      "1000000s",
		1_999_999 * time.Microsecond: "2s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", d, got, want)
		}
	}
}

// TestTicks: 1, 2 or 5 times a power of ten, ten ticks at most.
func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		total, step time.Duration
		unit        string
	}{
		{1, 1, "ns"},
		{300 * time.Microsecond, 50 * time.Microsecond, "µs"},
		{1200 * time.Microsecond, 200 * time.Microsecond, "ms"},
		{time.Second, 100 * time.Millisecond, "s"},
		{7 * time.Minute, 50 * time.Second, "s"},
	} {
		step, _, unit := ticks(tc.total)
		if step != tc.step || unit != tc.unit || tc.total/step > 10 {
			t.Errorf("ticks(%v) = %v %s, want %v %s", tc.total, step, unit, tc.step, tc.unit)
		}
	}
}

// FuzzParse: whatever the input, Parse does not panic, and the SVG and
// text of what it reads are written, the SVG well-formed. The input comes
// in two pieces, to cover reads that stop inside a token.
func FuzzParse(f *testing.F) {
	for _, enc := range encodings {
		f.Add(exported(f, enc.opts...), 100)
	}
	f.Add([]byte(`{"SpanContext":{"TraceID":"0000000000000000000000000000000a","SpanID":"000000000000000a"},"Name":"\u0000<"}`), 3)
	f.Add([]byte(`{"SpanContext":{"TraceID":"0000000000000000000000000000000a","SpanID":"000000000000000a"},"StartTime":"2026-01-02T03:04:05Z"}
{"SpanContext":{"TraceID":"0000000000000000000000000000000a","SpanID":"000000000000000b"}}`), 0)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		cut = min(max(cut, 0), len(in))
		spans, _ := Parse(io.MultiReader(bytes.NewReader(in[:cut]), bytes.NewReader(in[cut:])))
		if len(spans) == 0 {
			return
		}
		id, err := Pick(spans, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := Build(spans, id)
		var b bytes.Buffer
		if err := WriteText(&b, tr); err != nil {
			t.Fatal(err)
		}
		b.Reset()
		if err := WriteSVG(&b, tr, 1000); err != nil {
			t.Fatal(err)
		}
		decodeSVG(t, b.Bytes())
	})
}

// node is an element of an SVG read back.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []*node    `xml:",any"`
}

// decodeSVG reads b as XML, strictly, and fails the test if it is not
// well-formed or not an svg.
func decodeSVG(t testing.TB, b []byte) *node {
	t.Helper()
	var root node
	dec := xml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if cd, ok := tok.(xml.CharData); err != nil || !ok || len(bytes.TrimSpace(cd)) > 0 {
			t.Fatalf("more after the root element: %v %v", tok, err)
		}
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root element %v", root.XMLName)
	}
	return &root
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) child(name string) *node {
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			return c
		}
	}
	return &node{}
}

// rows are the groups that draw spans: those with a title.
func (n *node) rows() []*node {
	var rows []*node
	for _, c := range n.Nodes {
		if c.XMLName.Local == "g" && c.child("title").XMLName.Local != "" {
			rows = append(rows, c)
		}
	}
	return rows
}

// bar is the rectangle of a row that is not its stripe.
func (n *node) bar() *node {
	for _, c := range n.Nodes {
		if c.XMLName.Local == "rect" && c.attr("height") == "11" {
			return c
		}
	}
	return nil
}

// text is the text that n shows, but for titles, a line an element.
func (n *node) text() string {
	var b strings.Builder
	var walk func(n *node)
	walk = func(n *node) {
		if n.XMLName.Local == "title" {
			return
		}
		if s := strings.TrimSpace(n.Text); s != "" {
			b.WriteString(s + "\n")
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}
