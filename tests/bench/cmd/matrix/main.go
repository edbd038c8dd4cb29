// Command matrix runs the load matrix: every case of report.Cases against
// every bench server, each server pinned to one core with GOMAXPROCS=1 and
// the load generator pinned to another, libraries interleaved within each
// case and round, so that they share the machine's ups and downs. It prints
// the tables with the ratios of the first library against each peer, and
// writes docs/benchmarks.md (between its generated markers), the chart and
// the raw results.
//
// Run it from the repository root, on a quiet machine (see tests/bench/run.sh):
//
//	go run ./tests/bench/cmd/matrix -rounds 3 -dur 4s
//
// uWebSockets (C++) is one of the peers by default: its server is built
// apart, from ../shared/bench/uws (whose build.sh says how; nothing of it is
// committed), and given with -uws or $UWS_BIN. Without it, its columns say
// "not built".
//
// The permessage-deflate cases (report.DeflateCases) run when named, as
// "-cases deflate" names them all; they can take uWebSockets as a peer,
// built from ../shared/bench/uws (see docs/benchmarks-deflate.md):
//
//	go run ./tests/bench/cmd/matrix -cases deflate -libs shockwave,gws,uws,uws-prepared \
//		-uws /path/to/uws -md docs/benchmarks-deflate.md -svg '' -json ''
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
	"github.com/shockwave-go/shockwave/tests/bench/internal/report"
)

func main() {
	rounds := flag.Int("rounds", 3, "rounds over the whole matrix (medians are reported)")
	dur := flag.Duration("dur", 4*time.Second, "measured window per run")
	warmup := flag.Duration("warmup", time.Second, "warm-up per run")
	settle := flag.Duration("settle", 3*time.Second, "idle: time for memory to settle")
	libs := flag.String("libs", strings.Join(append(peers.Libs, "uws"), ","), "libraries, the one compared first")
	cases := flag.String("cases", "", "comma-separated case names (default: all)")
	serverCPU := flag.String("server-cpu", "0", "CPU the servers are pinned to")
	loadCPU := flag.String("load-cpu", "1", "CPU the load generator is pinned to")
	basePort := flag.Int("port", 21000, "first port; each run uses the next")
	mdPath := flag.String("md", "docs/benchmarks.md", "Markdown report to update between its generated markers ('' for none)")
	svgPath := flag.String("svg", "docs/benchmarks.svg", "chart to write ('' for none)")
	jsonPath := flag.String("json", "docs/benchmarks.json", "raw results to write ('' for none)")
	binDir := flag.String("bin", "", "directory for the built programs (default: a temporary one)")
	uwsBin := flag.String("uws", os.Getenv("UWS_BIN"), "the uWebSockets bench server, for libraries uws and uws-prepared (see ../shared/bench/uws; default $UWS_BIN); without it they are reported as not built")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("matrix: ")

	m := &report.Matrix{Libs: strings.Split(*libs, ",")}
	var err error
	if m.Cases, err = report.Select(*cases); err != nil {
		log.Fatal(err)
	}
	if *uwsBin == "" {
		for _, lib := range m.Libs {
			if isUws(lib) {
				m.NotBuilt = append(m.NotBuilt, lib)
				log.Printf("%s: not built (build ../shared/bench/uws and pass -uws or set UWS_BIN): reported as such", lib)
			}
		}
	}
	dir := *binDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "shockwave-bench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	run := slices.DeleteFunc(slices.Clone(m.Libs), func(lib string) bool { return slices.Contains(m.NotBuilt, lib) })
	if err := build(dir, run, *uwsBin); err != nil {
		log.Fatal(err)
	}
	m.Env = environment()
	m.Env.Rounds, m.Env.Warmup, m.Env.Duration = *rounds, warmup.String(), dur.String()
	m.Env.ServerCPU, m.Env.LoadCPU = *serverCPU, *loadCPU
	m.Env.Command = "go run ./tests/bench/cmd/matrix " + strings.Join(os.Args[1:], " ")
	m.Started = time.Now()
	log.Printf("%d cases x %d libraries x %d rounds; load average %s", len(m.Cases), len(m.Libs), *rounds, m.Env.LoadBefore)

	port := *basePort
	for round := range *rounds {
		for ci, c := range m.Cases {
			for k := range run {
				lib := run[(k+ci+round)%len(run)] // a different order each time
				port++
				run := report.Run{Case: c.Name, Lib: lib, Round: round}
				res, err := runOne(dir, lib, c, port, *serverCPU, *loadCPU, *warmup, *dur, *settle)
				if err != nil {
					run.Error = err.Error()
				}
				run.Result = res
				m.Runs = append(m.Runs, run)
				log.Print(describe(round, c, lib, res, err))
			}
		}
	}
	m.Finished = time.Now()
	m.Env.LoadAfter = loadavg()
	fmt.Print(m.Text())

	if *jsonPath != "" {
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	chartName := ""
	if *svgPath != "" {
		if err := os.WriteFile(*svgPath, m.Chart(), 0o644); err != nil {
			log.Fatal(err)
		}
		chartName = filepath.Base(*svgPath)
	}
	if *mdPath != "" {
		if err := report.UpdateMarkdown(*mdPath, m.Markdown(chartName)); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", *mdPath)
	}
}

// isUws reports whether lib is the uWebSockets server, built apart from
// the Go ones: uws, or uws-prepared whose /room compresses a broadcast
// once (with uWS's PreparedMessage) rather than for each member.
func isUws(lib string) bool { return lib == "uws" || lib == "uws-prepared" }

// build compiles the servers and the load generator into dir, and links
// the uWebSockets server there.
func build(dir string, libs []string, uwsBin string) error {
	pkgs := map[string]string{"wsload": "./tests/bench/cmd/wsload"}
	for _, lib := range libs {
		if isUws(lib) {
			abs, err := filepath.Abs(uwsBin)
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err != nil {
				return fmt.Errorf("the uWebSockets server: %w", err)
			}
			os.Remove(filepath.Join(dir, lib))
			if err := os.Symlink(abs, filepath.Join(dir, lib)); err != nil {
				return err
			}
			continue
		}
		pkgs[lib] = "./tests/bench/servers/" + lib
	}
	for name, pkg := range pkgs {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s (run from the repository root): %w", pkg, err)
		}
	}
	return nil
}

