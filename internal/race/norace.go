//go:build !race

// Package race tells tests whether the race detector is on: it makes
// sync.Pool drop items at random, so that counts of allocations say
// nothing then.
package race

// Enabled reports whether the program was built with -race.
const Enabled = false
