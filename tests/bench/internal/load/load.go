// Package load is the bench's load generator: raw sockets on one epoll
// loop, pre-masked frames built once and written straight from shared
// buffers, server frames parsed in place with wire.ParseHeader, every
// echoed byte compared with what was sent. One goroutine drives thousands
// of connections with a few allocations in all, so that on its own core it
// outruns the server under test; the server's CPU time is read from
// /proc/<pid>/stat over the measured window and reported per message.
//
// Scenarios:
//
//	echo    each connection sends a message and waits for its echo, again
//	        and again (Frag > 0 sends it in fragments of Frag bytes)
//	stream  each connection sends without waiting, keeping at most Window
//	        messages not yet echoed; echoed bytes are counted
//	room    every connection is on /room; Publishers of them publish so that
//	        at most Window messages are in flight (not yet delivered to every
//	        member); deliveries and publish-to-delivery latency are measured
//	        from a timestamp in the payload
//	idle    Conns connections are opened and left idle; the server's RSS
//	        per connection is reported, then each connection echoes one
//	        message to prove it is alive
//
// With Deflate, every connection offers permessage-deflate without context
// takeover on either side (wsraw.DeflateOffer), sends its messages
// compressed, and checks what comes after inflating it (see zcache for
// how that stays cheap). Bytes on the wire, frame headers and all, are
// counted either way.
package load

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
)

// Config describes a run.
type Config struct {
	Addr       string        // host:port of the server, loopback
	Scenario   string        // echo, stream, room or idle
	Conns      int           // connections
	Size       int           // payload bytes per message
	Frag       int           // echo: fragment payload size (0: one frame)
	Text       bool          // text messages instead of binary
	Payload    string        // what messages carry: wsraw.PayloadPattern (""), PayloadJSON or PayloadText
	Deflate    bool          // offer permessage-deflate (wsraw.DeflateOffer), send messages compressed, inflate what comes
	Window     int           // stream: messages in flight per connection; room: in flight in all
	Publishers int           // room: how many members publish
	Warmup     time.Duration // before the measured window
	Duration   time.Duration // the measured window
	Settle     time.Duration // idle: how long to wait for the server's RSS to settle
	PID        int           // server process, for CPU and memory (0: not measured)
	MaxDialing int           // connections being opened at once
	Timeout    time.Duration // for opening all connections (and for idle's final echo)

	// Several servers sharing one room (tests/bench/cmd/cluster). These
	// change nothing when left zero.
	Addrs []string // room: connection i goes to Addrs[i%len(Addrs)] instead of Addr; results per address in Result.ByAddr
	Rate  float64  // room: messages a second in all, evenly spaced (Window still caps those in flight), then a drain of up to 10 s; 0: as fast as Window allows
	Watch []int    // more processes whose CPU time and write calls over the measured window are reported, in Result.CPUSec and Writes
}

