// Package bench compares Shockwave with the Go WebSocket libraries people
// use today — github.com/lxzan/gws, github.com/gorilla/websocket,
// github.com/coder/websocket and, for the idle-memory row,
// github.com/lesismal/nbio — doing the same work.
//
// Layout:
//
//	internal/peers     one bench server per library, identical semantics
//	servers/<name>     each as a standalone program (-addr)
//	internal/wsraw     the lean client side: handshake, pre-masked frames, parser
//	internal/load      the epoll load generator (echo, stream, room, idle)
//	cmd/wsload         the load generator as a program
//	cmd/matrix, run.sh the whole matrix, pinned to cores, written to docs/benchmarks.md
//	                   (-cases deflate: permessage-deflate against gws and
//	                   uWebSockets, in docs/benchmarks-deflate.md)
//	cmd/cluster        rooms across nodes over a real nats-server process,
//	                   beside one node: CPU per delivery and latency (docs/scaling.md)
//	internal/chart     the SVG bar chart of the report; cmd/chart redraws it
//	*_test.go          micro-benchmarks (go test -bench . ./tests/bench) and
//	                   tests that every server passes every scenario
//
// See docs/benchmarks.md for the results and how to reproduce them.
package bench
