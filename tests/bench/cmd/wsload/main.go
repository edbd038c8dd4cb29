// Command wsload is the bench's load generator: one epoll loop on raw
// sockets, pre-masked frames built once, every echoed byte checked, the
// server's CPU time read from /proc/<pid>/stat over the measured window.
// Run it pinned to a core of its own (taskset), the server on another.
//
//	wsload -addr 127.0.0.1:9001 -pid $SERVER_PID -scenario echo -conns 1000 -size 32
//	wsload ... -scenario echo -conns 200 -size 65536 -frag 4096
//	wsload ... -scenario stream -conns 128 -size 1024 -window 512
//	wsload ... -scenario room -conns 1000 -size 128 -publishers 10 -window 16
//	wsload ... -scenario idle -conns 10000
//	wsload ... -scenario room -conns 1000 -size 1024 -text -payload json -deflate
//
// It needs one file descriptor per connection: 10,000 idle connections
// need an fd limit above that (ulimit -n; Go raises the soft limit to the
// hard one at start).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:9001", "server address (IPv4 loopback)")
	flag.StringVar(&cfg.Scenario, "scenario", "echo", "echo, stream, room or idle")
	flag.IntVar(&cfg.Conns, "conns", 1000, "connections")
	flag.IntVar(&cfg.Size, "size", 32, "payload bytes per message")
	flag.IntVar(&cfg.Frag, "frag", 0, "echo: send each message in fragments of this many bytes")
	flag.BoolVar(&cfg.Text, "text", false, "send text messages (UTF-8) instead of binary")
	flag.StringVar(&cfg.Payload, "payload", "", "what messages carry: json, text (prose) or, by default, a short pattern")
	flag.BoolVar(&cfg.Deflate, "deflate", false, "offer permessage-deflate without context takeover; send compressed, inflate what comes")
	flag.IntVar(&cfg.Window, "window", 0, "stream: messages in flight per connection; room: messages in flight in all (default 64)")
	flag.IntVar(&cfg.Publishers, "publishers", 1, "room: members that publish")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "load before the measured window")
	flag.DurationVar(&cfg.Duration, "dur", 5*time.Second, "measured window")
	flag.DurationVar(&cfg.Settle, "settle", 3*time.Second, "idle: time for the server's memory to settle")
	flag.IntVar(&cfg.PID, "pid", 0, "server process id, for its CPU time and memory (0: not measured)")
	flag.IntVar(&cfg.MaxDialing, "dialing", 256, "connections being opened at once")
	asJSON := flag.Bool("json", false, "print the result as one JSON object")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("wsload: ")

	if err := fdLimit(cfg.Conns + 64); err != nil {
		log.Fatal(err)
	}
	res, err := load.Run(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
	} else {
		printResult(res)
	}
	if res.Errors > 0 {
		os.Exit(2)
	}
}

// fdLimit raises the soft limit on open files to at least n, if the hard
// limit allows.
func fdLimit(n int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= uint64(n) {
		return nil
	}
	if l.Max < uint64(n) {
		return fmt.Errorf("%d connections need %d file descriptors; the hard limit is %d", n-64, n, l.Max)
	}
	l.Cur = l.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

func printResult(r *load.Result) {
	fmt.Printf("scenario %s: %d conns x %d B", r.Scenario, r.Conns, r.Size)
	if r.Frag > 0 {
		fmt.Printf(" in %d B fragments", r.Frag)
	}
	if r.Window > 0 {
		fmt.Printf(", window %d", r.Window)
	}
	if r.Publishers > 0 {
		fmt.Printf(", %d publishers", r.Publishers)
	}
	fmt.Println()
	if r.Scenario == "idle" {
		fmt.Printf("  server RSS %.1f MiB -> %.1f MiB: %.2f KiB per connection; %d of %d echoed afterwards\n",
			mib(r.RSSBefore), mib(r.RSSAfter), r.RSSPerConn/1024, r.Verified, r.Conns)
	} else {
		fmt.Printf("  %.0f msgs/s  %.1f MB/s  over %.1f s (%d messages)\n", r.MsgsPerSec, r.MBPerSec, r.Seconds, r.Messages)
		fmt.Printf("  server CPU %.1f%% of a core, %.2f µs per message; generator CPU %.1f%%\n",
			r.ServerCPUPct, r.ServerCPUPerMsgUs, r.GenCPUPct)
		fmt.Printf("  on the wire: %.0f B in per message, %.0f B out per message sent", r.WireInPerMsg, r.WireOutPerMsg)
		if r.Deflate {
			fmt.Printf("; %d compressed messages received, %d inflated", r.Compressed, r.Inflated)
		}
		fmt.Println()
		fmt.Printf("  latency p50 %.0f µs  p99 %.0f µs\n", r.P50Us, r.P99Us)
		fmt.Printf("  server RSS %.1f MiB before, %.1f MiB peak\n", mib(r.RSSBefore), mib(r.RSSPeak))
	}
	if r.Errors > 0 {
		fmt.Printf("  %d ERRORS, first: %s\n", r.Errors, r.FirstError)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
