package gameserver

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/examples/internal/ratelimit"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Config is the game's settings. Zero fields take the defaults.
type Config struct {
	// MatchSize is the most players in a match. Default 16.
	MatchSize int
	// TickRate is how many times a second a match steps and sends its
	// snapshot. Default 30.
	TickRate int
	// InputRate is how many inputs a second one player may send, and
	// InputBurst how many at once; more are dropped. A player whose
	// dropped inputs keep coming at more than InputRate a second (that
	// is, who sends more than twice the rate) is closed with 1008.
	// Defaults 60 and 30.
	InputRate  float64
	InputBurst int
	// World is the settings of every match's world; its Seed, when not
	// zero, makes the matches reproducible (each match adds its id).
	World sim.Config
	// Runtime holds more options for the runtime (heartbeat, origins,
	// telemetry providers...), applied after the game's own.
	Runtime []runtime.Option
	// Logger receives errors no client sees. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MatchSize <= 0 {
		c.MatchSize = 16
	}
	if c.TickRate <= 0 {
		c.TickRate = 30
	}
	if c.InputRate <= 0 {
		c.InputRate = 60
	}
	if c.InputBurst <= 0 {
		c.InputBurst = 30
	}
	c.World.TickRate = c.TickRate
	c.World = c.World.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is the game. It is an http.Handler serving the page at "/", the
// WebSocket at "/ws" and figures at "/stats"; mount it at the root of a
// server.
type Server struct {
	cfg    Config
	rt     *runtime.Runtime
	r      *codec.Router
	mux    *http.ServeMux
	period time.Duration

	mu        sync.Mutex // guards matches and lastMatch, and match.seats
	matches   map[uint32]*match
	lastMatch uint32
	closed    bool
	loops     sync.WaitGroup // the matches' goroutines

	lastPlayer atomic.Uint32
	stats      counters
	started    time.Time
}

// New makes the game server.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	srv := &Server{
		cfg:     cfg,
		r:       codec.NewRouter(codec.MsgPack),
		matches: make(map[uint32]*match),
		period:  time.Second / time.Duration(cfg.TickRate),
		started: time.Now(),
	}
	codec.On(srv.r, "join", srv.join)
	codec.On(srv.r, "input", srv.input)
	opts := append([]runtime.Option{
		runtime.WithSubprotocols(srv.r.Subprotocols()...),
		runtime.WithMaxMessageSize(4 << 10),
		// A game needs the newest state, not every one: a member whose
		// mailbox is full loses its oldest snapshot. 128 frames is four
		// seconds of snapshots.
		runtime.WithMailbox(128, 1<<20, session.PolicyDropOldest),
	}, cfg.Runtime...)
	rt, err := runtime.New(handler{srv}, opts...)
	if err != nil {
		return nil, err
	}
	srv.rt = rt
	srv.mux = srv.routes()
	return srv, nil
}

// ServeHTTP serves the page, the WebSocket and the figures.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.mux.ServeHTTP(w, r) }

// Shutdown stops the matches, then closes every session with 1001 (going
// away) and waits for them to end, or for ctx.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.closed = true
	for _, m := range srv.matches {
		close(m.stop)
	}
	clear(srv.matches)
	srv.mu.Unlock()
	srv.loops.Wait() // a tick is short
	return srv.rt.Shutdown(ctx)
}

// MatchInfo is a match as its latest tick left it.
type MatchInfo struct {
	ID       uint32
	Snapshot sim.Snapshot // players sorted by id
}

// Matches returns the running matches, by id.
func (srv *Server) Matches() []MatchInfo {
	srv.mu.Lock()
	ms := make([]*match, 0, len(srv.matches))
	for _, m := range srv.matches {
		ms = append(ms, m)
	}
	srv.mu.Unlock()
	slices.SortFunc(ms, func(a, b *match) int { return int(a.id) - int(b.id) })
	infos := make([]MatchInfo, 0, len(ms))
	for _, m := range ms {
		info := MatchInfo{ID: m.id}
		if s := m.last.Load(); s != nil {
			info.Snapshot = *s
		}
		infos = append(infos, info)
	}
	return infos
}

// handler adds the game's OnClose to the Router.
type handler struct{ srv *Server }

func (h handler) OnOpen(s *session.Session) error { return nil }

func (h handler) OnMessage(s *session.Session, m session.Message) error {
	return h.srv.r.OnMessage(s, m)
}

// TraceParent implements runtime.TraceParenter through the Router: a
// message's span continues the trace the page put in its envelope.
func (h handler) TraceParent(s *session.Session, m session.Message) string {
	return h.srv.r.TraceParent(s, m)
}

func (h handler) OnClose(s *session.Session, err error) {
	if p := session.State[player](s); p.m != nil {
		h.srv.leave(p.m, p.id, s)
	}
}

// player is a session's own state, used by its callbacks only.
type player struct {
	id    uint32
	m     *match // nil before join
	limit ratelimit.Bucket
	flood ratelimit.Bucket // of dropped inputs
}

// joinMsg is the payload of "join".
type joinMsg struct {
	Name string `msgpack:"n"`
}

// join seats the session's player in a match with room, or a new one.
func (srv *Server) join(s *session.Session, j joinMsg) error {
	p := session.State[player](s)
	if p.m != nil {
		return &codec.Error{Code: "joined", Message: "already in a match"}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return wire.CloseError{Code: wire.StatusGoingAway, Reason: "shutting down"}
	}
	var m *match
	for _, c := range srv.matches {
		if c.seats < srv.cfg.MatchSize && (m == nil || c.id < m.id) {
			m = c // the oldest with a seat: matches fill up
		}
	}
	if m == nil {
		srv.lastMatch++
		m = newMatch(srv, srv.lastMatch)
		srv.matches[m.id] = m
		srv.loops.Go(m.run)
	}
	m.seats++
	p.id, p.m = srv.lastPlayer.Add(1), m
	m.push(op{kind: opJoin, id: p.id, name: j.Name, s: s})
	return nil
}

// input hands an input to the player's match, within the rate limit.
func (srv *Server) input(s *session.Session, in sim.Input) error {
	p := session.State[player](s)
	if p.m == nil {
		return &codec.Error{Code: "not_joined", Message: "send join first"}
	}
	now := time.Now()
	if !p.limit.Take(now, srv.cfg.InputRate, float64(srv.cfg.InputBurst)) {
		srv.stats.inputsDropped.Add(1)
		if !p.flood.Take(now, srv.cfg.InputRate, 2*srv.cfg.InputRate) {
			return wire.CloseError{Code: wire.StatusPolicyViolation, Reason: "input flood"}
		}
		return nil
	}
	srv.stats.inputs.Add(1)
	p.m.push(op{kind: opInput, id: p.id, in: in})
	return nil
}

// leave gives up the player's seat and removes it from its match.
func (srv *Server) leave(m *match, id uint32, s *session.Session) {
	srv.mu.Lock()
	m.seats--
	srv.mu.Unlock()
	m.push(op{kind: opLeave, id: id, s: s})
}

// retire removes m if nobody holds a seat in it, and reports whether it
// did. A match retires when it has no player left.
func (srv *Server) retire(m *match) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if m.seats > 0 {
		return false
	}
	if srv.matches[m.id] == m {
		delete(srv.matches, m.id)
	}
	return true
}
