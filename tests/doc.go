// Package tests holds Shockwave's cross-package suites: conformance,
// interop with other WebSocket libraries, benchmarks against them, soak and
// browser tests. It is a module of its own so that the peers it tests
// against never become dependencies of Shockwave's users.
package tests
