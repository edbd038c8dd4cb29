//go:build race

package bench_test

// raceEnabled: nbio marks its functions //go:norace and races by design
// (its poller reads what its accept loop writes), so under the race
// detector the tests leave nbio out; the other servers are all checked.
const raceEnabled = true
