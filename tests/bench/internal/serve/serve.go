// Package serve is the main function of the standalone bench servers.
package serve

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
)

// Main serves lib's bench server on -addr until SIGTERM or SIGINT. Once it
// listens it prints one line to stdout:
//
//	ready lib=<lib> pid=<pid> addr=<host:port> gomaxprocs=<n>
//
// With $SW_MEMSTATS set to a path prefix, each SIGUSR1 (as is) or SIGUSR2
// (after a GC) writes a memory snapshot of the server (see memSnapshots):
// nothing changes without it.
func Main(lib string) {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on (loopback)")
	mailbox := flag.Int("room-mailbox", 0, "shockwave only: mailbox size in frames of /room members (0: the default)")
	deflate := flag.Bool("deflate", false, "accept permessage-deflate without context takeover and compress what is sent (shockwave and gws)")
	serveLn := flag.Bool("serve", false, "shockwave only: serve the listener with /echo's Runtime.Serve, for every path (the idle case)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole life of the server to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile at exit to this file")
	flag.Parse()
	memPrefix := os.Getenv("SW_MEMSTATS")
	if rate, err := strconv.Atoi(os.Getenv("SW_MEMPROFILERATE")); err == nil && memPrefix != "" {
		runtime.MemProfileRate = rate // before the server allocates
	}
	log.SetPrefix(lib + ": ")
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := peers.Start(lib, *addr, peers.Options{RoomMailbox: *mailbox, Deflate: *deflate, Serve: *serveLn})
	if err != nil {
		log.Fatal(err)
	}
	if memPrefix != "" {
		go memSnapshots(ctx, memPrefix)
	}
	fmt.Printf("ready lib=%s pid=%d addr=%s gomaxprocs=%d\n", lib, os.Getpid(), r.Addr, runtime.GOMAXPROCS(0))
	<-ctx.Done()
	r.Stop()
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			log.Fatal(err)
		}
	}
}
