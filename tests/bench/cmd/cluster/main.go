// Command cluster measures a room's fan-out across Shockwave nodes over
// NATS (issue 18), beside the same room on one node: a real nats-server
// process and three node processes on loopback, a room of 1,000 members
// spread evenly over them (334/333/333), one member on the first node
// publishing at a fixed rate; then one node with all the members and no
// Broker, a local broadcast. It reports the deliveries per second, the
// latency from the publisher's send to each member's read, for the
// members of each node, and each process's CPU per delivery (utime+stime
// from /proc/<pid>/stat over the measured window, divided by the
// deliveries to that node's members), with the ratio of each node's to
// the single node's. Setups alternate within each run, so that they share
// the machine's ups and downs; medians and ranges over the runs end the
// report, as Markdown.
//
// Run it from the repository root (it builds nats-server from the module
// cache, at the version tests/go.mod requires):
//
//	go run ./tests/bench/cmd/cluster -runs 3 -dur 20s -rate 100
//
// The members are the load generator's lean clients (internal/load, one
// epoll loop in this process); the nodes are this program run as
// "cluster node" (see nodeMain), each the bench's shockwave server
// (internal/peers), whose /room broadcasts every message it gets to the
// room with Room.Broadcast, the sender included. The publisher is a
// member on the first node; every message carries its send time, and
// every member checks that it gets every message once, in order. Nothing
// is pinned: the nodes, nats-server and the clients share the machine's
// cores, which the report states.
//
// Durable rooms (-setups cluster-durable,single-history): the nodes run
// with -history, so that /room keeps the latest 100 messages and
// publishes each with Room.Publish; in cluster-durable the room's log is
// a JetStream stream (nats-server runs with -js, its store in a temporary
// directory, and the stream is deleted before each such setup), and every
// node, the publisher's included, delivers the messages as they come back
// from it; single-history keeps the history in the node, with no Broker,
// and is what cluster-durable's CPU is divided by.
//
// With -restart D, nats-server is stopped (SIGTERM, waited for) in the
// middle of each setup's measured window, and started again D later on
// the same port and store. One more member on each node, an observer,
// counts what its node's members lost or got twice across the restart;
// the report has a table of them beside the nodes' Broker counts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
)

// params are what every setup is measured with.
type params struct {
	Members  int           // in the room, spread over the nodes
	Rate     float64       // messages a second, from one member of the first node
	Size     int           // payload bytes
	Warmup   time.Duration // before the measured window
	Duration time.Duration // the measured window
	Procs    int           // GOMAXPROCS of each node (0: Go's default)
	Timeout  time.Duration // for starting processes and opening connections
	Restart  time.Duration // if positive: nats-server is down this long in the middle of the window
}

// historySize is what a room with history keeps, on its nodes (and the
// stream one more of it).
const historySize = 100

// setup is a deployment to measure.
type setup struct {
	Name    string
	Nodes   int
	NATS    bool // the nodes have a Broker
	History bool // the room keeps history: Room.Publish, in the Broker's log with NATS
}

var (
	clusterSetup = setup{Name: "cluster", Nodes: 3, NATS: true}
	singleSetup  = setup{Name: "single", Nodes: 1}
	// The single node with a Broker, whose publishes nobody receives: what
	// publishing costs the node that fans out locally.
	publishSetup = setup{Name: "single+nats", Nodes: 1, NATS: true}
	// A durable room: its history is a JetStream stream.
	durableSetup = setup{Name: "cluster-durable", Nodes: 3, NATS: true, History: true}
	// The same room on one node, its history in the node.
	historySetup = setup{Name: "single-history", Nodes: 1, History: true}

	allSetups = []setup{clusterSetup, singleSetup, publishSetup, durableSetup, historySetup}
)

// durable reports whether s's room keeps its history in the Broker's log.
func (s setup) durable() bool { return s.NATS && s.History }

// base returns the setup whose CPU per delivery s's is divided by: the
// single node with no Broker whose room keeps history as s's does.
func (s setup) base() setup {
	if s.History {
		return historySetup
	}
	return singleSetup
}

