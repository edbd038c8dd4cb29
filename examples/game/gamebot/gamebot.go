// Package gamebot drives bots against the game server of examples/game and
// measures what players would feel: the time from an input to the first
// snapshot that applied it, the regularity of the snapshots (tick jitter),
// and the snapshots missed. The command examples/game/bot runs it; the
// game's tests use it too.
//
// Every bot joins a match, then sends inputs — random held keys — at a
// steady rate and reads every message. The figures are taken by each bot
// on its own and merged at the end.
package gamebot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/examples/internal/procstat"
	"github.com/shockwave-go/shockwave/wire"
)

// Config is a load run. Zero fields take the defaults.
type Config struct {
	// URL is the game's WebSocket, such as ws://127.0.0.1:8081/ws.
	URL string
	// Bots is how many bots play. Default 10.
	Bots int
	// Duration is how long they play, from the last bot's connection.
	// Default 10 s.
	Duration time.Duration
	// InputRate is how many inputs a second each bot sends. Default 10.
	InputRate float64
	// Ramp is how long the bots take to connect, evenly spread, so that
	// the server is not hit by all the handshakes at once. Default 1 ms a
	// bot, at most 5 s.
	Ramp time.Duration
	// TickRate is the server's, to measure the jitter against; the bots
	// read it from their welcome, so it rarely needs setting.
	TickRate int
}

func (c Config) withDefaults() Config {
	if c.Bots <= 0 {
		c.Bots = 10
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.InputRate <= 0 {
		c.InputRate = 10
	}
	if c.Ramp <= 0 {
		c.Ramp = min(5*time.Second, time.Duration(c.Bots)*time.Millisecond)
	}
	return c
}

// Bot is what one bot saw.
type Bot struct {
	ID, Match     uint32
	Welcome       uint64 // the tick of the state in the welcome
	First, Last   uint64 // ticks of the first and last snapshots
	Snapshots     int
	Missed        uint64 // ticks skipped between consecutive snapshots, the welcome's included
	OutOfOrder    int    // snapshots not newer than the one before
	Inputs, Acked int    // inputs sent, and seen applied
	Err           error  // why the bot stopped early, or nil
}

// Report is the outcome of a run.
type Report struct {
	Bots      []Bot
	Connected int // bots that were welcomed
	Duration  time.Duration

	Snapshots, Missed uint64
	OutOfOrder        int
	// Latency is the input-to-snapshot time; Jitter is how far the time
	// between consecutive snapshots strays from the tick period.
	Latency, Jitter Percentiles

	// Server is the server's /stats at the start and the end, when it
	// serves them.
	ServerBefore, ServerAfter *ServerStats
	// CPUSeconds is the CPU time the bots' process used in the same
	// window: on one machine, the load generator competes with the
	// server for its cores.
	CPUSeconds float64
}

// Percentiles summarise samples.
type Percentiles struct {
	N             int
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Percentiles{N: len(d), P50: at(0.50), P99: at(0.99), Max: d[len(d)-1]}
}

// ServerStats are the fields of the game's GET /stats the report uses.
type ServerStats struct {
	Matches    int     `json:"matches"`
	Players    int     `json:"players"`
	Deliveries uint64  `json:"deliveries"`
	Inputs     uint64  `json:"inputs"`
	CPUSeconds float64 `json:"cpu_seconds"`
	SysBytes   uint64  `json:"sys_bytes"`
	HeapBytes  uint64  `json:"heap_bytes"`
	TickMeanUs float64 `json:"tick_mean_us"`
	TickMaxUs  float64 `json:"tick_max_us"`
}

// Run plays cfg's bots until the duration has passed or ctx is done, and
// reports. It fails only if no bot could join.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	rep := &Report{Bots: make([]Bot, cfg.Bots)}
	statsURL := statsURL(cfg.URL)
	rep.ServerBefore = fetchStats(ctx, statsURL)
	cpu := procstat.CPUSeconds()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards the samples
		latency []time.Duration
		jitter  []time.Duration
	)
	start := time.Now()
	stop := start.Add(cfg.Ramp + cfg.Duration)
	for i := range rep.Bots {
		at := start.Add(cfg.Ramp * time.Duration(i) / time.Duration(cfg.Bots))
		wg.Go(func() {
			b := bot{cfg: &cfg, out: &rep.Bots[i], n: i, stop: stop}
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return
			}
			b.play(ctx)
			mu.Lock()
			latency = append(latency, b.latency...)
			jitter = append(jitter, b.jitter...)
			mu.Unlock()
		})
	}
	// The server's figures at the end are read while the bots still play.
	var after sync.WaitGroup
	after.Go(func() {
		select {
		case <-time.After(time.Until(stop.Add(-min(time.Second, cfg.Duration/10)))):
		case <-ctx.Done():
		}
		rep.ServerAfter = fetchStats(context.Background(), statsURL)
		rep.Duration = time.Since(start)
		rep.CPUSeconds = procstat.CPUSeconds() - cpu
	})
	wg.Wait()
	after.Wait()
	for _, b := range rep.Bots {
		if b.Snapshots > 0 || b.ID != 0 {
			rep.Connected++
		}
		rep.Snapshots += uint64(b.Snapshots)
		rep.Missed += b.Missed
		rep.OutOfOrder += b.OutOfOrder
	}
	rep.Latency, rep.Jitter = percentiles(latency), percentiles(jitter)
	if rep.Connected == 0 {
		return rep, fmt.Errorf("gamebot: no bot joined: %w", firstErr(rep.Bots))
	}
	return rep, nil
}

