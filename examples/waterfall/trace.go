package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pick returns the ID of the trace to draw: traceID when it is set; else,
// with finds ("key=value" each), the first trace to have, for each of
// them, a span with that attribute (with one, the trace of the first span
// that has it); else the trace with the most spans (the first of them in
// the input, on a tie).
func Pick(spans []Span, traceID string, finds []string) (string, error) {
	if len(spans) == 0 {
		return "", errors.New("no spans in the input")
	}
	switch {
	case traceID != "" && len(finds) > 0:
		return "", errors.New("-trace and -find: give one")
	case traceID != "":
		id := strings.ToLower(traceID)
		if !validID(id, 32) {
			return "", fmt.Errorf("-trace %q: want 32 hex digits", traceID)
		}
		for _, s := range spans {
			if s.TraceID == id {
				return id, nil
			}
		}
		return "", fmt.Errorf("no span of trace %s in the input", id)
	case len(finds) > 0:
		return find(spans, finds)
	}
	count := map[string]int{}
	best := ""
	for _, s := range spans {
		count[s.TraceID]++
		if best == "" || count[s.TraceID] > count[best] {
			best = s.TraceID
		}
	}
	return best, nil
}

// find returns the first trace among spans to have a span matching each
// of finds.
func find(spans []Span, finds []string) (string, error) {
	type cond struct{ key, value string }
	conds := make([]cond, len(finds))
	for i, f := range finds {
		key, value, ok := strings.Cut(f, "=")
		if !ok || key == "" {
			return "", fmt.Errorf("-find %q: want key=value, such as user.id=bob", f)
		}
		conds[i] = cond{key, value}
	}
	met := map[string][]bool{} // by trace, which conds a span has met
	for _, s := range spans {
		for i, c := range conds {
			if v, ok := s.Attr(c.key); !ok || v != c.value {
				continue
			}
			if met[s.TraceID] == nil {
				met[s.TraceID] = make([]bool, len(conds))
			}
			met[s.TraceID][i] = true
		}
		if m := met[s.TraceID]; m != nil && !slices.Contains(m, false) {
			return s.TraceID, nil
		}
	}
	if len(finds) == 1 {
		return "", fmt.Errorf("no span has %s", finds[0])
	}
	return "", fmt.Errorf("no trace has spans with %s", strings.Join(finds, " and "))
}

// Trace is one trace laid out as a waterfall.
type Trace struct {
	ID         string
	Rows       []Row     // the spans as a tree, depth first
	Start, End time.Time // of the earliest start and the latest end
	Timed      bool      // false when the exporter wrote no timestamps

	// names holds the name of every span of the input, by trace and span
	// ID, to say where a link goes.
	names map[string]string
}

// Row is a span in its place in the tree.
type Row struct {
	*Span
	Depth int
	// Orphan: the span has a parent that is not in the input (remote, or
	// not exported), so it stands at the top.
	Orphan bool
}

