package load

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

type snapshot struct {
	at        time.Time
	msgs      int64
	bytes     int64
	pubs      int64
	wireIn    int64
	wireOut   int64
	serverCPU float64
	genCPU    float64
	addrMsgs  []int64
	cpus      []float64 // of Config.Watch
	writes    []int64   // of Config.Watch
}

func (e *engine) snap() (s snapshot, err error) {
	s.at = time.Now()
	s.msgs, s.bytes, s.pubs = e.msgs.Load(), e.bytes.Load(), e.pubs.Load()
	s.wireIn, s.wireOut = e.wireIn.Load(), e.wireOut.Load()
	if e.cfg.PID > 0 {
		s.serverCPU, err = procCPU(e.cfg.PID)
	}
	for i := range e.addrMsgs {
		s.addrMsgs = append(s.addrMsgs, e.addrMsgs[i].Load())
	}
	for _, pid := range e.cfg.Watch {
		cpu, cerr := procCPU(pid)
		w, werr := procWrites(pid)
		s.cpus, s.writes = append(s.cpus, cpu), append(s.writes, w)
		err = errors.Join(err, cerr, werr)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.genCPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return s, err
}

// drainFor bounds the drain after a room run at a fixed Rate.
const drainFor = 10 * time.Second

// Run runs one scenario and returns what it measured. Verification
// failures do not stop the run: they are counted in Result.Errors.
func Run(cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: cfg.Scenario, Conns: cfg.Conns, Size: cfg.Size, Frag: cfg.Frag, Payload: cfg.Payload, Deflate: cfg.Deflate}
	if cfg.Scenario == "stream" || cfg.Scenario == "room" {
		res.Window = cfg.Window
	}
	if cfg.Scenario == "room" {
		res.Publishers = cfg.Publishers
	}
	if cfg.PID > 0 {
		if res.RSSBefore, _, err = procMem(cfg.PID); err != nil {
			return nil, fmt.Errorf("load: reading the server's memory: %w", err)
		}
	}
	go e.run()
	stop := func() {
		e.phase.Store(phaseStop)
		<-e.exited
	}
	select {
	case err := <-e.ready:
		if err != nil {
			stop()
			return nil, err
		}
	case <-time.After(cfg.Timeout):
		stop()
		return nil, fmt.Errorf("load: %d connections not ready after %v", cfg.Conns, cfg.Timeout)
	}
	sample := func() {
		if cfg.PID > 0 {
			if rss, _, err := procMem(cfg.PID); err == nil {
				res.RSSAfter = rss
				res.RSSPeak = max(res.RSSPeak, rss)
			}
		}
	}
	if cfg.Scenario == "idle" {
		deadline := time.Now().Add(cfg.Settle)
		for time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			sample()
		}
		if cfg.PID > 0 {
			res.RSSPerConn = float64(res.RSSAfter-res.RSSBefore) / float64(cfg.Conns)
		}
		e.verify.Store(true)
		deadline = time.Now().Add(cfg.Timeout)
		for e.verified.Load() < int64(cfg.Conns) && e.errs.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		res.Verified = e.verified.Load()
		if res.Verified < int64(cfg.Conns) && e.errs.Load() == 0 {
			e.record(fmt.Errorf("only %d of %d idle connections echoed", res.Verified, cfg.Conns))
		}
	} else {
		time.Sleep(cfg.Warmup)
		s0, err := e.snap()
		if err != nil {
			stop()
			return nil, err
		}
		e.phase.Store(phaseMeasure)
		for end := s0.at.Add(cfg.Duration); time.Now().Before(end); {
			time.Sleep(min(100*time.Millisecond, time.Until(end)))
			sample()
		}
		s1, err := e.snap()
		if err != nil {
			stop()
			return nil, err
		}
		if cfg.Rate > 0 {
			// What is in flight arrives, so that Missing says what never
			// will.
			e.phase.Store(phaseDrain)
			for end := time.Now().Add(drainFor); e.done.Load() < e.pubs.Load() && e.errs.Load() == 0 && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
		}
		stop()
		if cfg.Rate > 0 {
			res.Missing = e.pubs.Load()*int64(cfg.Conns) - e.msgs.Load()
		}
		for i := range s1.cpus {
			res.CPUSec = append(res.CPUSec, s1.cpus[i]-s0.cpus[i])
			res.Writes = append(res.Writes, s1.writes[i]-s0.writes[i])
		}
		if len(cfg.Addrs) > 0 {
			for i, addr := range cfg.Addrs {
				h := &e.addrHist[i]
				res.ByAddr = append(res.ByAddr, AddrResult{
					Addr:     addr,
					Conns:    (cfg.Conns + len(cfg.Addrs) - 1 - i) / len(cfg.Addrs),
					Messages: s1.addrMsgs[i] - s0.addrMsgs[i],
					P50Us:    float64(h.quantile(0.50)) / 1e3,
					P99Us:    float64(h.quantile(0.99)) / 1e3,
				})
			}
		}
		res.Seconds = s1.at.Sub(s0.at).Seconds()
		res.Messages = s1.msgs - s0.msgs
		res.Published = s1.pubs - s0.pubs
		res.Bytes = s1.bytes - s0.bytes
		res.MsgsPerSec = float64(res.Messages) / res.Seconds
		res.MBPerSec = float64(res.Bytes) / res.Seconds / 1e6
		res.WireIn, res.WireOut = s1.wireIn-s0.wireIn, s1.wireOut-s0.wireOut
		sent := res.Messages
		if cfg.Scenario == "room" {
			sent = res.Published
		}
		if res.Messages > 0 {
			res.WireInPerMsg = float64(res.WireIn) / float64(res.Messages)
		}
		if sent > 0 {
			res.WireOutPerMsg = float64(res.WireOut) / float64(sent)
		}
		res.ServerCPUSec = s1.serverCPU - s0.serverCPU
		res.ServerCPUPct = 100 * res.ServerCPUSec / res.Seconds
		if res.Messages > 0 {
			res.ServerCPUPerMsgUs = 1e6 * res.ServerCPUSec / float64(res.Messages)
		}
		res.GenCPUPct = 100 * (s1.genCPU - s0.genCPU) / res.Seconds
		res.P50Us = float64(e.hist.quantile(0.50)) / 1e3
		res.P99Us = float64(e.hist.quantile(0.99)) / 1e3
	}
	stop()
	res.Compressed, res.Inflated = e.z.stats.compressed, e.z.stats.inflated // the loop has exited
	if cfg.PID > 0 {
		if _, hwm, err := procMem(cfg.PID); err == nil {
			res.RSSPeak = max(res.RSSPeak, hwm)
		}
	}
	res.Errors = e.errs.Load()
	e.errMu.Lock()
	if e.firstErr != nil {
		res.FirstError = e.firstErr.Error()
	}
	e.errMu.Unlock()
	if res.Errors > 0 && res.Messages == 0 && res.Verified == 0 {
		return res, errors.New("load: " + res.FirstError)
	}
	return res, nil
}
