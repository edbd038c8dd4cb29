package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The SVG's geometry, in pixels. Widths of text are estimated from the
// advance of a monospace font, 0.6 of its size.
const (
	pad        = 10.0
	top        = 58.0 // where the first row starts, below the title and the axis
	rowHeight  = 30.0 // with one line of notes under the bar
	lineHeight = 12.0 // of each further line of notes
	bigFont    = 12.0
	smallFont  = 10.5
	bigChar    = 0.6 * bigFont
	smallChar  = 0.6 * smallFont
	indentStep = 14.0 // per level of depth
)

// The colours of the bars, by span kind, and of errors.
var (
	kindColours = []string{"#b0b0b0", "#7f8c8d", "#1f77b4", "#17becf", "#2ca02c", "#9467bd"}
	errorColour = "#d62728"
)

// WriteSVG draws t as a waterfall of the given width in pixels (1000 if
// 0, 400 at least): a row a span, its name and label attributes on the
// left, indented by depth, and on the right a bar from its start to its
// end on the trace's time axis, coloured by kind, or red for an error,
// followed by its duration; under the bar, the error's description and
// the span's links. Hovering a row shows all of the span's attributes,
// events and links. The SVG uses no fonts, scripts or files from
// elsewhere, and the same trace always gives the same bytes.
func WriteSVG(w io.Writer, t *Trace, width int) error {
	if width <= 0 {
		width = 1000
	}
	d := &drawing{t: t, width: float64(max(width, 400))}
	d.labelWidth = math.Round(d.width * 0.4)
	d.x0, d.x1 = d.labelWidth+pad, d.width-2*pad
	d.total = t.Duration()
	if d.total <= 0 {
		d.total = time.Nanosecond // every bar at the start, 1 px wide
	}
	notes := make([][][]note, len(t.Rows))
	bottom := top
	for i, r := range t.Rows {
		notes[i] = d.noteLines(r)
		bottom += rowHeight + lineHeight*float64(max(len(notes[i])-1, 0))
	}
	height := bottom + 34

	d.printf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" `+
		`font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace" font-size="%g">`+"\n",
		d.width, height, d.width, height, bigFont)
	d.printf("<title>%s</title>\n", esc("trace "+t.ID))
	d.printf(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	d.printf(`<text x="%g" y="22" font-size="13" font-weight="bold">%s</text>`+"\n", pad,
		esc(fmt.Sprintf("trace %s · %s · %s", t.ID, strings.TrimSpace(spanCount(len(t.Rows))), t.durationText())))
	d.axis(bottom)
	y := top
	for i, r := range t.Rows {
		y = d.row(i, r, y, notes[i])
	}
	d.legend(bottom + 22)
	d.printf("</svg>\n")
	_, err := w.Write(d.b.Bytes())
	return err
}

type drawing struct {
	b          bytes.Buffer
	t          *Trace
	width      float64
	labelWidth float64 // of the column of names
	x0, x1     float64 // where the time axis starts and ends
	total      time.Duration
}

func (d *drawing) printf(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

// x is where the instant at is on the time axis. An instant off the axis,
// such as the zero time of a span that lost its timestamps among spans
// that did not, is drawn at its end.
func (d *drawing) x(at time.Time) float64 {
	x := d.x0 + float64(at.Sub(d.t.Start))/float64(d.total)*(d.x1-d.x0)
	return min(max(x, d.x0), d.x1)
}

// axis draws the ticks, labelled, and their grid lines down to bottom.
func (d *drawing) axis(bottom float64) {
	if !d.t.Timed {
		return
	}
	step, unit, name := ticks(d.total)
	decimals := max(0, int(math.Ceil(-math.Log10(float64(step)/float64(unit))-1e-9)))
	n := int(d.total / step) // counted, not summed: a step past the longest duration would wrap
	d.printf(`<g stroke="#e3e3e3">` + "\n")
	for i := range n + 1 {
		x := d.x0 + float64(step*time.Duration(i))/float64(d.total)*(d.x1-d.x0)
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x, top-6, x, bottom)
	}
	d.printf("</g>\n"+`<g font-size="%g" fill="#555" text-anchor="middle">`+"\n", smallFont)
	for i := range n + 1 {
		at := step * time.Duration(i)
		x := d.x0 + float64(at)/float64(d.total)*(d.x1-d.x0)
		label := fmt.Sprintf("%.*f", decimals, float64(at)/float64(unit)) + name
		if at == 0 {
			label = "0"
		}
		anchor := ""
		if x+float64(utf8.RuneCountInString(label))*smallChar/2 > d.width {
			anchor = ` text-anchor="end"`
		}
		d.printf(`<text x="%.1f" y="%.1f"%s>%s</text>`+"\n", x, top-12, anchor, esc(label))
	}
	d.printf("</g>\n")
}

