// Package chart draws the bench report's bar charts as SVG, with nothing
// but the standard library.
package chart

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// Panel is one horizontal grouped bar chart: a group of bars per row
// label, one bar per series.
type Panel struct {
	Title  string
	Note   string   // a line under the title
	Series []string // bar names, in legend order
	Rows   []Row    // groups of bars
	Ref    float64  // if positive, a dashed line at this value (such as 1.0)
	Format string   // fmt verb for values, "%.2f" by default
	Suffix string   // after each value, such as "x" or " KiB"
	Colors []string // per series; a default palette otherwise
	Max    float64  // axis maximum; the largest value by default
}

// Row is a group of bars.
type Row struct {
	Label  string
	Values []float64 // per series; NaN draws nothing
}

// Palette is the default series colors.
var Palette = []string{"#d9480f", "#1c7ed6", "#2f9e44", "#7048e8", "#868e96", "#e8590c", "#0c8599"}

const (
	width    = 900
	labelW   = 250
	valueW   = 70
	barH     = 11
	barGap   = 2
	rowGap   = 12
	titleH   = 44
	legendH  = 22
	panelGap = 26
	font     = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`
)

func (p *Panel) height() int {
	h := titleH + legendH
	for range p.Rows {
		h += len(p.Series)*(barH+barGap) + rowGap
	}
	return h
}

func (p *Panel) max() float64 {
	if p.Max > 0 {
		return p.Max
	}
	m := p.Ref
	for _, r := range p.Rows {
		for _, v := range r.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				m = max(m, v)
			}
		}
	}
	if m <= 0 {
		m = 1
	}
	return m
}

func (p *Panel) draw(b *bytes.Buffer, y0 int) {
	esc := html.EscapeString
	fmt.Fprintf(b, `<text x="10" y="%d" font-size="15" font-weight="bold" %s>%s</text>`+"\n", y0+18, font, esc(p.Title))
	if p.Note != "" {
		fmt.Fprintf(b, `<text x="10" y="%d" font-size="11" fill="#555" %s>%s</text>`+"\n", y0+34, font, esc(p.Note))
	}
	colors := p.Colors
	if len(colors) == 0 {
		colors = Palette
	}
	x := labelW
	for i, s := range p.Series {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/>`, x, y0+titleH, colors[i%len(colors)])
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" %s>%s</text>`+"\n", x+14, y0+titleH+9, font, esc(s))
		x += 20 + 7*len(s) + 14
	}
	plotW := float64(width - labelW - valueW - 10)
	top := y0 + titleH + legendH
	m := p.max()
	format := p.Format
	if format == "" {
		format = "%.2f"
	}
	y := top
	for _, r := range p.Rows {
		gh := len(p.Series) * (barH + barGap)
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" text-anchor="end" %s>%s</text>`+"\n",
			labelW-8, y+gh/2+4, font, esc(r.Label))
		for i := range p.Series {
			by := y + i*(barH+barGap)
			if i >= len(r.Values) || math.IsNaN(r.Values[i]) {
				fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="#999" %s>n/a</text>`+"\n", labelW+2, by+barH-2, font)
				continue
			}
			v := r.Values[i]
			w := plotW * v / m
			if math.IsInf(v, 0) || w > plotW {
				w = plotW
			}
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, by, max(w, 1), barH, colors[i%len(colors)])
			fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" %s>%s</text>`+"\n",
				float64(labelW)+max(w, 1)+4, by+barH-2, font, esc(fmt.Sprintf(format, v)+p.Suffix))
		}
		y += gh + rowGap
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", labelW, top-4, labelW, y-rowGap+4)
	if p.Ref > 0 {
		rx := float64(labelW) + plotW*p.Ref/m
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="4 3"/>`+"\n", rx, top-4, rx, y-rowGap+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#333" %s>%s</text>`+"\n",
			rx, y-rowGap+16, font, esc(strconv.FormatFloat(p.Ref, 'g', -1, 64)+p.Suffix))
	}
}

// SVG draws the panels one under the other.
func SVG(panels ...Panel) []byte {
	h := 10
	for i := range panels {
		h += panels[i].height() + panelGap
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", width, h, width, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, h)
	y := 10
	for i := range panels {
		panels[i].draw(&b, y)
		y += panels[i].height() + panelGap
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
