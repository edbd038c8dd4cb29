package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/internal/netcount"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// prose is 1,000 characters of English, such as a long chat message.
const prose = `Deflate finds what repeats within a message: the words of a sentence,
the keys of a JSON object, the names in a list. A chat line of a few words
has little of that, and is shorter than the threshold anyway, so it goes
out as it is. A long message is another matter. Someone pastes a paragraph
from a document, a stack trace, a list of links or a recipe, and the room
receives a kilobyte or two of text in which most words have been seen a
few lines before. The compressor, reset for every message, still finds
those repeats, and the message that leaves the server is about half the
size of the one that came in. The cost is paid once for the whole room,
since the runtime compresses a broadcast frame a single time and hands the
same bytes to every member that agreed to deflate, however many there are.
A member that did not agree, such as an old client, receives the plain
frame, which was encoded once too. Nothing else changes: the page, the
protocol and the history are the same with or without it, on every side.`

// TestDeflate measures the figures behind the chat's compression: a
// client that offers permessage-deflate, as browsers do, joins the lobby
// where 49 users are, and reads the reply to its join, with all 50 names,
// and a message of 1,000 characters: both reach the threshold, and go out
// compressed, to about half their size or less. The bytes are checked:
//
//	go test -run TestDeflate -v ./examples/chat
func TestDeflate(t *testing.T) {
	chat, err := chatserver.New(chatserver.Config{Runtime: []runtime.Option{compression}})
	if err != nil {
		t.Fatal(err)
	}
	base := serveChat(t, chat, chat)
	var users []*codec.Client
	for i := range 49 {
		c := signIn(t, base, fmt.Sprintf("user%02d", i))
		request(t, c, codec.EventJoin, nil)
		users = append(users, c)
	}

	var read atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", &wire.DialOptions{
		Options:        wire.Options{Compression: wire.CompressionNoContextTakeover},
		Subprotocols:   []string{"shockwave.json"},
		Header:         cookieHeader(t, base, "measure"),
		NetDialContext: netcount.Dialer(&read),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if !c.Compression().Enabled {
		t.Fatal("the chat agreed on no compression")
	}
	read.Store(0) // the handshake's response; the chat says nothing before the join

	// next reads messages until one for which ok holds, and returns it.
	// want adds up what the messages read should take on the wire: their
	// frames' headers, and their payloads, compressed from the threshold.
	var want int64
	next := func(what string, ok func(env map[string]json.RawMessage) bool) []byte {
		t.Helper()
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			z := len(p)
			if z >= wire.DefaultCompressionThreshold {
				z = len(wire.AppendCompressed(nil, p))
			}
			want += int64((&wire.Header{Length: int64(z)}).Size() + z)
			var env map[string]json.RawMessage
			if err := json.Unmarshal(p, &env); err != nil {
				t.Fatal(err)
			}
			if ok(env) {
				return p
			}
		}
	}
	// check logs what deflate makes of p, and fails unless it makes it
	// at most ratio of its size.
	check := func(what string, p []byte, ratio float64) {
		t.Helper()
		z := len(wire.AppendCompressed(nil, p))
		t.Logf("%s: %d bytes of JSON, %d compressed (%.0f %%)", what, len(p), z, 100*float64(z)/float64(len(p)))
		if len(p) < wire.DefaultCompressionThreshold || float64(z) > ratio*float64(len(p)) {
			t.Errorf("%s: %d bytes compress to %d, more than the %.0f %% that examples/chat's figures allow", what, len(p), z, 100*ratio)
		}
	}

	if err := c.WriteMessage(wire.OpText, []byte(`{"e":"room.join","r":"lobby","i":1,"d":{"n":0}}`)); err != nil {
		t.Fatal(err)
	}
	reply := next("the join's reply", func(env map[string]json.RawMessage) bool { return string(env["i"]) == "1" })
	if !strings.Contains(string(reply), `"user48"`) {
		t.Fatalf("the join's reply does not list the members: %s", reply)
	}
	check("the reply to a join among 50 users", reply, 0.3)

	say := strings.Join(strings.Fields(prose), " ")
	request(t, users[0], chatserver.EventSend, chatserver.SendRequest{Text: say})
	msg := next("the long message", func(env map[string]json.RawMessage) bool { return string(env["e"]) == `"chat.msg"` })
	var got struct {
		Data chatserver.Message `json:"d"`
	}
	if err := json.Unmarshal(msg, &got); err != nil || got.Data.Text != say {
		t.Fatalf("the message came as %s (%v)", msg, err)
	}
	check(fmt.Sprintf("a chat.msg of %d characters", len(say)), msg, 0.62)

	// Nothing else comes, but for a small event the reader may have read
	// ahead: the messages came compressed as they should.
	if got := read.Load(); got > want+100 {
		t.Errorf("%d bytes on the wire for messages that take %d compressed", got, want)
	}
}
