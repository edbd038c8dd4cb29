package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteText writes t as a plain-text tree, a span a line: its start from
// the trace's, its duration, then the span indented by its depth, with its
// kind, label attributes, status and links.
//
//	trace 4bf92f3577b34da6a3ce929d0e0e4736: 3 spans, 1.5ms
//	   start  duration  span
//	       0     1.5ms  receive (consumer) event=chat.send session=1
//	    20µs     1.2ms    publish (producer) dest=lobby
//	    40µs      20µs      deliver (producer) user=bob session=2 outcome=written
func WriteText(w io.Writer, t *Trace) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "trace %s: %s, %s\n", t.ID, strings.TrimSpace(spanCount(len(t.Rows))), t.durationText())
	fmt.Fprintf(bw, "%8s  %8s  %s\n", "start", "duration", "span")
	for _, r := range t.Rows {
		start, dur := fmtDur(r.Start.Sub(t.Start)), fmtDur(r.Duration())
		if !t.Timed {
			start, dur = "-", "-"
		}
		line := strings.Repeat("  ", r.Depth) + r.Name + " (" + kinds[r.Kind] + ")"
		if m := r.marker(); m != "" {
			line += " " + m
		}
		if a := label(r.Attrs); a != "" {
			line += " " + a
		}
		if r.Error {
			line += "  ERROR: " + r.Status
		}
		for _, l := range r.Links {
			line += "  " + t.linkText(l)
		}
		fmt.Fprintf(bw, "%8s  %8s  %s\n", start, dur, line)
	}
	return bw.Flush()
}

// durationText is the trace's duration, or says that there is none to
// tell.
func (t *Trace) durationText() string {
	if !t.Timed {
		return "no timestamps (exported WithoutTimestamps)"
	}
	return fmtDur(t.Duration())
}
