// Command waterfall draws one trace of the spans that OpenTelemetry's
// stdout exporter wrote (stdouttrace, OTEL_TRACES_EXPORTER=stdout) as a
// waterfall: an SVG picture, or a plain-text tree.
//
//	waterfall [-trace id | -find key=value ...] [-format svg|text] [-o file] [-width px] [file]
//	waterfall -list [file]
//
// It reads the spans from file, or from standard input without one (or
// with "-"): a stream of JSON objects, pretty-printed or not, as the
// exporter writes them. Objects that are not spans, such as those of the
// stdout metric exporter, are skipped; at something that is not JSON
// (a log line, or the last span cut short when the program was killed) it
// stops reading, says so, and draws from the spans before it.
//
// Which trace it draws:
//
//	-trace 4bf92f3577b34da6a3ce929d0e0e4736   that one
//	-find user.id=bob                         the trace of the first span whose
//	                                          attribute user.id is bob
//	-find shockwave.event=chat.send -find user.id=bob
//	                                          the first trace with a span for each
//	(neither)                                 the trace with the most spans
//
// "First" is in the order of the input, which is the order the spans
// ended in. A value of -find is compared with the attribute as text: a
// string as it is, a number or a boolean as JSON writes it
// (-find websocket.close.code=1008). -list prints the traces instead, one
// a line: ID, spans, duration, and the name of the first span.
//
// Each span is a row, under its parent, siblings in the order they
// started. A span whose parent is not in the input stands at the top,
// marked "(remote parent)" when its parent is another process's, and
// "(parent not in input)" when it is not (a span not exported, or not
// sampled). A row shows the span's name, indented by its depth, and the
// attributes that say most about a Shockwave span, in short:
//
//	event    shockwave.event
//	dest     messaging.destination.name
//	user     user.id
//	session  shockwave.session.id
//	outcome  shockwave.delivery.outcome
//	cause    shockwave.close.cause
//	code     websocket.close.code
//
// In the SVG, a bar runs from the span's start to its end on the trace's
// time axis, coloured by the span's kind, or red when its status is Error;
// its duration follows it, and under it the error's description and the
// span's links ("link → 1a2b3c4d (websocket upgrade)": the first 8 hex
// digits of the linked span's ID, and its name when it is in the input).
// Events are ticks on the bar. Hovering a row shows all of the span. The
// SVG is self-contained and made to be read about 1000 pixels wide
// (-width); the same input always gives the same bytes.
//
// # A picture of the chat
//
// With OTEL_TRACES_EXPORTER=stdout, the chat example writes its spans to
// standard output, and nothing else (its logs go to standard error):
//
//	OTEL_TRACES_EXPORTER=stdout go run ./examples/chat > spans.json
//
// Sign in as bob in one browser window and as alice in another, join the
// lobby in both, say something as alice, and stop the chat with Ctrl-C,
// which ends the sessions, and so writes their "session close" spans.
// Then:
//
//	go run ./examples/waterfall -find user.id=bob < spans.json > trace.svg
//
// draws the first trace with a span for bob: the message of his that
// ended first (his joining the lobby, say), with the "deliver" span of
// the reply he got. The trace of alice's message reaching him, and its
// text:
//
//	go run ./examples/waterfall -find shockwave.event=chat.send -find user.id=bob < spans.json > trace.svg
//	go run ./examples/waterfall -find shockwave.event=chat.send -find user.id=bob -format text spans.json
//
//	trace adbef622798293c257c6c74d1b4f6c73: 5 spans, 498µs
//	   start  duration  span
//	       0     215µs  receive (consumer) event=chat.send dest=lobby session=2  link → 81ed1c12 (websocket upgrade)
//	  81.5µs    30.6µs    publish (producer) dest=lobby
//	  97.2µs     187µs      deliver (producer) user=alice session=2 outcome=written
//	  97.2µs     401µs      deliver (producer) user=bob session=1 outcome=written
//	   215µs    93.3µs    deliver (producer) user=alice session=2 outcome=written
//
// (The last "deliver" is the reply to alice's request.) A member the
// message did not reach has a red row: -find
// shockwave.delivery.outcome=slow_consumer finds the first, and the
// member's "session close" links back to the message.
//
// The exporter writes a span when it ends, so children come before their
// parents, and spans still open when the program is killed (not stopped
// with Ctrl-C) are never written. OTEL_METRICS_EXPORTER=stdout would
// write the metrics into the same stream: they are skipped, but large.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "waterfall:", err)
		}
		os.Exit(2)
	}
}

// run is the command, with its arguments and streams.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("waterfall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	traceID := fs.String("trace", "", "draw the trace with this `id` (32 hex digits)")
	var finds findFlags
	fs.Var(&finds, "find", "draw the trace of the first span with the attribute `key=value`, such as user.id=bob;\nrepeated, the first trace with a span for each")
	format := fs.String("format", "svg", "what to write: svg, or text (a tree with durations)")
	out := fs.String("o", "", "write to `file` instead of standard output")
	width := fs.Int("width", 1000, "width of the SVG in `pixels`")
	list := fs.Bool("list", false, "list the traces of the input instead of drawing one")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: waterfall [-trace id | -find key=value] [-format svg|text] [-o file] [-width px] [file]")
		fmt.Fprintln(stderr, "       waterfall -list [file]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "svg" && *format != "text" {
		return fmt.Errorf("-format %q: want svg or text", *format)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("one file at most, not %d", fs.NArg())
	}

	in := stdin
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	spans, err := Parse(in)
	if err != nil {
		if len(spans) == 0 {
			return fmt.Errorf("reading spans: %w", err)
		}
		fmt.Fprintf(stderr, "waterfall: stopped reading at %v\n", err)
	}

	var b bytes.Buffer
	if *list {
		err = WriteList(&b, spans)
	} else {
		var id string
		if id, err = Pick(spans, *traceID, finds); err != nil {
			return err
		}
		t := Build(spans, id)
		if *format == "text" {
			err = WriteText(&b, t)
		} else {
			err = WriteSVG(&b, t, *width)
		}
	}
	if err != nil {
		return err
	}
	if *out != "" {
		return os.WriteFile(*out, b.Bytes(), 0o644)
	}
	_, err = stdout.Write(b.Bytes())
	return err
}

// findFlags are the values of -find, which may be given more than once.
type findFlags []string

func (f *findFlags) String() string { return strings.Join(*f, " ") }

func (f *findFlags) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// WriteList writes a line for each trace among spans, in the order of
// their first spans in the input: its ID, how many spans it has, how long
// it took and the name of its first span to start.
func WriteList(w io.Writer, spans []Span) error {
	type summary struct {
		spans      int
		first      *Span // to start
		start, end time.Time
	}
	var ids []string
	traces := map[string]*summary{}
	for i := range spans {
		s := &spans[i]
		t := traces[s.TraceID]
		if t == nil {
			t = &summary{first: s, start: s.Start, end: s.end()}
			traces[s.TraceID] = t
			ids = append(ids, s.TraceID)
		}
		t.spans++
		if s.Start.Before(t.first.Start) {
			t.first = s
		}
		t.start, t.end = minTime(t.start, s.Start), maxTime(t.end, s.end())
	}
	bw := bufio.NewWriter(w)
	for _, id := range ids {
		t := traces[id]
		dur := "-"
		if !t.start.IsZero() {
			dur = fmtDur(t.end.Sub(t.start))
		}
		fmt.Fprintf(bw, "%s %s %8s  %s\n", id, spanCount(t.spans), dur, t.first.Name)
	}
	return bw.Flush()
}