func firstErr(bots []Bot) error {
	for _, b := range bots {
		if b.Err != nil {
			return b.Err
		}
	}
	return errors.New("no error reported")
}

// bot is one player.
type bot struct {
	cfg  *Config
	out  *Bot
	n    int
	stop time.Time
	c    *codec.Client

	mu   sync.Mutex // guards sent
	sent []sentInput

	// The listeners' (the client's reader), until the client is done.
	latency, jitter []time.Duration
	period          time.Duration // between ticks
	last            uint64        // the tick of the last snapshot or the welcome
	lastAt          time.Time
	failed          error // why a listener stopped the bot
}

// sentInput is an input waiting to be acknowledged by a snapshot.
type sentInput struct {
	seq uint32
	at  time.Time
}

// welcome and snap are the parts of the server's events the bot reads:
// who and where it is, and each tick with every player's ack. The decoder
// skips the rest, so a bot costs little and a thousand of them do not
// starve the server they share a machine with.
type welcome struct {
	ID       uint32 `msgpack:"id"`
	Match    uint32 `msgpack:"m"`
	TickRate int    `msgpack:"tr"`
	State    *struct {
		Tick uint64 `msgpack:"t"`
	} `msgpack:"s"`
}

type snap struct {
	Tick    uint64      `msgpack:"t"`
	Players []playerAck `msgpack:"p"`
}

type playerAck struct {
	ID  uint32 `msgpack:"id"`
	Ack uint32 `msgpack:"a"`
}

func (b *bot) play(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := codec.Dial(dctx, b.cfg.URL, codec.WithClientCodecs(codec.MsgPack),
		codec.WithDialOptions(wire.DialOptions{Options: wire.Options{CloseTimeout: time.Second}}))
	cancel()
	if err != nil {
		b.out.Err = err
		return
	}
	b.c = c
	if b.cfg.TickRate > 0 {
		b.period = time.Second / time.Duration(b.cfg.TickRate)
	}
	codec.Listen(c, "welcome", b.welcome)
	codec.Listen(c, "snap", b.snap)
	codec.Listen(c, codec.EventError, func(e *codec.Error, _ codec.Meta) { b.fail(fmt.Errorf("error event: %w", e)) })
	if err := c.Emit(ctx, "join", map[string]string{"n": fmt.Sprintf("bot-%d", b.n)}); err != nil {
		c.CloseNow()
		b.out.Err = err
		return
	}
	b.write(ctx)
	c.Close() // waits for the listeners to be done
	switch {
	case b.failed != nil:
		b.out.Err = b.failed
	case time.Now().Before(b.stop) && ctx.Err() == nil:
		b.out.Err = c.Err() // the connection ended early
	}
}