// env is where setups run.
type env struct {
	spawn   func(args ...string) *exec.Cmd // a node process: "cluster node" and args
	natsURL string
	nats    *proc       // the NATS server running now
	natsCfg *natsConfig // how to start it again
	profile string      // directory for the nodes' CPU profiles ("" for none)
	kids    *children
}

// outcome is one setup's run.
type outcome struct {
	Setup   setup
	Run     int
	Res     *load.Result
	Names   []string  // of the nodes, a first
	NodeCPU []float64 // seconds, over the measured window
	NATSCPU float64   // not measured across a restart: NaN
	Writes  []int64   // write system calls over the window: the nodes', then nats-server's (0 across a restart)
	Stats   []string  // the nodes' Broker counts, as they printed them
	Restart *restarted
}

// restarted is what -restart did and what the observers counted.
type restarted struct {
	Outage    outage
	Observed  []observed // per node
	Published uint32     // messages published in the whole run (warm-up and drain included)
}

// outage is a restart of the NATS server.
type outage struct {
	Done     bool          // it happened (the load ran long enough)
	At       time.Duration // after the first message: warm-up and half the window
	Stopping time.Duration // from SIGTERM to its exit
	Starting time.Duration // from the new process's start to its greeting
	Err      error
}

// measure starts s's nodes, runs the room over them and stops them.
func measure(e *env, s setup, p params, run int) (*outcome, error) {
	o := &outcome{Setup: s, Run: run}
	if s.durable() {
		// Each run's room starts with an empty log, as a new deployment's
		// would: the Broker's counts are then this run's alone.
		if err := resetLog(e.natsURL, p.Timeout); err != nil {
			return nil, err
		}
	}
	var nodes []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { e.kids.stop(n) })
		}
		wg.Wait()
		for _, n := range nodes {
			o.Stats = append(o.Stats, n.statsLine())
		}
	}()
	var addrs []string
	var pids []int
	for i := range s.Nodes {
		name := string(rune('a' + i))
		args := []string{"-addr", "127.0.0.1:0", "-name", name}
		if s.NATS {
			args = append(args, "-nats", e.natsURL)
		}
		if s.History {
			args = append(args, "-history", strconv.Itoa(historySize))
		}
		if e.profile != "" {
			args = append(args, "-cpuprofile", filepath.Join(e.profile, fmt.Sprintf("%s-%d-%s.pprof", s.Name, run, name)))
		}
		cmd := e.spawn(args...)
		cmd.Stderr = os.Stderr
		if p.Procs > 0 {
			cmd.Env = append(cmd.Environ(), "GOMAXPROCS="+strconv.Itoa(p.Procs))
		}
		n, err := e.kids.start("node "+name, cmd, false)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
		addr, err := n.ready(p.Timeout)
		if err != nil {
			return nil, err
		}
		addrs, pids, o.Names = append(addrs, addr), append(pids, n.cmd.Process.Pid), append(o.Names, name)
	}
	watch := append(pids, e.nats.cmd.Process.Pid)
	var obs []*observer
	stopRestart := make(chan struct{})
	var restarting sync.WaitGroup
	if p.Restart > 0 {
		// A process that is gone cannot be read: nats-server's CPU is not
		// measured across a restart.
		watch = pids
		o.Restart = &restarted{}
		defer func() {
			for _, ob := range obs {
				ob.c.CloseNow() // if finish has not
			}
		}()
		for i, addr := range addrs {
			ob, err := observe(o.Names[i], addr, p.Timeout)
			if err != nil {
				return nil, err
			}
			obs = append(obs, ob)
		}
		restarting.Go(func() { o.Restart.Outage = restartMidway(e, obs, p, stopRestart) })
	}
	res, err := load.Run(load.Config{
		Scenario:   "room",
		Addrs:      addrs,
		Conns:      p.Members,
		Size:       p.Size,
		Publishers: 1,
		Rate:       p.Rate,
		Warmup:     p.Warmup,
		Duration:   p.Duration,
		Watch:      watch,
		Timeout:    p.Timeout,
	})
	close(stopRestart)
	restarting.Wait()
	if err != nil {
		return nil, err
	}
	o.Res = res
	o.NodeCPU, o.Writes = res.CPUSec[:s.Nodes], res.Writes
	if o.Restart != nil {
		o.NATSCPU, o.Writes = math.NaN(), append(o.Writes, 0)
		o.Restart.Observed, o.Restart.Published = finish(obs, 2*time.Second)
		return o, o.Restart.check(s, res)
	}
	o.NATSCPU = res.CPUSec[s.Nodes]
	if res.Errors > 0 || res.Missing != 0 {
		return o, fmt.Errorf("%s: %d errors (first: %s), %d deliveries missing", s.Name, res.Errors, res.FirstError, res.Missing)
	}
	return o, nil
}

