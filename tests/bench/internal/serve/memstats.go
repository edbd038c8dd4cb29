package serve

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
)

// memSnapshots writes a memory snapshot at each SIGUSR1 or SIGUSR2 until
// ctx ends: the idle-memory diagnostic ($SW_MEMSTATS, see Main). Snapshot
// n goes to prefix.n.txt and prefix.n.heap.pb.gz:
//
//	SW_MEMSTATS=/tmp/sw go run ./tests/bench/servers/shockwave &
//	# open connections (tests/bench/cmd/wsload -scenario idle -settle 30s ...), then
//	kill -USR1 $pid; go tool pprof -sample_index=inuse_space -top /tmp/sw.1.heap.pb.gz
//
// The text has /proc/self/smaps_rollup and status (read first, before the
// snapshot allocates), the runtime/metrics memory classes, which add up to
// what the Go runtime has mapped, the heap goal, and the goroutine count.
// SIGUSR1 triggers no GC, so that the snapshot sees the memory as the load
// left it; its heap profile is the heap as of the last GC, which may have
// run amid the handshakes. SIGUSR2 runs a GC first: its profile is what is
// live. The profile samples an allocation every 512 KiB, Go's default:
// $SW_MEMPROFILERATE=1 records every one, so that small objects are
// counted exactly, at a cost in memory (a record per live object, in
// /memory/classes/metadata/other) that makes the RSS of that run no
// longer the server's own.
func memSnapshots(ctx context.Context, prefix string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sig)
	for n := 1; ; n++ {
		var s os.Signal
		select {
		case <-ctx.Done():
			return
		case s = <-sig:
		}
		if s == syscall.SIGUSR2 {
			runtime.GC()
		}
		if err := memSnapshot(fmt.Sprintf("%s.%d", prefix, n)); err != nil {
			log.Printf("memory snapshot: %v", err)
		}
	}
}

func memSnapshot(path string) error {
	var b strings.Builder
	for _, f := range []string{"/proc/self/smaps_rollup", "/proc/self/status"} {
		p, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "# %s\n%s\n", f, p)
	}
	names := []string{"/gc/heap/goal:bytes", "/gc/gogc:percent", "/gc/gomemlimit:bytes", "/gc/cycles/total:gc-cycles",
		"/gc/heap/live:bytes", "/sched/goroutines:goroutines"}
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") {
			names = append(names, d.Name)
		}
	}
	samples := make([]metrics.Sample, len(names))
	for i, name := range names {
		samples[i].Name = name
	}
	metrics.Read(samples)
	b.WriteString("# runtime/metrics\n")
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(&b, "%-50s %d\n", s.Name, s.Value.Uint64())
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(&b, "# runtime.MemStats\nSys %d\nHeapSys %d\nHeapInuse %d\nHeapIdle %d\nHeapReleased %d\nHeapAlloc %d\nHeapObjects %d\nTotalAlloc %d\nMallocs %d\n"+
		"StackInuse %d\nStackSys %d\nMSpanInuse %d\nMSpanSys %d\nMCacheSys %d\nBuckHashSys %d\nGCSys %d\nOtherSys %d\nNextGC %d\nNumGC %d\n",
		ms.Sys, ms.HeapSys, ms.HeapInuse, ms.HeapIdle, ms.HeapReleased, ms.HeapAlloc, ms.HeapObjects, ms.TotalAlloc, ms.Mallocs,
		ms.StackInuse, ms.StackSys, ms.MSpanInuse, ms.MSpanSys, ms.MCacheSys, ms.BuckHashSys, ms.GCSys, ms.OtherSys, ms.NextGC, ms.NumGC)
	if err := os.WriteFile(path+".txt", []byte(b.String()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(path + ".heap.pb.gz")
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