// Build lays out the trace id of spans: each span under its parent,
// siblings by start time; the spans whose parent is not in the trace at
// the top, by start time too.
func Build(spans []Span, id string) *Trace {
	t := &Trace{ID: id, names: map[string]string{}}
	var in []*Span
	for i := range spans {
		s := &spans[i]
		t.names[s.TraceID+s.SpanID] = s.Name
		if s.TraceID == id {
			in = append(in, s)
		}
	}
	slices.SortFunc(in, func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanID, b.SpanID))
	})

	byID := map[string]*Span{}
	for _, s := range in {
		byID[s.SpanID] = s
	}
	children := map[string][]*Span{}
	var tops []*Span
	for _, s := range in {
		if byID[s.ParentID] != nil && s.ParentID != s.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s) // in start order, as in is
		} else {
			tops = append(tops, s)
		}
	}
	done := map[string]bool{}
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		done[s.SpanID] = true
		t.Rows = append(t.Rows, Row{Span: s, Depth: depth, Orphan: depth == 0 && s.ParentID != "" && byID[s.ParentID] == nil})
		for _, c := range children[s.SpanID] {
			if !done[c.SpanID] {
				walk(c, depth+1)
			}
		}
	}
	for _, s := range tops {
		walk(s, 0)
	}
	// Spans that are each other's parents reach no top: draw them anyway.
	for _, s := range in {
		if !done[s.SpanID] {
			walk(s, 0)
		}
	}

	for i, r := range t.Rows {
		t.Timed = t.Timed || !r.Start.IsZero()
		if i == 0 {
			t.Start, t.End = r.Start, r.end()
		}
		t.Start, t.End = minTime(t.Start, r.Start), maxTime(t.End, r.end())
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// end is the span's end, or its start if it ends before it.
func (s *Span) end() time.Time {
	if s.End.Before(s.Start) {
		return s.Start
	}
	return s.End
}

// Duration is how long the span took.
func (s *Span) Duration() time.Duration { return s.end().Sub(s.Start) }

// Duration is how long the trace took, from its first start to its last end.
func (t *Trace) Duration() time.Duration { return t.End.Sub(t.Start) }

// labelAttrs are the attributes a row shows beside the span's name, and
// the short names it shows them by.
var labelAttrs = []struct{ key, short string }{
	{"shockwave.event", "event"},
	{"messaging.destination.name", "dest"},
	{"user.id", "user"},
	{"shockwave.session.id", "session"},
	{"shockwave.delivery.outcome", "outcome"},
	{"shockwave.close.cause", "cause"},
	{"websocket.close.code", "code"},
}

// label is the compact form of the attributes of labelAttrs among attrs:
// "event=chat.send user=bob session=3".
func label(attrs []Attr) string {
	var b strings.Builder
	for _, la := range labelAttrs {
		for _, a := range attrs {
			if a.Key != la.key {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			v := a.Value
			if v == "" || strings.ContainsAny(v, " \t\n\"") {
				v = fmt.Sprintf("%q", v)
			}
			b.WriteString(la.short + "=" + v)
			break
		}
	}
	return b.String()
}

// marker says why a span stands at the top though it has a parent.
func (r Row) marker() string {
	switch {
	case !r.Orphan:
		return ""
	case r.ParentRemote:
		return "(remote parent)"
	}
	return "(parent not in input)"
}

// linkText says where l goes: "link → 1a2b3c4d (receive)
// cause=slow_consumer", naming the span when it is in the input.
func (t *Trace) linkText(l Link) string {
	text := "link → " + short(l.SpanID)
	if name, ok := t.names[l.TraceID+l.SpanID]; ok {
		text += " (" + name + ")"
	}
	if a := label(l.Attrs); a != "" {
		text += " " + a
	}
	return text
}

// spanCount is "1 span", "2 spans", the number at least 4 wide.
func spanCount(n int) string {
	if n == 1 {
		return "   1 span "
	}
	return fmt.Sprintf("%4d spans", n)
}

// short is the first 8 hex digits of an ID, enough to tell spans apart by
// eye.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// fmtDur writes d with three significant digits at most, in the largest
// unit it is at least one of: 0, 850ns, 12.3µs, 1.5ms, 2s.
func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	units := []struct {
		size time.Duration
		name string
	}{{time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "µs"}, {time.Nanosecond, "ns"}}
	for i, u := range units {
		if d < u.size && u.size != time.Nanosecond {
			continue
		}
		v := float64(d) / float64(u.size)
		s := sig3(v)
		if s == "1000" && i > 0 { // 999.7µs rounds to 1ms
			return "1" + units[i-1].name
		}
		return s + u.name
	}
	return d.String()
}

// sig3 writes v (at least 1) with three significant digits, or fewer when
// they are zeros: 1.5, 12.3, 850.
func sig3(v float64) string {
	prec := 2
	if v >= 99.95 {
		prec = 0
	} else if v >= 9.995 {
		prec = 1
	}
	s := fmt.Sprintf("%.*f", prec, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
