package wsraw

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// Conn is a blocking bench client connection over TCP. It is not safe for
// concurrent use, except that one goroutine may Write while another reads.
type Conn struct {
	NC   net.Conn
	buf  []byte
	r, w int
	p    Parser
	msg  []byte // a data message that did not arrive in one piece
	ctl  []byte // a control frame that did not
	frag bool   // a fragmented data message is in progress
	op   wire.Opcode
}

// Dial connects to ws://addr/path, with readBuf bytes of read buffer
// (64 KiB if 0).
func Dial(addr, path string, readBuf int) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if readBuf <= 0 {
		readBuf = 64 << 10
	}
	c := &Conn{NC: nc, buf: make([]byte, readBuf)}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(Request(addr, path)); err != nil {
		nc.Close()
		return nil, err
	}
	for {
		n, err := nc.Read(c.buf[c.w:])
		c.w += n
		if hn, herr := Response(c.buf[:c.w]); herr == nil {
			c.r = hn
			break
		} else if herr != ErrIncomplete {
			nc.Close()
			return nil, herr
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// Write writes b, typically frames built by AppendMessage.
func (c *Conn) Write(b []byte) error {
	_, err := c.NC.Write(b)
	return err
}

// Close closes the connection at once (without a closing handshake).
func (c *Conn) Close() error { return c.NC.Close() }

// ErrClosedByServer reports a close frame from the server; Code is its
// status.
type ErrClosedByServer struct{ Code wire.StatusCode }

func (e ErrClosedByServer) Error() string {
	return "wsraw: server closed the connection with " + e.Code.String()
}

// ReadMessage returns the next data message, reassembled, or the next
// control frame other than close (a close frame is returned as
// ErrClosedByServer). The payload is valid until the next call; a message
// that arrived in one read is returned in place, without a copy.
func (c *Conn) ReadMessage() (wire.Opcode, []byte, error) {
	for {
		for c.r < c.w {
			ch, n, ok, err := c.p.Next(c.buf[c.r:c.w])
			if err != nil {
				return 0, nil, err
			}
			c.r += n
			if !ok {
				break
			}
			if ch.Op.IsControl() {
				if ch.Start {
					c.ctl = c.ctl[:0]
				}
				if !ch.End || !ch.Start {
					c.ctl = append(c.ctl, ch.Data...)
				}
				if !ch.End {
					continue
				}
				p := ch.Data
				if !ch.Start {
					p = c.ctl
				}
				if ch.Op == wire.OpClose {
					code := wire.StatusNoStatusRcvd
					if len(p) >= 2 {
						code = wire.StatusCode(uint16(p[0])<<8 | uint16(p[1]))
					}
					return 0, nil, ErrClosedByServer{code}
				}
				return ch.Op, p, nil
			}
			if ch.Start && ch.Op != wire.OpContinuation {
				if c.frag {
					return 0, nil, errors.New("wsraw: new message inside a fragmented one")
				}
				c.op = ch.Op
				if ch.End && ch.Fin {
					return ch.Op, ch.Data, nil // the whole message, in place
				}
				c.frag, c.msg = true, c.msg[:0]
			} else if ch.Start && !c.frag {
				return 0, nil, errors.New("wsraw: continuation without a message")
			}
			c.msg = append(c.msg, ch.Data...)
			if ch.End && ch.Fin {
				c.frag = false
				return c.op, c.msg, nil
			}
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
		}
		n, err := c.NC.Read(c.buf[c.w:])
		c.w += n
		if n == 0 && err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
}