// restartMidway stops the NATS server once the load has run its warm-up
// and half its window, after the first message any observer got, waits
// p.Restart and starts it again on the same port and store; unless stop
// is closed first (the load ended).
func restartMidway(e *env, obs []*observer, p params, stop <-chan struct{}) outage {
	var t0 time.Time
	for t0.IsZero() {
		select {
		case <-stop:
			return outage{}
		case <-time.After(10 * time.Millisecond):
		}
		for _, ob := range obs {
			if t := ob.started(); !t.IsZero() && (t0.IsZero() || t.Before(t0)) {
				t0 = t
			}
		}
	}
	select {
	case <-stop:
		return outage{}
	case <-time.After(time.Until(t0.Add(p.Warmup + p.Duration/2))):
	}
	out := outage{Done: true, At: time.Since(t0)}
	t := time.Now()
	for _, ob := range obs {
		ob.stopping(t)
	}
	e.kids.stop(e.nats)
	out.Stopping = time.Since(t)
	time.Sleep(p.Restart)
	t = time.Now()
	ns, _, err := e.kids.startNATS(e.natsCfg)
	out.Starting = time.Since(t)
	if err != nil {
		out.Err = err
		return out
	}
	e.nats = ns
	return out
}

// check says what went wrong in a run with a restart: in a durable room,
// anything lost or repeated; in any, an observer cut off, or a restart
// that did not happen. The losses of a volatile room are expected, and
// reported, not errors.
func (r *restarted) check(s setup, res *load.Result) error {
	var errs []error
	if !r.Outage.Done {
		errs = append(errs, errors.New("the run ended before nats-server was restarted"))
	}
	if r.Outage.Err != nil {
		errs = append(errs, fmt.Errorf("starting nats-server again: %w", r.Outage.Err))
	}
	for _, ob := range r.Observed {
		if ob.Err != nil {
			errs = append(errs, fmt.Errorf("observer on %s: %w", ob.Node, ob.Err))
		}
		if (s.durable() || !s.NATS) && ob.Lost+ob.Dups+ob.Reordered != 0 {
			errs = append(errs, fmt.Errorf("node %s: %d lost, %d duplicated, %d out of order", ob.Node, ob.Lost, ob.Dups, ob.Reordered))
		}
	}
	var seen int64
	for _, ob := range r.Observed {
		seen += ob.Lost + ob.Dups + ob.Reordered
	}
	if (s.durable() || !s.NATS || seen == 0) && (res.Errors > 0 || res.Missing != 0) {
		errs = append(errs, fmt.Errorf("%d errors (first: %s), %d deliveries missing", res.Errors, res.FirstError, res.Missing))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s across the restart: %w", s.Name, err)
	}
	return nil
}