// Result is what a run measured, over the measured window.
type Result struct {
	Scenario   string `json:"scenario"`
	Conns      int    `json:"conns"`
	Size       int    `json:"size"`
	Frag       int    `json:"frag,omitempty"`
	Window     int    `json:"window,omitempty"`
	Publishers int    `json:"publishers,omitempty"`
	Payload    string `json:"payload,omitempty"`
	Deflate    bool   `json:"deflate,omitempty"`

	Seconds    float64 `json:"seconds"`
	Messages   int64   `json:"messages"` // echoes (echo, stream) or deliveries (room)
	Published  int64   `json:"published,omitempty"`
	Bytes      int64   `json:"bytes"` // payload bytes echoed or delivered
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`

	// Bytes on the wire over the measured window, frame headers and all:
	// read from the server(s), and written to them. Per message: in per
	// echo or delivery, out per message sent (echoed or published).
	WireIn        int64   `json:"wire_in"`
	WireOut       int64   `json:"wire_out"`
	WireInPerMsg  float64 `json:"wire_in_per_msg"`
	WireOutPerMsg float64 `json:"wire_out_per_msg"`
	// Deflate: messages that came compressed, and how many of them were
	// inflated (the others had a body byte for byte the same as one
	// inflated before), over the whole run.
	Compressed int64 `json:"compressed,omitempty"`
	Inflated   int64 `json:"inflated,omitempty"`

	ServerCPUSec      float64 `json:"server_cpu_sec"`
	ServerCPUPct      float64 `json:"server_cpu_pct"`        // of one core
	ServerCPUPerMsgUs float64 `json:"server_cpu_per_msg_us"` // µs of server CPU per message
	GenCPUPct         float64 `json:"gen_cpu_pct"`           // the generator's own CPU, of one core

	P50Us float64 `json:"p50_us,omitempty"` // echo round trip, stream send-to-echo, room publish-to-delivery
	P99Us float64 `json:"p99_us,omitempty"`

	RSSBefore  int64   `json:"rss_before"`
	RSSAfter   int64   `json:"rss_after"`
	RSSPeak    int64   `json:"rss_peak"`
	RSSPerConn float64 `json:"rss_per_conn,omitempty"` // idle
	Verified   int64   `json:"verified,omitempty"`     // idle: connections that echoed after the measure

	ByAddr  []AddrResult `json:"by_addr,omitempty"` // room with Addrs
	CPUSec  []float64    `json:"cpu_sec,omitempty"` // of each of Config.Watch
	Writes  []int64      `json:"writes,omitempty"`  // of each of Config.Watch: write system calls (syscw in /proc/<pid>/io)
	Missing int64        `json:"missing,omitempty"` // room with Rate: deliveries still missing after the drain (published x members - delivered)

	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// AddrResult is what the members on one of Config.Addrs received over
// the measured window.
type AddrResult struct {
	Addr     string  `json:"addr"`
	Conns    int     `json:"conns"`
	Messages int64   `json:"messages"` // deliveries to its members
	P50Us    float64 `json:"p50_us"`   // publish-to-delivery
	P99Us    float64 `json:"p99_us"`
}

func (c *Config) defaults() error {
	switch c.Scenario {
	case "echo", "stream", "room", "idle":
	default:
		return fmt.Errorf("load: unknown scenario %q", c.Scenario)
	}
	if c.Conns <= 0 {
		return errors.New("load: Conns must be positive")
	}
	if c.Size <= 0 {
		c.Size = 32
	}
	switch c.Payload {
	case wsraw.PayloadPattern, wsraw.PayloadText:
	case wsraw.PayloadJSON:
		if c.Size < wsraw.JSONMin {
			return fmt.Errorf("load: JSON payloads are of %d bytes at least", wsraw.JSONMin)
		}
	default:
		return fmt.Errorf("load: unknown payload %q", c.Payload)
	}
	if c.Scenario == "room" && c.Size < 2*wsraw.StampLen {
		return fmt.Errorf("load: room messages carry a stamp of up to %d bytes: Size must be at least that", 2*wsraw.StampLen)
	}
	if c.Window <= 0 {
		c.Window = 64
	}
	if c.Publishers <= 0 {
		c.Publishers = 1
	}
	c.Publishers = min(c.Publishers, c.Conns)
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.MaxDialing <= 0 {
		c.MaxDialing = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if len(c.Addrs) > 0 && c.Scenario != "room" || c.Rate < 0 || c.Rate > 0 && c.Scenario != "room" {
		return errors.New("load: Addrs and Rate are for the room scenario")
	}
	return nil
}

// addrs returns the servers' addresses: Addrs, or Addr.
func (c *Config) addrs() []string {
	if len(c.Addrs) > 0 {
		return c.Addrs
	}
	return []string{c.Addr}
}

// procCPU returns the utime+stime of process pid, in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("load: odd /proc/pid/stat")
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("load: short /proc/pid/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on Linux on every architecture Go supports.
const clockTicks = 100

// procWrites returns the write system calls process pid has made (write,
// writev and the like, on any file).
func procWrites(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("load: no syscw in /proc/pid/io")
}

// procMem returns VmRSS and VmHWM of process pid, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}