// ticks chooses a step of 1, 2 or 5 times a power of ten that cuts total
// into 10 or fewer, and the unit its labels are written in.
func ticks(total time.Duration) (step, unit time.Duration, name string) {
	raw := float64(total) / 10
	step = time.Duration(math.Pow(10, math.Floor(math.Log10(raw))))
	for _, m := range []time.Duration{1, 2, 5, 10} {
		if float64(step*m) >= raw {
			step *= m
			break
		}
	}
	step = max(step, 1)
	switch {
	case total >= time.Second:
		return step, time.Second, "s"
	case total >= time.Millisecond:
		return step, time.Millisecond, "ms"
	case total >= time.Microsecond:
		return step, time.Microsecond, "µs"
	}
	return step, time.Nanosecond, "ns"
}

// row draws the i-th row, whose top is at y, with its notes, and returns
// where the next row starts. The row is a group whose title holds all of
// the span.
func (d *drawing) row(i int, r Row, y float64, notes [][]note) (next float64) {
	height := rowHeight + lineHeight*float64(max(len(notes)-1, 0))
	d.printf("<g>\n<title>%s</title>\n", esc(d.t.details(r)))
	if i%2 == 1 {
		d.printf(`<rect x="0" y="%.1f" width="%.0f" height="%g" fill="#f5f5f5"/>`+"\n", y, d.width, height)
	}

	// The label: name, marker, and under them the attributes.
	indent := min(float64(r.Depth)*indentStep, d.labelWidth/2)
	x := pad + indent
	room := int((d.labelWidth - x) / bigChar)
	name := fit(r.Name, room)
	d.printf(`<text x="%.1f" y="%.1f">%s`, x, y+13, esc(name))
	if m := fit(" "+r.marker(), room-utf8.RuneCountInString(name)); strings.TrimSpace(m) != "" {
		d.printf(`<tspan fill="#888" font-style="italic">%s</tspan>`, esc(m))
	}
	d.printf("</text>\n")
	if a := label(r.Attrs); a != "" {
		d.printf(`<text x="%.1f" y="%.1f" font-size="%g" fill="#666">%s</text>`+"\n",
			x, y+25, smallFont, esc(fit(a, int((d.labelWidth-x)/smallChar))))
	}

	// The bar, its events and its duration.
	colour := kindColours[r.Kind]
	if r.Error {
		colour = errorColour
	}
	x0, x1 := d.x(r.Start), d.x(r.end())
	w := max(x1-x0, 1)
	d.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="11" rx="2" fill="%s"/>`+"\n", x0, y+4, w, colour)
	for _, e := range r.Events {
		if e.Time.IsZero() {
			continue
		}
		ex := d.x(e.Time)
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222" stroke-width="1.5"/>`+"\n", ex, y+1, ex, y+18)
	}
	if d.t.Timed {
		dur := fmtDur(r.Duration())
		tw := float64(utf8.RuneCountInString(dur)) * smallChar
		switch {
		case x0+w+4+tw <= d.width-4:
			d.printf(`<text x="%.1f" y="%.1f" font-size="%g" fill="#333">%s</text>`+"\n", x0+w+4, y+13, smallFont, esc(dur))
		case x0-4-tw >= d.x0:
			d.printf(`<text x="%.1f" y="%.1f" font-size="%g" fill="#333" text-anchor="end">%s</text>`+"\n", x0-4, y+13, smallFont, esc(dur))
		default: // a long bar: inside it
			d.printf(`<text x="%.1f" y="%.1f" font-size="%g" fill="#ffffff" text-anchor="end">%s</text>`+"\n", x0+w-4, y+13, smallFont, esc(dur))
		}
	}

	d.notes(notes, x0, y+25)
	d.printf("</g>\n")
	return y + height
}

// note is a piece of text under a bar: the error, or a link.
type note struct {
	text string
	link bool // drawn behind a diamond
}

// noteRoom is the room a link's diamond takes, and the space between
// notes, in characters.
const noteRoom = 2

// width is how many characters the note takes, its diamond included.
func (n note) width() int {
	w := utf8.RuneCountInString(n.text)
	if n.link {
		w += noteRoom
	}
	return w
}

// noteLines packs the error and links of r into as few lines as fit
// under the time axis, cutting a note that does not fit on a line alone.
func (d *drawing) noteLines(r Row) [][]note {
	var notes []note
	if r.Error {
		notes = append(notes, note{text: strings.TrimSpace("✗ " + r.Status)})
	}
	for _, l := range r.Links {
		notes = append(notes, note{text: d.t.linkText(l), link: true})
	}
	room := int((d.width - 4 - d.x0) / smallChar)
	var lines [][]note
	used := 0
	for _, n := range notes {
		if n.width() > room {
			n.text = fit(n.text, room-(n.width()-utf8.RuneCountInString(n.text)))
		}
		if len(lines) == 0 || used+noteRoom+n.width() > room {
			lines = append(lines, nil)
			used = -noteRoom
		}
		lines[len(lines)-1] = append(lines[len(lines)-1], n)
		used += noteRoom + n.width()
	}
	return lines
}

