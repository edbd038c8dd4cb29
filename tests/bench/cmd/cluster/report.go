package main

import (
	"fmt"
	"slices"
	"strings"
)

// row is one line of the report: the members of one node, or several,
// over one run.
type row struct {
	key      string  // setup and node(s)
	conns    int     // members
	perSec   float64 // deliveries a second
	p50, p99 float64 // µs; 0 where it does not apply
	cpuPct   float64 // of one core
	usPer    float64 // µs of CPU per delivery
	wPer     float64 // write system calls per delivery
	ratio    float64 // usPer ÷ the single node's in the same run; 0 if none
}

// rows returns o's lines: each node, and for a cluster its remote nodes
// together, all its nodes, and all with nats-server.
func rows(o *outcome) []row {
	r := o.Res
	var out []row
	line := func(key string, conns int, msgs int64, cpu float64, writes int64, p50, p99 float64) {
		rw := row{key: o.Setup.Name + " " + key, conns: conns, perSec: float64(msgs) / r.Seconds,
			p50: p50, p99: p99, cpuPct: 100 * cpu / r.Seconds}
		if msgs > 0 {
			rw.usPer, rw.wPer = 1e6*cpu/float64(msgs), float64(writes)/float64(msgs)
		}
		out = append(out, rw)
	}
	var all, remote, wAll, wRemote int64
	var cpuAll, cpuRemote float64
	for i, a := range r.ByAddr {
		role := "publishes, fans out"
		if i > 0 {
			role = "remote"
			remote += a.Messages
			cpuRemote += o.NodeCPU[i]
			wRemote += o.Writes[i]
		}
		if !o.Setup.NATS {
			role = "local broadcast"
		}
		line(o.Names[i]+" ("+role+")", a.Conns, a.Messages, o.NodeCPU[i], o.Writes[i], a.P50Us, a.P99Us)
		all += a.Messages
		cpuAll += o.NodeCPU[i]
		wAll += o.Writes[i]
	}
	if len(r.ByAddr) > 1 {
		line("b+c (remote)", r.Conns-r.ByAddr[0].Conns, remote, cpuRemote, wRemote, 0, 0)
		line("a+b+c", r.Conns, all, cpuAll, wAll, r.P50Us, r.P99Us)
	}
	if o.Setup.NATS {
		line("nodes + nats-server", r.Conns, all, cpuAll+o.NATSCPU, wAll+o.Writes[len(o.Writes)-1], 0, 0)
	}
	return out
}

// report returns the tables of every run and the medians, in Markdown.
func report(p params, all []*outcome, runs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d members, one publisher on node a at %.0f msgs/s, %d B payload; %v measured per run after %v; GOMAXPROCS=%d per node; %d run(s)\n\n",
		p.Members, p.Rate, p.Size, p.Duration, p.Warmup, p.Procs, runs)
	b.WriteString("| run | setup, node | members | deliveries/s | p50 µs | p99 µs | CPU % of a core | CPU µs/delivery | writes/delivery | ÷ single |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	type series struct {
		key                                 string
		conns                               int
		perSec, p50, p99, usPer, wPer, rate []float64
	}
	var order []*series
	byKey := map[string]*series{}
	for _, o := range all {
		base := 0.0
		for _, s := range all {
			if s.Run == o.Run && s.Setup == singleSetup {
				base = rows(s)[0].usPer
			}
		}
		for _, rw := range rows(o) {
			if base > 0 {
				rw.ratio = rw.usPer / base
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %.0f | %s | %s | %.0f | %.2f | %.2f | %s |\n", o.Run, rw.key, rw.conns, rw.perSec,
				num(rw.p50, "%.0f"), num(rw.p99, "%.0f"), rw.cpuPct, rw.usPer, rw.wPer, num(rw.ratio, "%.2fx"))
			s := byKey[rw.key]
			if s == nil {
				s = &series{key: rw.key, conns: rw.conns}
				byKey[rw.key] = s
				order = append(order, s)
			}
			s.perSec, s.usPer, s.wPer = append(s.perSec, rw.perSec), append(s.usPer, rw.usPer), append(s.wPer, rw.wPer)
			if rw.p50 > 0 {
				s.p50, s.p99 = append(s.p50, rw.p50), append(s.p99, rw.p99)
			}
			if rw.ratio > 0 {
				s.rate = append(s.rate, rw.ratio)
			}
		}
		pubs := float64(max(o.Res.Published, 1))
		fmt.Fprintf(&b, "| %d | %s nats-server | | %.0f msgs published/s | | | %.0f | %.2f per message | %.2f per message | |\n",
			o.Run, o.Setup.Name, float64(o.Res.Published)/o.Res.Seconds, 100*o.NATSCPU/o.Res.Seconds,
			1e6*o.NATSCPU/pubs, float64(o.Writes[len(o.Writes)-1])/pubs)
	}
	fmt.Fprintf(&b, "\nMedians [min-max] over %d run(s):\n\n", runs)
	b.WriteString("| setup, node | members | deliveries/s | p50 µs | p99 µs | CPU µs/delivery | writes/delivery | ÷ single |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range order {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", s.key, s.conns, spread(s.perSec, "%.0f"),
			spread(s.p50, "%.0f"), spread(s.p99, "%.0f"), spread(s.usPer, "%.2f"), spread(s.wPer, "%.2f"), spread(s.rate, "%.2fx"))
	}
	return b.String()
}

// num formats v, or nothing for 0.
func num(v float64, format string) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(format, v)
}

// spread formats the median of vs and, for several, their range.
func spread(vs []float64, format string) string {
	if len(vs) == 0 {
		return ""
	}
	s := slices.Sorted(slices.Values(vs))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if len(s) == 1 {
		return fmt.Sprintf(format, m)
	}
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", m, s[0], s[len(s)-1])
}

// describe is one line on a run, as it ends.
func describe(o *outcome) string {
	r := o.Res
	var b strings.Builder
	fmt.Fprintf(&b, "run %d %-11s %7.0f deliveries/s (%.0f msgs/s) p50 %.0f µs p99 %.0f µs; CPU µs/delivery",
		o.Run, o.Setup.Name, r.MsgsPerSec, float64(r.Published)/r.Seconds, r.P50Us, r.P99Us)
	for i, a := range r.ByAddr {
		fmt.Fprintf(&b, " %s %.2f", o.Names[i], 1e6*o.NodeCPU[i]/float64(max(a.Messages, 1)))
	}
	fmt.Fprintf(&b, "; nats-server %.0f%%; client %.0f%%", 100*o.NATSCPU/r.Seconds, r.GenCPUPct)
	for i, st := range o.Stats {
		if st != "" {
			fmt.Fprintf(&b, "; %s: %s", o.Names[i], st)
		}
	}
	if r.Errors > 0 || r.Missing != 0 {
		fmt.Fprintf(&b, "; %d ERRORS (%s), %d missing", r.Errors, r.FirstError, r.Missing)
	}
	return b.String()
}
