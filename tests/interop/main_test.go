// Package interop checks that the wire package talks RFC 6455 correctly with
// an independent implementation, github.com/lxzan/gws, in both directions:
// a gws client against a wire server (Accept) and a wire client (Dial)
// against a gws server. Everything runs on 127.0.0.1, every wait is bounded,
// and TestMain fails the package if a goroutine outlives the tests.
package interop

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
