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
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
}

// setup is a deployment to measure.
type setup struct {
	Name  string
	Nodes int
	NATS  bool // the nodes have a Broker
}

var (
	clusterSetup = setup{"cluster", 3, true}
	singleSetup  = setup{"single", 1, false}
	// The single node with a Broker, whose publishes nobody receives: what
	// publishing costs the node that fans out locally.
	publishSetup = setup{"single+nats", 1, true}
)

// env is where setups run.
type env struct {
	spawn   func(args ...string) *exec.Cmd // a node process: "cluster node" and args
	natsURL string
	natsPID int
	profile string // directory for the nodes' CPU profiles ("" for none)
	kids    *children
}

// outcome is one setup's run.
type outcome struct {
	Setup   setup
	Run     int
	Res     *load.Result
	Names   []string  // of the nodes, a first
	NodeCPU []float64 // seconds, over the measured window
	NATSCPU float64
	Writes  []int64  // write system calls over the window: the nodes', then nats-server's
	Stats   []string // the nodes' Broker counts, as they printed them
}

// measure starts s's nodes, runs the room over them and stops them.
func measure(e *env, s setup, p params, run int) (*outcome, error) {
	o := &outcome{Setup: s, Run: run}
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
	res, err := load.Run(load.Config{
		Scenario:   "room",
		Addrs:      addrs,
		Conns:      p.Members,
		Size:       p.Size,
		Publishers: 1,
		Rate:       p.Rate,
		Warmup:     p.Warmup,
		Duration:   p.Duration,
		Watch:      append(pids, e.natsPID),
		Timeout:    p.Timeout,
	})
	if err != nil {
		return nil, err
	}
	o.Res = res
	o.NodeCPU, o.NATSCPU, o.Writes = res.CPUSec[:s.Nodes], res.CPUSec[s.Nodes], res.Writes
	if res.Errors > 0 || res.Missing != 0 {
		return o, fmt.Errorf("%s: %d errors (first: %s), %d deliveries missing", s.Name, res.Errors, res.FirstError, res.Missing)
	}
	return o, nil
}

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
	runs := flag.Int("runs", 3, "runs; each runs every setup, in alternating order")
	setups := flag.String("setups", "cluster,single", "setups to run: cluster, single, single+nats")
	profile := flag.String("cpuprofile", "", "directory for the nodes' CPU profiles (<setup>-<run>-<node>.pprof), each over a node's life")
	natsBin := flag.String("nats-server", "", "nats-server binary (default: built from the module cache)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cluster: ")

	var list []setup
	for _, name := range strings.Split(*setups, ",") {
		switch name {
		case clusterSetup.Name:
			list = append(list, clusterSetup)
		case singleSetup.Name:
			list = append(list, singleSetup)
		case publishSetup.Name:
			list = append(list, publishSetup)
		default:
			log.Fatalf("unknown setup %q", name)
		}
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
	ns, url, err := kids.startNATS(natsBin, filepath.Join(dir, "nats-server.log"))
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
		natsPID: ns.cmd.Process.Pid,
		profile: profile,
		kids:    kids,
	}
	log.Printf("%d cores, load average %s; %d members, %.0f msgs/s of %d B, %v + %v per run, GOMAXPROCS=%d on each node",
		goruntime.NumCPU(), loadavg(), p.Members, p.Rate, p.Size, p.Warmup, p.Duration, p.Procs)
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
			if err == nil {
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