// notes writes lines of notes from the baseline y down, under the bar
// that starts at x if there is room, else as far right as they fit.
func (d *drawing) notes(lines [][]note, x, y float64) {
	if len(lines) == 0 {
		return
	}
	widest := 0
	for _, line := range lines {
		w := -noteRoom
		for _, n := range line {
			w += noteRoom + n.width()
		}
		widest = max(widest, w)
	}
	x = max(d.x0, min(x, d.width-4-float64(widest)*smallChar))
	d.printf(`<g font-size="%g">`+"\n", smallFont)
	for i, line := range lines {
		nx, ny := x, y+float64(i)*lineHeight
		for _, n := range line {
			fill := errorColour
			if n.link {
				fill = "#555"
				cx := nx + 3.5
				d.printf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#555"/>`+"\n",
					cx, ny-7, cx+3.5, ny-3.5, cx, ny, cx-3.5, ny-3.5)
				nx += noteRoom * smallChar
			}
			d.printf(`<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", nx, ny, fill, esc(n.text))
			nx += float64(utf8.RuneCountInString(n.text)+noteRoom) * smallChar
		}
	}
	d.printf("</g>\n")
}

// legend names the colours and marks that the trace uses, on baseline y.
func (d *drawing) legend(y float64) {
	var used []int
	hasError, hasLink, hasEvent := false, false, false
	for _, r := range d.t.Rows {
		if !slices.Contains(used, r.Kind) {
			used = append(used, r.Kind)
		}
		hasError = hasError || r.Error
		hasLink = hasLink || len(r.Links) > 0
		hasEvent = hasEvent || len(r.Events) > 0
	}
	slices.Sort(used)
	x := pad
	d.printf(`<g font-size="%g" fill="#333">`+"\n", smallFont)
	swatch := func(colour, name string) {
		d.printf(`<rect x="%.1f" y="%.1f" width="10" height="10" rx="2" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			x, y-9, colour, x+14, y, esc(name))
		x += 14 + float64(utf8.RuneCountInString(name)+3)*smallChar
	}
	for _, k := range used {
		swatch(kindColours[k], kinds[k])
	}
	if hasError {
		swatch(errorColour, "error")
	}
	if hasLink {
		d.printf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="#555"/><text x="%.1f" y="%.1f">link</text>`+"\n",
			x+5, y-9, x+8.5, y-5.5, x+5, y-2, x+1.5, y-5.5, x+14, y)
		x += 14 + 7*smallChar
	}
	if hasEvent {
		d.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222" stroke-width="1.5"/><text x="%.1f" y="%.1f">event</text>`+"\n",
			x+5, y-11, x+5, y+1, x+14, y)
	}
	d.printf("</g>\n")
}

// details is everything about a row's span, for its tooltip.
func (t *Trace) details(r Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)\nspan %s", r.Name, kinds[r.Kind], r.SpanID)
	if r.ParentID != "" {
		fmt.Fprintf(&b, ", parent %s", r.ParentID)
		if r.ParentRemote {
			b.WriteString(" (remote)")
		}
	}
	if t.Timed {
		fmt.Fprintf(&b, "\nstart +%s, duration %s", fmtDur(r.Start.Sub(t.Start)), fmtDur(r.Duration()))
	}
	if r.Error {
		fmt.Fprintf(&b, "\nstatus Error: %s", r.Status)
	}
	for _, a := range r.Attrs {
		fmt.Fprintf(&b, "\n%s = %s", a.Key, a.Value)
	}
	for _, e := range r.Events {
		fmt.Fprintf(&b, "\nevent %q", e.Name)
		if t.Timed {
			fmt.Fprintf(&b, " at +%s", fmtDur(e.Time.Sub(t.Start)))
		}
		for _, a := range e.Attrs {
			fmt.Fprintf(&b, "\n    %s = %s", a.Key, a.Value)
		}
	}
	for _, l := range r.Links {
		fmt.Fprintf(&b, "\n%s (trace %s, span %s)", t.linkText(l), l.TraceID, l.SpanID)
	}
	return b.String()
}

// fit cuts s to n characters, the last of them an ellipsis when it cuts.
func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	return string([]rune(s)[:n-1]) + "…"
}

// esc escapes s for XML text and attributes; characters XML cannot hold
// become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
