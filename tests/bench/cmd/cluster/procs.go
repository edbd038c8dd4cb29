package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process: a node or the NATS server.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string   // its standard output, line by line
	done  chan struct{} // closed once it has exited
	err   error         // how it exited, once done is closed
	once  sync.Once
	last  bool // stopAll stops it after the others: the NATS server
}

// children are the processes the program started and has not stopped:
// stopAll ends them on the way out, whatever the way.
type children struct {
	mu   sync.Mutex
	live map[*proc]struct{}
}

// start starts cmd as name, registered with c; see proc.last for last.
func (c *children) start(name string, cmd *exec.Cmd, last bool) (*proc, error) {
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{}), last: last}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.mu.Lock()
	if c.live == nil {
		c.live = make(map[*proc]struct{})
	}
	c.live[p] = struct{}{}
	c.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is reading: dropped
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends p with SIGTERM, then SIGKILL after 10 s, and waits for it.
func (c *children) stop(p *proc) {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	c.mu.Lock()
	delete(c.live, p)
	c.mu.Unlock()
}

// stopAll stops every live child: the nodes all at once, then the NATS
// server, so that the nodes drain their connections to it.
func (c *children) stopAll() {
	for _, last := range []bool{false, true} {
		c.mu.Lock()
		var ps []*proc
		for p := range c.live {
			if p.last == last {
				ps = append(ps, p)
			}
		}
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Go(func() { c.stop(p) })
		}
		wg.Wait()
	}
}

var readyLine = regexp.MustCompile(`^ready pid=(\d+) addr=(\S+)$`)

// ready waits for a node's ready line and returns its address.
func (p *proc) ready(timeout time.Duration) (string, error) {
	select {
	case l := <-p.lines:
		m := readyLine.FindStringSubmatch(l)
		if m == nil {
			return "", fmt.Errorf("%s: unexpected first line %q", p.name, l)
		}
		if pid, _ := strconv.Atoi(m[1]); pid != p.cmd.Process.Pid {
			return "", fmt.Errorf("%s: ready line says pid %s, started %d", p.name, m[1], p.cmd.Process.Pid)
		}
		return m[2], nil
	case <-p.done:
		return "", fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
	case <-time.After(timeout):
		return "", fmt.Errorf("%s: not ready after %v", p.name, timeout)
	}
}

// statsLine returns the stats line a node printed as it stopped, if any.
func (p *proc) statsLine() string {
	for {
		select {
		case l := <-p.lines:
			if s, ok := strings.CutPrefix(l, "stats "); ok {
				return s
			}
		default:
			return ""
		}
	}
}

// buildNATS builds nats-server, at the version the tests module requires,
// into dir. It runs in the module (or workspace) that the working
// directory is in: the repository root or below.
func buildNATS(dir string) (string, error) {
	bin := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nats-server (run from the repository): %v: %s", err, out)
	}
	return bin, nil
}

// natsConfig is how the NATS server is started, and started again on the
// same port and store by -restart.
type natsConfig struct {
	bin   string // nats-server
	dir   string // for its logs
	port  string // on 127.0.0.1; "" picks a free port, kept for the next start
	store string // JetStream's store directory; "" for no JetStream
	runs  int    // starts so far: each has its log, nats-server-<n>.log
}

// startNATS starts nats-server as cfg says and waits until it greets a
// client.
func (c *children) startNATS(cfg *natsConfig) (*proc, string, error) {
	if cfg.port == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		_, cfg.port, _ = net.SplitHostPort(ln.Addr().String())
		ln.Close()
	}
	addr := net.JoinHostPort("127.0.0.1", cfg.port)
	cfg.runs++
	logFile := filepath.Join(cfg.dir, fmt.Sprintf("nats-server-%d.log", cfg.runs))
	args := []string{"-a", "127.0.0.1", "-p", cfg.port, "-l", logFile}
	if cfg.store != "" {
		args = append(args, "-js", "-sd", cfg.store)
	}
	p, err := c.start("nats-server", exec.Command(cfg.bin, args...), true)
	if err != nil {
		return nil, "", err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if err := greets(addr); err == nil {
			return p, "nats://" + addr, nil
		} else if time.Now().After(deadline) {
			c.stop(p)
			return nil, "", fmt.Errorf("nats-server: %w (see %s)", err, logFile)
		}
		select {
		case <-p.done:
			return nil, "", fmt.Errorf("nats-server exited: %v (see %s)", p.err, logFile)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// greets reports whether a NATS server at addr sends its INFO line.
func greets(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	l, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "INFO ") {
		return errors.New("no INFO line")
	}
	return nil
}
