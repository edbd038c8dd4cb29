// Package cluster runs Shockwave nodes that share their rooms over NATS
// (runtime/natsbroker): a NATS server in-process on 127.0.0.1, three
// nodes each with its own HTTP server, and codec clients spread over
// them. It checks that every member gets every message of a room once, in
// order per publisher and in its codec; that a node subscribes to a room
// only while it has members there; that trace context crosses nodes;
// what a NATS restart loses and how it is counted; that the other nodes
// go on when one stops; and that room names of any bytes cross. Every wait
// is bounded, and TestMain fails the package if a goroutine outlives the
// tests.
package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
