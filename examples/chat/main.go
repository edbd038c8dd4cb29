// Command chat is a chat server with its web page: rooms, nicknames,
// presence, history, private messages and a typing indicator, over
// Shockwave's runtime and event envelope. Everything is in memory; there is
// nothing else to start.
//
//	go run ./examples/chat
//
// then open http://localhost:8080 in two browser windows. The server is
// the chatserver package beside this file; this command only reads flags,
// listens and shuts down.
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see docs/observability.md); with none set, instrumentation is off.
package main

import (
	"flag"
	"log"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/internal/otelsetup"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	rate := flag.Float64("rate", 20, "messages a second each connection may send; a faster client is read more slowly (negative: no limit)")
	maxLength := flag.Int("max-length", 2000, "longest message, in characters")
	history := flag.Int("history", 100, "messages each room keeps for those who join it")
	flag.Parse()

	// Before chatserver.New, whose runtime looks at the global providers
	// once.
	defer otelsetup.MustInit("chat")()

	chat, err := chatserver.New(chatserver.Config{MaxLength: *maxLength, Rate: *rate, History: *history})
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer(*addr, chat)

	log.Printf("chat: open http://%s in a browser", serve.BrowseAddr(*addr))
	if err := serve.Run(srv, chat.Shutdown); err != nil {
		log.Print(err)
	}
}
