package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
)

// config is what a load check does.
type config struct {
	url      string // ws://host:port/ws
	users    int
	rooms    int
	duration time.Duration // of the sending
	interval time.Duration // between two messages of one user
	onPhase  func(phase string)
}

// result is what a load check measured.
type result struct {
	connect   time.Duration // to connect and join every user
	sent      int64         // messages sent
	expected  int64         // deliveries they should make: one per member of the room, sender included
	delivered int64         // chat.msg events read
	errors    int64         // error events and error replies
	latencies []time.Duration
}

// user is one simulated user: a connection in one room.
type user struct {
	id   int
	room string
	c    *codec.Client
	lat  []time.Duration // its listener's, until the client is closed
}

// run connects the users, has them send for cfg.duration, waits for the
// messages to arrive and disconnects.
func run(ctx context.Context, cfg config) (*result, error) {
	phase := func(p string) {
		if cfg.onPhase != nil {
			cfg.onPhase(p)
		}
	}
	var res result
	var delivered, errs atomic.Int64
	users := make([]*user, cfg.users)
	defer func() {
		for _, u := range users {
			if u != nil && u.c != nil {
				u.c.CloseNow()
			}
		}
	}()

	// Connect and join, 50 at a time.
	phase(fmt.Sprintf("connecting %d users to %d rooms", cfg.users, cfg.rooms))
	start := time.Now()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for i := range users {
		u := &user{id: i, room: fmt.Sprintf("room-%d", i%cfg.rooms)}
		users[i] = u
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := u.connect(ctx, cfg.url, &delivered, &errs); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("user %d: %w", u.id, err) })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	res.connect = time.Since(start)

	// Send: each user once an interval, the users spread over it.
	phase("sending")
	members := make(map[string]int64)
	for _, u := range users {
		members[u.room]++
	}
	var sent, expected atomic.Int64
	begin := time.Now()
	end := begin.Add(cfg.duration)
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := begin.Add(time.Duration(u.id) * cfg.interval / time.Duration(cfg.users))
			for next.Before(end) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				m := chatserver.SendRequest{Text: strconv.FormatInt(time.Now().UnixNano(), 10)}
				if u.c.Emit(ctx, chatserver.EventSend, m, codec.InRoom(u.room)) != nil {
					return
				}
				sent.Add(1)
				expected.Add(members[u.room])
				next = next.Add(cfg.interval)
			}
		}()
	}
	wg.Wait()

	// Wait for what is in flight, a few seconds at most.
	phase("draining")
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load() < expected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	for _, u := range users {
		u.c.CloseNow() // waits for the listeners
		res.latencies = append(res.latencies, u.lat...)
	}
	slices.Sort(res.latencies)
	res.sent, res.expected, res.delivered, res.errors = sent.Load(), expected.Load(), delivered.Load(), errs.Load()
	phase("done")
	return &res, ctx.Err()
}

// connect signs in, dials and joins the user's room. The user's listener
// times every chat.msg from the send time in its text.
func (u *user) connect(ctx context.Context, url string, delivered, errs *atomic.Int64) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cookie, err := login(dctx, url, fmt.Sprintf("user-%d", u.id))
	if err != nil {
		return err
	}
	c, err := codec.Dial(dctx, url, codec.WithClientCodecs(codec.JSON),
		codec.WithHeader(http.Header{"Cookie": {cookie.String()}}))
	if err != nil {
		return err
	}
	u.c = c
	codec.Listen(c, chatserver.EventMsg, func(m chatserver.Message, _ codec.Meta) {
		if t, err := strconv.ParseInt(m.Text, 10, 64); err == nil {
			u.lat = append(u.lat, time.Duration(time.Now().UnixNano()-t))
			delivered.Add(1)
		}
	})
	codec.Listen(c, codec.EventError, func(*codec.Error, codec.Meta) { errs.Add(1) })
	if _, err := c.Join(dctx, u.room); err != nil {
		return fmt.Errorf("join %s: %w", u.room, err)
	}
	return nil
}

// login signs in as name on the chat whose WebSocket is at wsURL, and
// returns the cookie to send with the upgrade.
func login(ctx context.Context, wsURL, name string) (*http.Cookie, error) {
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws"), "/ws")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(url.Values{"name": {name}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == chatserver.CookieName {
			return &http.Cookie{Name: c.Name, Value: c.Value}, nil
		}
	}
	return nil, fmt.Errorf("sign in as %s: %s, no cookie", name, resp.Status)
}

// report formats the result.
func (r *result) report(cfg config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "load: %d users in %d rooms (%d a room), one message every %v each, for %v\n",
		cfg.users, cfg.rooms, cfg.users/cfg.rooms, cfg.interval, cfg.duration)
	fmt.Fprintf(&b, "connect+join: %v for all users\n", r.connect.Round(time.Millisecond))
	fmt.Fprintf(&b, "messages: %d sent (%.0f/s), %d deliveries of %d expected (%.0f/s), %d errors\n",
		r.sent, float64(r.sent)/cfg.duration.Seconds(), r.delivered, r.expected, float64(r.delivered)/cfg.duration.Seconds(), r.errors)
	if n := len(r.latencies); n > 0 {
		q := func(f float64) time.Duration {
			return r.latencies[min(n-1, int(f*float64(n)))].Round(10 * time.Microsecond)
		}
		fmt.Fprintf(&b, "delivery latency: p50 %v, p90 %v, p99 %v, p99.9 %v, max %v\n", q(0.5), q(0.9), q(0.99), q(0.999), r.latencies[n-1].Round(10*time.Microsecond))
	}
	return b.String()
}

// cpuTime returns the user and system CPU time of process pid.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// memory returns a memory figure of process pid from /proc/pid/status,
// such as "VmRSS:", in bytes.
func memory(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func numCPU() int { return runtime.NumCPU() }
