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
// process built as the program builds it, three node processes and then
// one, 30 members, a second at 50 messages a second. Every message must
// reach every member once and in order (the load generator checks each
// delivery, and that none is missing after the drain), the two remote
// nodes must have received through NATS all that the first published,
// and the report must have its rows.
func TestMeasure(t *testing.T) {
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
	ns, url, err := kids.startNATS(bin, filepath.Join(dir, "nats-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		spawn: func(args ...string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], args...)
			// Built with -race, a node would sleep a second as it exits.
			cmd.Env = append(os.Environ(), nodeEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return cmd
		},
		natsURL: url,
		natsPID: ns.cmd.Process.Pid,
		kids:    kids,
	}
	p := params{Members: 30, Rate: 50, Size: 64, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Procs: 1, Timeout: 20 * time.Second}
	var all []*outcome
	for _, s := range []setup{clusterSetup, singleSetup} {
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
	// a published every message once; b and c received each.
	var published int64
	for i, st := range all[0].Stats {
		var pub, recv, dropped, errs int64
		if _, err := fmt.Sscanf(st, "published=%d received=%d dropped=%d errors=%d", &pub, &recv, &dropped, &errs); err != nil {
			t.Fatalf("node %s: stats %q: %v", all[0].Names[i], st, err)
		}
		if i == 0 {
			published = pub
		}
		if i == 0 && (pub == 0 || recv != 0) || i > 0 && (pub != 0 || recv != published) || dropped+errs != 0 {
			t.Errorf("node %s: %s; a published %d", all[0].Names[i], st, published)
		}
	}
	rep := report(p, all, 1)
	for _, want := range []string{"cluster b (remote)", "single a (local broadcast)", "÷ single"} {
		if !strings.Contains(rep, want) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}
}
