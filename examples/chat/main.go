// Command chat is a chat server with its web page: sign-in with a name,
// rooms, presence, history, private messages and a typing indicator, over
// Shockwave's runtime and event envelope. Everything is in memory; there is
// nothing else to start.
//
//	go run ./examples/chat
//
// then open http://localhost:8080 in two browser windows (two profiles, or
// one private window: the sign-in is a cookie, shared by a profile's
// windows). The server is the chatserver package beside this file; this
// command only reads flags, listens and shuts down.
//
// The sign-in cookies are signed with the key of -cookie-key or
// $SHOCKWAVE_CHAT_KEY (hex, at least 16 bytes; openssl rand -hex 32 makes
// one); without either, with a random key, so that everyone signs in again
// after a restart.
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see docs/observability.md); with none set, instrumentation is off.
package main

import (
	"encoding/hex"
	"flag"
	"log"
	"os"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/internal/otelsetup"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	rate := flag.Float64("rate", 20, "messages a second each connection may send; a faster client is read more slowly (negative: no limit)")
	maxLength := flag.Int("max-length", 2000, "longest message, in characters")
	history := flag.Int("history", 100, "messages each room keeps for those who join it")
	keyHex := flag.String("cookie-key", "", "key that signs the sign-in cookies, in hex (at least 16 bytes; default $SHOCKWAVE_CHAT_KEY, else random at start, and then sign-ins do not survive a restart)")
	flag.Parse()

	if *keyHex == "" {
		*keyHex = os.Getenv("SHOCKWAVE_CHAT_KEY")
	}
	var key []byte
	if *keyHex != "" {
		var err error
		if key, err = hex.DecodeString(*keyHex); err != nil {
			log.Fatal("chat: -cookie-key is not hex") // not the error: it would quote the key
		}
	} else {
		log.Print("chat: signing sign-in cookies with a random key: users sign in again after a restart (see -cookie-key)")
	}

	// Before chatserver.New, whose runtime looks at the global providers
	// once.
	defer otelsetup.MustInit("chat")()

	chat, err := chatserver.New(chatserver.Config{MaxLength: *maxLength, Rate: *rate, History: *history, Key: key})
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer(*addr, chat)

	log.Printf("chat: open http://%s in a browser", serve.BrowseAddr(*addr))
	if err := serve.Run(srv, chat.Shutdown); err != nil {
		log.Print(err)
	}
}