// fail stops the bot from a listener, for err.
func (b *bot) fail(err error) {
	if b.failed == nil {
		b.failed = err
	}
	b.c.Close()
}

func (b *bot) welcome(w welcome, _ codec.Meta) {
	if w.State == nil {
		b.fail(errors.New("welcome without state"))
		return
	}
	b.out.ID, b.out.Match = w.ID, w.Match
	b.out.Welcome, b.last = w.State.Tick, w.State.Tick
	if b.period == 0 && w.TickRate > 0 {
		b.period = time.Second / time.Duration(w.TickRate)
	}
}

// snap measures a snapshot.
func (b *bot) snap(s snap, _ codec.Meta) {
	now := time.Now()
	if b.out.ID == 0 {
		b.fail(errors.New("snapshot before the welcome"))
		return
	}
	switch {
	case s.Tick <= b.last:
		b.out.OutOfOrder++
		return
	case s.Tick == b.last+1:
		if !b.lastAt.IsZero() && b.period > 0 {
			b.jitter = append(b.jitter, (now.Sub(b.lastAt) - b.period).Abs())
		}
	default:
		b.out.Missed += s.Tick - b.last - 1
	}
	if b.out.Snapshots == 0 {
		b.out.First = s.Tick
	}
	b.out.Snapshots++
	b.out.Last, b.last, b.lastAt = s.Tick, s.Tick, now
	for _, pl := range s.Players {
		if pl.ID == b.out.ID {
			b.acked(pl.Ack, now)
			break
		}
	}
}

// acked records the latency of the inputs up to seq.
func (b *bot) acked(seq uint32, now time.Time) {
	b.mu.Lock()
	i := 0
	for ; i < len(b.sent) && b.sent[i].seq <= seq; i++ {
		b.latency = append(b.latency, now.Sub(b.sent[i].at))
	}
	b.sent = append(b.sent[:0], b.sent[i:]...)
	b.out.Acked += i
	b.mu.Unlock()
}

// write sends inputs at the configured rate, with a random phase, until
// the run's end, ctx's, or the connection's.
func (b *bot) write(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(b.n), 42))
	every := time.Duration(float64(time.Second) / b.cfg.InputRate)
	t := time.NewTimer(time.Duration(rng.Int64N(int64(every))))
	defer t.Stop()
	end := time.NewTimer(time.Until(b.stop))
	defer end.Stop()
	for seq := uint32(1); ; seq++ {
		select {
		case <-t.C:
		case <-end.C:
			return
		case <-b.c.Done():
			return
		case <-ctx.Done():
			return
		}
		t.Reset(every)
		in := sim.Input{Seq: seq, Keys: sim.Keys(rng.IntN(16))}
		b.mu.Lock()
		b.sent = append(b.sent, sentInput{seq, time.Now()})
		b.mu.Unlock()
		if b.c.Emit(ctx, "input", in) != nil {
			return // Err says why
		}
		b.out.Inputs++
	}
}

// statsURL is the /stats beside a ws:// URL, or "".
func statsURL(ws string) string {
	u, err := url.Parse(ws)
	if err != nil {
		return ""
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return ""
	}
	u.Path, u.RawQuery = "/stats", ""
	return u.String()
}

// fetchStats reads the server's /stats, or returns nil.
func fetchStats(ctx context.Context, u string) *ServerStats {
	if u == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st ServerStats
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}
