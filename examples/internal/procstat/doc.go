// Package procstat reads what the examples' load reports need to know of
// their own process.
package procstat
