//go:build !linux

package load

import "errors"

// Run needs epoll: the load generator runs on Linux only.
func Run(cfg Config) (*Result, error) {
	return nil, errors.New("load: the load generator needs Linux (epoll)")
}
