// Command loadcheck puts the chat of examples/chat under load on loopback:
// simulated users in rooms, each sending one message a second, every
// message delivered to everyone in its room. It reports the delivery
// latency (from the sender's write to each member's read) and the server's
// CPU time and memory.
//
//	go run ./examples/chat/loadcheck                   # 1,000 users, 10 rooms, 20 s
//	go run ./examples/chat/loadcheck -users 200 -duration 5s
//
// The server runs in a child process (this program, started again with
// -serve), so that its CPU and memory, read from /proc, are its own and not
// the clients'. -addr points the clients at a chat that is already running
// instead; then only latency is reported.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/internal/procstat"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.users, "users", 1000, "simulated users")
	flag.IntVar(&cfg.rooms, "rooms", 10, "rooms, the users spread evenly over them")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long the users send")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "time between two messages of a user")
	addr := flag.String("addr", "", "host:port of a running chat; empty starts one in a child process")
	serve := flag.String("serve", "", "run the chat server on this address (what the child process does)")
	flag.Parse()

	if *serve != "" {
		serveChat(*serve)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var srv *child
	if *addr == "" {
		var err error
		if srv, err = startChild(); err != nil {
			log.Fatal(err)
		}
		defer srv.stop()
		*addr = srv.addr
	}
	cfg.url = "ws://" + *addr + "/ws"
	var self0, self1 time.Duration // the clients' CPU time, this process's
	cfg.onPhase = func(phase string) {
		log.Print(phase)
		switch phase {
		case "sending":
			self0 = selfCPU()
			if srv != nil {
				srv.mark()
			}
		case "draining":
			self1 = selfCPU()
			if srv != nil {
				srv.sample()
			}
		}
	}
	res, err := run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.report(cfg))
	if srv != nil {
		fmt.Print(srv.report())
	}
	fmt.Printf("clients: CPU %.1f s = %.0f%% of one core\n", (self1 - self0).Seconds(), 100*(self1-self0).Seconds()/cfg.duration.Seconds())
}

// serveChat runs the chat server on addr, prints "listening <addr>" once it
// does, and stops when stdin closes (the parent went away) or on a signal.
func serveChat(addr string) {
	chat, err := chatserver.New(chatserver.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer("", chat)
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		stdinClosed := make(chan struct{})
		go func() {
			bufio.NewReader(os.Stdin).ReadString(0) // returns when the parent closes our stdin
			close(stdinClosed)
		}()
		select {
		case <-ctx.Done():
		case <-stdinClosed:
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		chat.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// child is the chat server in a child process.
type child struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	addr  string
	pid   int

	cpu0  time.Duration // CPU time when the sending started
	wall0 time.Time
	cpu1  time.Duration // and when it ended
	wall1 time.Time
	rss1  int64 // resident memory then, bytes
}

func startChild() (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the chat server did not start: %q, %v", line, err)
	}
	return &child{cmd: cmd, stdin: stdin, addr: addr, pid: cmd.Process.Pid}, nil
}

// mark reads the child's CPU time at the start of the sending.
func (c *child) mark() {
	c.cpu0, _ = cpuTime(c.pid)
	c.wall0 = time.Now()
}

// sample reads the child's CPU time and memory at the end of the sending.
func (c *child) sample() {
	c.cpu1, _ = cpuTime(c.pid)
	c.wall1 = time.Now()
	c.rss1, _ = memory(c.pid, "VmRSS:")
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) report() string {
	hwm, _ := memory(c.pid, "VmHWM:")
	cpu := c.cpu1 - c.cpu0
	wall := c.wall1.Sub(c.wall0)
	return fmt.Sprintf("server: CPU %.1f s in %.1f s of sending = %.0f%% of one core (%d cores here); RSS %s at the end, peak %s\n",
		cpu.Seconds(), wall.Seconds(), 100*cpu.Seconds()/wall.Seconds(), numCPU(), mib(c.rss1), mib(hwm))
}

// selfCPU returns the user and system CPU time of this process.
func selfCPU() time.Duration {
	return time.Duration(procstat.CPUSeconds() * float64(time.Second))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
