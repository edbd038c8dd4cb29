package gameserver

import (
	"encoding/json"
	"net/http"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/examples/internal/procstat"
)

// counters are the server's running totals.
type counters struct {
	inputs, inputsDropped atomic.Uint64
	deliveries            atomic.Uint64 // snapshots accepted by members' mailboxes
	ticks                 atomic.Uint64
	tickNanos, tickMax    atomic.Int64 // time spent in ticks, and the longest
}

func (c *counters) tick(d time.Duration) {
	c.ticks.Add(1)
	c.tickNanos.Add(int64(d))
	for {
		m := c.tickMax.Load()
		if int64(d) <= m || c.tickMax.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Stats is what GET /stats answers, in JSON: the game's totals since it
// started and the process's resources, for load tests such as the bot's
// to compute the server's cost.
type Stats struct {
	Matches       int     `json:"matches"`
	Players       int     `json:"players"`
	Sessions      int     `json:"sessions"`
	Ticks         uint64  `json:"ticks"`
	TickMeanUs    float64 `json:"tick_mean_us"` // work per tick, all matches
	TickMaxUs     float64 `json:"tick_max_us"`
	Inputs        uint64  `json:"inputs"`
	InputsDropped uint64  `json:"inputs_dropped"`
	Deliveries    uint64  `json:"deliveries"`  // snapshots handed to members
	CPUSeconds    float64 `json:"cpu_seconds"` // user+system of the process, 0 where unknown
	HeapBytes     uint64  `json:"heap_bytes"`  // live heap
	SysBytes      uint64  `json:"sys_bytes"`   // memory from the OS
	Goroutines    int     `json:"goroutines"`
	UptimeSeconds float64 `json:"uptime_seconds"` // since New
}

// Stats returns the figures GET /stats serves.
func (srv *Server) Stats() Stats {
	st := Stats{
		Sessions:      srv.rt.Len(),
		Ticks:         srv.stats.ticks.Load(),
		TickMaxUs:     float64(srv.stats.tickMax.Load()) / 1e3,
		Inputs:        srv.stats.inputs.Load(),
		InputsDropped: srv.stats.inputsDropped.Load(),
		Deliveries:    srv.stats.deliveries.Load(),
		CPUSeconds:    procstat.CPUSeconds(),
		Goroutines:    goruntime.NumGoroutine(),
		UptimeSeconds: time.Since(srv.started).Seconds(),
	}
	if st.Ticks > 0 {
		st.TickMeanUs = float64(srv.stats.tickNanos.Load()) / float64(st.Ticks) / 1e3
	}
	srv.mu.Lock()
	st.Matches = len(srv.matches)
	for _, m := range srv.matches {
		st.Players += m.seats
	}
	srv.mu.Unlock()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	st.HeapBytes, st.SysBytes = ms.HeapAlloc, ms.Sys
	return st
}

func (srv *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(srv.Stats())
}