var readyLine = regexp.MustCompile(`^ready lib=(\S+) pid=(\d+) addr=(\S+)`)

// runOne starts lib's server, runs case c against it and stops it.
func runOne(dir, lib string, c report.Case, port int, serverCPU, loadCPU string, warmup, dur, settle time.Duration) (*load.Result, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	sargs := []string{"-c", serverCPU, filepath.Join(dir, lib), "-addr", addr}
	if lib == "shockwave" && c.Scenario == "idle" {
		// What Runtime.Serve is for: a server of idle sessions, whose
		// handshakes leave it no garbage.
		sargs = append(sargs, "-serve")
	}
	if c.Deflate {
		sargs = append(sargs, "-deflate")
		if lib == "uws-prepared" {
			sargs = append(sargs, "-prepared")
		}
	}
	srv := exec.Command("taskset", sargs...)
	srv.Env = append(os.Environ(), "GOMAXPROCS=1")
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer stop(srv)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	var pid int
	if isUws(lib) {
		// It prints no ready line: it is ready when it takes connections.
		// taskset execs it, so its pid is the one started.
		pid = srv.Process.Pid
		if err := waitListening(addr, 20*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", lib, err)
		}
	} else {
		select {
		case l := <-lines:
			mm := readyLine.FindStringSubmatch(l)
			if mm == nil {
				return nil, fmt.Errorf("%s: unexpected first line %q", lib, l)
			}
			pid, _ = strconv.Atoi(mm[2])
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("%s: no ready line after 20 s", lib)
		}
	}
	if pid != srv.Process.Pid {
		return nil, fmt.Errorf("%s: ready line says pid %d, started %d", lib, pid, srv.Process.Pid)
	}

	args := []string{"-c", loadCPU, filepath.Join(dir, "wsload"), "-json",
		"-addr", addr, "-pid", strconv.Itoa(pid), "-scenario", c.Scenario,
		"-conns", strconv.Itoa(c.Conns), "-size", strconv.Itoa(c.Size),
		"-warmup", warmup.String(), "-dur", dur.String(), "-settle", settle.String()}
	if c.Frag > 0 {
		args = append(args, "-frag", strconv.Itoa(c.Frag))
	}
	if c.Window > 0 {
		args = append(args, "-window", strconv.Itoa(c.Window))
	}
	if c.Publishers > 0 {
		args = append(args, "-publishers", strconv.Itoa(c.Publishers))
	}
	if c.Text {
		args = append(args, "-text")
	}
	if c.Payload != "" {
		args = append(args, "-payload", c.Payload)
	}
	if c.Deflate {
		args = append(args, "-deflate")
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+settle+2*time.Minute)
	defer cancel()
	gen := exec.CommandContext(ctx, "taskset", args...)
	var stdout, stderr bytes.Buffer
	gen.Stdout, gen.Stderr = &stdout, &stderr
	runErr := gen.Run()
	var res load.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		if runErr == nil {
			runErr = err
		}
		return nil, fmt.Errorf("wsload: %v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return &res, nil // verification errors are in res
}

// waitListening waits until addr takes TCP connections.
func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends a server with SIGTERM, then SIGKILL after 10 s.
func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func describe(round int, c report.Case, lib string, r *load.Result, err error) string {
	s := fmt.Sprintf("round %d %-10s %-9s ", round+1, c.Name, lib)
	switch {
	case err != nil:
		return s + "FAILED: " + err.Error()
	case c.Scenario == "idle":
		s += fmt.Sprintf("%.2f KiB/conn, %d/%d alive", r.RSSPerConn/1024, r.Verified, r.Conns)
	default:
		s += fmt.Sprintf("%9.0f msgs/s %7.1f MB/s  srv %5.2f µs/msg %3.0f%%  gen %3.0f%%  p50 %s p99 %s",
			r.MsgsPerSec, r.MBPerSec, r.ServerCPUPerMsgUs, r.ServerCPUPct, r.GenCPUPct,
			time.Duration(r.P50Us*1e3).Round(time.Microsecond), time.Duration(r.P99Us*1e3).Round(time.Microsecond))
	}
	if c.Payload != "" || c.Deflate {
		s += fmt.Sprintf("  wire %.0f B/msg in, %.0f B/msg out", r.WireInPerMsg, r.WireOutPerMsg)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf("  %d ERRORS: %s", r.Errors, r.FirstError)
	}
	return s
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func environment() report.Env {
	e := report.Env{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	e.Revision = "unknown revision"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.Revision = "commit " + strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--", ".", ":!docs").Output(); err == nil && len(st) > 0 {
			e.Revision += "+changes"
		}
	}
	if out, err := exec.Command("nproc", "--all").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			e.Cores = n
		}
	}
	return e
}
