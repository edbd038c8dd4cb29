//go:build !unix

package runtime_test

import "time"

// cpuTime returns 0 where the process's CPU time is not at hand: the
// benchmarks then report no CPU per delivery.
func cpuTime() time.Duration { return 0 }
