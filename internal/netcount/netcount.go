// Package netcount counts the bytes connections read, for tests that
// check what came on the wire (compressed or not).
package netcount

import (
	"context"
	"net"
	"sync/atomic"
)

// Conn is a net.Conn that adds to N the bytes each Read returns.
type Conn struct {
	net.Conn
	N *atomic.Int64
}

func (c Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.N.Add(int64(n))
	return n, err
}

// Dialer returns a dial function, as wire.DialOptions.NetDialContext
// takes, whose connections count the bytes they read into n.
func Dialer(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Conn{nc, n}, nil
	}
}
