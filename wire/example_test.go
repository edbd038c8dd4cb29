package wire_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// exampleEcho is an HTTP handler that upgrades the request and echoes every
// message back until the client closes.
func exampleEcho(w http.ResponseWriter, r *http.Request) {
	c, err := wire.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the request with an HTTP error
	}
	defer c.CloseNow()
	for {
		op, p, err := c.ReadMessage()
		if err != nil {
			return // a CloseError when the client closed normally
		}
		if err := c.WriteMessage(op, p); err != nil {
			return
		}
	}
}

// An echo server: mount a handler that calls Accept, then read and write
// messages on the connection it returns.
func ExampleAccept() {
	srv := httptest.NewServer(http.HandlerFunc(exampleEcho))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.WriteMessage(wire.OpText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	_, p, err := c.ReadMessage()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", p)
	c.Close(wire.StatusNormalClosure, "")
	// Output: hello
}

// A client: dial, send a message, read the answer, and close with the
// closing handshake.
func ExampleDial() {
	srv := httptest.NewServer(http.HandlerFunc(exampleEcho)) // stands in for a real server
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") // ws://127.0.0.1:port

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := wire.Dial(ctx, url, &wire.DialOptions{
		Header: http.Header{"Origin": {srv.URL}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("handshake:", resp.Status)

	if err := c.WriteMessage(wire.OpBinary, []byte{1, 2, 3}); err != nil {
		log.Fatal(err)
	}
	op, p, err := c.ReadMessage()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(op, p)

	if err := c.Close(wire.StatusNormalClosure, "done"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// handshake: 101 Switching Protocols
	// binary [1 2 3]
}

// A read with a timeout of its own: when the context ends, Read returns its
// error and the connection stays usable, with nothing lost.
func ExampleConn_Read() {
	srv := httptest.NewServer(http.HandlerFunc(exampleEcho))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()

	// Nothing was sent, so nothing comes back in time.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err = c.Read(short)
	cancelShort()
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	if err := c.Write(ctx, wire.OpText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", p)
	c.Close(wire.StatusNormalClosure, "")
	// Output:
	// true
	// hello
}

// Encoding and decoding frames by hand, with the masked "Hello" of RFC 6455
// section 5.7.
func ExampleAppendFrame() {
	h := wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: [4]byte{0x37, 0xfa, 0x21, 0x3d}}
	frame := wire.AppendFrame(nil, h, []byte("Hello"))
	fmt.Printf("% x\n", frame)
	// Output: 81 85 37 fa 21 3d 7f 9f 4d 51 58
}

func ExampleParseHeader() {
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}

	if _, n, _ := wire.ParseHeader(frame[:3]); n == 0 {
		fmt.Println("3 bytes: need more")
	}
	h, n, err := wire.ParseHeader(frame)
	if err != nil {
		log.Fatal(err)
	}
	payload := frame[n : n+int(h.Length)]
	wire.Mask(payload, h.Key, 0) // unmask in place
	fmt.Printf("fin=%v opcode=%v masked=%v length=%d header=%d bytes\n", h.Fin, h.Opcode, h.Masked, h.Length, n)
	fmt.Printf("%s\n", payload)
	// Output:
	// 3 bytes: need more
	// fin=true opcode=text masked=true length=5 header=6 bytes
	// Hello
}

// Validating text that arrives in pieces: a character may be split between
// them, and a bad byte is caught at once.
func ExampleUTF8Validator() {
	var v wire.UTF8Validator
	fmt.Println(v.Write([]byte("caf\xc3")), v.Complete()) // "é" cut in half
	fmt.Println(v.Write([]byte("\xa9")), v.Complete())
	v.Reset()
	fmt.Println(v.Write([]byte("\xed\xa0"))) // a surrogate can never be valid
	// Output:
	// true false
	// true true
	// false
}

// Reading frames from any io.Reader, here a server reading what a client
// sent: a fragmented message with a ping in the middle.
func ExampleNewReader() {
	key := [4]byte{1, 2, 3, 4}
	var stream []byte
	stream = wire.AppendFrame(stream, wire.Header{Opcode: wire.OpText, Masked: true, Key: key}, []byte("Hel"))
	stream = wire.AppendFrame(stream, wire.Header{Fin: true, Opcode: wire.OpPing, Masked: true, Key: key}, []byte("?"))
	stream = wire.AppendFrame(stream, wire.Header{Fin: true, Opcode: wire.OpContinuation, Masked: true, Key: key}, []byte("lo"))

	rd := wire.NewReader(strings.NewReader(string(stream)), &wire.ReaderOptions{Server: true})
	for {
		op, p, err := rd.Next()
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%v %q\n", op, p)
	}
	// Output:
	// ping "?"
	// text "Hello"
	// EOF
}

func ExampleAppendClosePayload() {
	p := wire.AppendClosePayload(nil, wire.StatusGoingAway, "restarting")
	code, reason, err := wire.ParseClosePayload(p)
	fmt.Println(code, string(reason), err)
	// Output: 1001 (going away) restarting <nil>
}

// Compressing a message once for many connections, as a broadcast does:
// the body goes in a frame with RSV1 set, the same bytes for every
// connection whose compression parameters accept shared frames. Here a
// client's Reader, which negotiated permessage-deflate, reads it back.
func ExampleAppendCompressed() {
	msg := []byte(`{"type":"message","text":"hello, hello, hello, everyone"}`)
	body := wire.AppendCompressed(nil, msg)
	frame := wire.AppendHeader(nil, wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText, Length: int64(len(body))})
	frame = append(frame, body...)

	cp := wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	fmt.Println(cp.AcceptsShared(), len(msg), "bytes compressed to", len(body))
	rd := wire.NewReader(strings.NewReader(string(frame)), &wire.ReaderOptions{Compression: cp})
	op, p, err := rd.Next()
	fmt.Println(op, string(p), err)
	// Output:
	// true 57 bytes compressed to 47
	// text {"type":"message","text":"hello, hello, hello, everyone"} <nil>
}
