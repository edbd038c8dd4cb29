//go:build unix

package procstat

import "syscall"

// CPUSeconds returns the user and system CPU time of the process so far,
// in seconds.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
