package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// nodeEnv makes the test binary a node (nodeMain), as "cluster node"
// makes the program one.
const nodeEnv = "SHOCKWAVE_CLUSTER_BENCH_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) == "1" {
		if err := nodeMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMeasure runs the program's core, scaled down: a nats-server
// process built as the program builds it, with JetStream, three node
// processes and then one, 30 members, a second at 50 messages a second,
// for volatile rooms and then for durable ones (cluster-durable: a
// JetStream log; single-history). Every message must reach every member
// once and in order (the load generator checks each delivery, and that
// none is missing after the drain); in the cluster the two remote nodes
// must have received through NATS all that the first published, in the
// durable cluster every node must have delivered from the log all that
// the first appended; and the report must have its rows.
func TestMeasure(t *testing.T) {
	e := testEnv(t)
	p := params{Members: 30, Rate: 50, Size: 64, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Procs: 1, Timeout: 20 * time.Second}
	var all []*outcome
	for _, s := range []setup{clusterSetup, singleSetup, durableSetup, historySetup} {
		o, err := measure(e, s, p, 1)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, o)
		r := o.Res
		if r.Published == 0 || len(r.ByAddr) != s.Nodes {
			t.Fatalf("%s: %d published, results of %d nodes", s.Name, r.Published, len(r.ByAddr))
		}
		for i, a := range r.ByAddr {
			if a.Conns != p.Members/s.Nodes || a.Messages == 0 {
				t.Errorf("%s: node %s has %d members and %d deliveries", s.Name, o.Names[i], a.Conns, a.Messages)
			}
		}
	}
	// a published every message once; b and c received each, and in the
	// durable room a, b and c each delivered each from the log.
	for _, o := range []*outcome{all[0], all[2]} {
		var published int64
		for i, line := range o.Stats {
			st, err := parseStats(line)
			if err != nil {
				t.Fatalf("%s node %s: stats %q: %v", o.Setup.Name, o.Names[i], line, err)
			}
			if i == 0 {
				published = st.Published
			}
			recv := published // from the log, every node
			if !o.Setup.durable() && i == 0 {
				recv = 0 // its own, not from NATS
			}
			if i == 0 && st.Published == 0 || i > 0 && st.Published != 0 || st.Received != recv || st.Dropped+st.Errors+st.Gaps != 0 {
				t.Errorf("%s node %s: %s; a published %d", o.Setup.Name, o.Names[i], line, published)
			}
		}
	}
	rep := report(p, all, 1)
	for _, want := range []string{"cluster b (remote)", "single a (local broadcast)", "÷ single",
		"cluster-durable b (from the log)", "single-history a (local history)"} {
		if !strings.Contains(rep, want) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}
}

// testEnv builds nats-server as the program does and starts it, with
// JetStream stored in a temporary folder, and returns an env whose nodes
// are the test binary; it skips where the load generator or the build
// cannot run. Every process it starts stops when the test ends.
func testEnv(t *testing.T) *env {
	t.Helper()
	if goruntime.GOOS != "linux" {
		t.Skip("the load generator needs Linux (epoll)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("building nats-server needs the go command")
	}
	dir := t.TempDir()
	kids := &children{}
	t.Cleanup(kids.stopAll)
	bin, err := buildNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &natsConfig{bin: bin, dir: dir, store: filepath.Join(dir, "jetstream")}
	ns, url, err := kids.startNATS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		spawn: func(args ...string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], args...)
			// Built with -race, a node would sleep a second as it exits.
			cmd.Env = append(os.Environ(), nodeEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return cmd
		},
		natsURL: url,
		nats:    ns,
		natsCfg: cfg,
		kids:    kids,
	}
}

// TestRestart runs a durable room across a restart of nats-server, as
// -restart does, scaled down: the server stops in the middle of the
// window and is back 100 ms later on the same port and store; the nodes
// reconnect (nats.go waits 2 s between attempts) and the publishes made
// meanwhile wait for the stream. Nothing may be lost, repeated or
// reordered on any node, and the restart must have happened.
func TestRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("a NATS reconnection takes 2 s")
	}
	e := testEnv(t)
	pid := e.nats.cmd.Process.Pid
	p := params{Members: 30, Rate: 50, Size: 64, Warmup: 100 * time.Millisecond, Duration: time.Second, Procs: 1,
		Timeout: 20 * time.Second, Restart: 100 * time.Millisecond}
	o, err := measure(e, durableSetup, p, 1)
	if err != nil {
		t.Fatal(err) // check's: anything lost, repeated or reordered, or no restart
	}
	if e.nats.cmd.Process.Pid == pid {
		t.Error("nats-server was not started again")
	}
	r := o.Restart
	if r.Published == 0 || len(r.Observed) != 3 {
		t.Fatalf("%d published, %d observers", r.Published, len(r.Observed))
	}
	for _, ob := range r.Observed {
		// The members saw the outage, nothing while the nodes reconnected,
		// and then the rest.
		if ob.Silence < 500*time.Millisecond || ob.After == 0 {
			t.Errorf("node %s: longest silence %v, %d messages after the stop", ob.Node, ob.Silence, ob.After)
		}
	}
	rep := report(p, []*outcome{o}, 1)
	for _, want := range []string{"Across the restart", "| 1 | cluster-durable b | "} {
		if !strings.Contains(rep, want) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}
}
