package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
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
	first, others := roles(o.Setup)
	for i, a := range r.ByAddr {
		role := first
		if i > 0 {
			role = others
			remote += a.Messages
			cpuRemote += o.NodeCPU[i]
			wRemote += o.Writes[i]
		}
		line(o.Names[i]+" ("+role+")", a.Conns, a.Messages, o.NodeCPU[i], o.Writes[i], a.P50Us, a.P99Us)
		all += a.Messages
		cpuAll += o.NodeCPU[i]
		wAll += o.Writes[i]
	}
	if len(r.ByAddr) > 1 {
		line("b+c ("+others+")", r.Conns-r.ByAddr[0].Conns, remote, cpuRemote, wRemote, 0, 0)
		line("a+b+c", r.Conns, all, cpuAll, wAll, r.P50Us, r.P99Us)
	}
	if o.Setup.NATS && !math.IsNaN(o.NATSCPU) {
		line("nodes + nats-server", r.Conns, all, cpuAll+o.NATSCPU, wAll+o.Writes[len(o.Writes)-1], 0, 0)
	}
	return out
}

// roles names what the first node of s does, and the others.
func roles(s setup) (first, others string) {
	switch {
	case s.durable():
		return "publishes to the log, from the log", "from the log"
	case s.NATS:
		return "publishes, fans out", "remote"
	case s.History:
		return "local history", ""
	}
	return "local broadcast", ""
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
			if s.Run == o.Run && s.Setup == o.Setup.base() {
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
		if math.IsNaN(o.NATSCPU) {
			fmt.Fprintf(&b, "| %d | %s nats-server | | %.0f msgs published/s | | | restarted: not measured | | | |\n",
				o.Run, o.Setup.Name, float64(o.Res.Published)/o.Res.Seconds)
			continue
		}
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
	b.WriteString("\n÷ single: CPU per delivery over the single node's in the same run: single-history's for the rooms with history (cluster-durable), single's for the others.\n")
	if p.Restart > 0 {
		b.WriteString(restartReport(p, all))
	}
	return b.String()
}

// restartReport is the table of what each node's members lost or got twice
// across the NATS server's restart, beside its Broker's counts.
func restartReport(p params, all []*outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nAcross the restart: nats-server stopped (SIGTERM, waited for) after the warm-up and half the window, started again %v later on the same port and store; the measured figures above include the outage, nats-server's CPU is not measured. Lost, duplicated, out of order: what an observer member on the node counted (every message is numbered); after the stop: the messages it got after nats-server was told to stop (the load generator publishes at most 64 messages not yet with every member: after a loss it publishes nothing more); Broker missed: the first node's published less this node's received, both as the Broker counts them (probes included; volatile rooms: the remote nodes only).\n\n", p.Restart)
	b.WriteString("| run | setup, node | published | lost | duplicated | out of order | after the stop | longest silence | Broker missed | Broker: published, received, dropped, errors, gaps | load generator |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, o := range all {
		r := o.Restart
		if r == nil {
			continue
		}
		var pubA int64
		stats := make([]brokerStats, len(o.Stats))
		for i, st := range o.Stats {
			stats[i], _ = parseStats(st)
		}
		if len(stats) > 0 {
			pubA = stats[0].Published
		}
		for i, ob := range r.Observed {
			missed := ""
			if o.Setup.NATS && (i > 0 || o.Setup.durable()) && o.Stats[i] != "" {
				missed = strconv.FormatInt(pubA-stats[i].Received, 10)
			}
			gen := ""
			if i == 0 {
				gen = fmt.Sprintf("%d errors, %d deliveries missing", o.Res.Errors, o.Res.Missing)
				if o.Res.FirstError != "" {
					gen += "; first: " + o.Res.FirstError
				}
				out := r.Outage
				gen += fmt.Sprintf("; restart at %.1f s, stopping %.0f ms, starting %.0f ms", out.At.Seconds(),
					ms(out.Stopping), ms(out.Starting))
				if !out.Done {
					gen += "; NOT RESTARTED"
				}
			}
			fmt.Fprintf(&b, "| %d | %s %s | %d | %d | %d | %d | %d | %.0f ms | %s | %s | %s |\n", o.Run, o.Setup.Name, ob.Node,
				r.Published, ob.Lost, ob.Dups, ob.Reordered, ob.After, ms(ob.Silence), missed, o.Stats[i], gen)
		}
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// brokerStats is a node's stats line.
type brokerStats struct {
	Published, Received, Dropped, Errors, Gaps int64
}

// parseStats reads a node's stats line (see nodeMain).
func parseStats(line string) (brokerStats, error) {
	var st brokerStats
	_, err := fmt.Sscanf(line, "published=%d received=%d dropped=%d errors=%d gaps=%d",
		&st.Published, &st.Received, &st.Dropped, &st.Errors, &st.Gaps)
	return st, err
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
	if !math.IsNaN(o.NATSCPU) {
		fmt.Fprintf(&b, "; nats-server %.0f%%", 100*o.NATSCPU/r.Seconds)
	}
	fmt.Fprintf(&b, "; client %.0f%%", r.GenCPUPct)
	for i, st := range o.Stats {
		if st != "" {
			fmt.Fprintf(&b, "; %s: %s", o.Names[i], st)
		}
	}
	if rs := o.Restart; rs != nil {
		fmt.Fprintf(&b, "; restart at %.1f s (done %v, stopping %.0f ms, starting %.0f ms); %d published;",
			rs.Outage.At.Seconds(), rs.Outage.Done, ms(rs.Outage.Stopping), ms(rs.Outage.Starting), rs.Published)
		for _, ob := range rs.Observed {
			fmt.Fprintf(&b, " %s lost %d dup %d reordered %d after %d silence %.0f ms", ob.Node, ob.Lost, ob.Dups, ob.Reordered, ob.After, ms(ob.Silence))
		}
	}
	if r.Errors > 0 || r.Missing != 0 {
		fmt.Fprintf(&b, "; %d ERRORS (%s), %d missing", r.Errors, r.FirstError, r.Missing)
	}
	return b.String()
}
