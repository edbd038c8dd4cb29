//go:build !unix

package procstat

// CPUSeconds returns 0: the process's CPU time is not read here.
func CPUSeconds() float64 { return 0 }