// resetLog deletes the stream of the durable rooms' logs, if there is one.
func resetLog(url string, timeout time.Duration) error {
	nc, err := nats.Connect(url, nats.Name("shockwave-cluster-bench"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := js.DeleteStream(ctx, logStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("deleting the stream %s: %w", logStream, err)
	}
	return nil
}

// logStream is the stream of natsbroker's durable rooms under its default
// Prefix, sw.
const logStream = "sw_rooms"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		if err := nodeMain(os.Args[2:]); err != nil {
			log.Fatal("node: ", err)
		}
		return
	}
	var p params
	flag.IntVar(&p.Members, "members", 1000, "members of the room, spread evenly over the nodes")
	flag.Float64Var(&p.Rate, "rate", 100, "messages a second, published by a member of the first node")
	flag.IntVar(&p.Size, "size", 128, "payload bytes per message (at least 20: a stamp)")
	flag.DurationVar(&p.Warmup, "warmup", 3*time.Second, "load before the measured window")
	flag.DurationVar(&p.Duration, "dur", 20*time.Second, "measured window of each run")
	flag.IntVar(&p.Procs, "gomaxprocs", 1, "GOMAXPROCS of each node (0: Go's default, the machine's cores)")
	flag.DurationVar(&p.Timeout, "timeout", time.Minute, "for starting processes and opening connections")
	flag.DurationVar(&p.Restart, "restart", 0, "if set, stop nats-server in the middle of each measured window and start it again this much later")
	runs := flag.Int("runs", 3, "runs; each runs every setup, in alternating order")
	setups := flag.String("setups", "cluster,single", "setups to run: cluster, single, single+nats, cluster-durable, single-history")
	profile := flag.String("cpuprofile", "", "directory for the nodes' CPU profiles (<setup>-<run>-<node>.pprof), each over a node's life")
	natsBin := flag.String("nats-server", "", "nats-server binary (default: built from the module cache)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cluster: ")

	var list []setup
	for _, name := range strings.Split(*setups, ",") {
		i := slices.IndexFunc(allSetups, func(s setup) bool { return s.Name == name })
		if i < 0 {
			log.Fatalf("unknown setup %q", name)
		}
		list = append(list, allSetups[i])
	}
	if err := run(p, list, *runs, *profile, *natsBin); err != nil {
		log.Fatal(err)
	}
}

// run builds and starts nats-server, runs every setup runs times and
// prints the report. Every process it starts is stopped before it
// returns, or on SIGINT or SIGTERM.
func run(p params, setups []setup, runs int, profile, natsBin string) error {
	dir, err := os.MkdirTemp("", "shockwave-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kids := &children{}
	defer kids.stopAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			log.Print("signal: stopping")
			kids.stopAll()
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}()

	if natsBin == "" {
		if natsBin, err = buildNATS(dir); err != nil {
			return err
		}
	}
	cfg := &natsConfig{bin: natsBin, dir: dir}
	if slices.ContainsFunc(setups, setup.durable) {
		cfg.store = filepath.Join(dir, "jetstream")
	}
	ns, url, err := kids.startNATS(cfg)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return err
		}
	}
	e := &env{
		spawn:   func(args ...string) *exec.Cmd { return exec.Command(self, append([]string{"node"}, args...)...) },
		natsURL: url,
		nats:    ns,
		natsCfg: cfg,
		profile: profile,
		kids:    kids,
	}
	log.Printf("%d cores, load average %s; %d members, %.0f msgs/s of %d B, %v + %v per run, GOMAXPROCS=%d on each node; JetStream %v; restart %v",
		goruntime.NumCPU(), loadavg(), p.Members, p.Rate, p.Size, p.Warmup, p.Duration, p.Procs, cfg.store != "", p.Restart)
	var all []*outcome
	var errs []error
	for r := range runs {
		for k := range setups {
			s := setups[(k+r)%len(setups)] // a different order each run
			o, err := measure(e, s, p, r+1)
			if err != nil {
				errs = append(errs, fmt.Errorf("run %d: %w", r+1, err))
				log.Printf("run %d %s: %v", r+1, s.Name, err)
			}
			if o != nil {
				log.Print(describe(o))
			}
			// Across a restart, a run that lost messages is what the
			// report is for.
			if err == nil || o != nil && o.Restart != nil {
				all = append(all, o)
			}
		}
	}
	fmt.Print(report(p, all, runs))
	return errors.Join(errs...)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
