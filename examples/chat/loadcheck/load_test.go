package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
)

// TestRun runs a small load check against an in-process chat: every
// message reaches every member of its room.
func TestRun(t *testing.T) {
	chat, err := chatserver.New(chatserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(chat)
	defer hs.Close()
	defer chat.Shutdown(context.Background())

	cfg := config{
		url:      "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws",
		users:    20,
		rooms:    2,
		duration: time.Second,
		interval: 200 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.report(cfg))
	if res.sent == 0 || res.delivered != res.expected || res.errors != 0 || len(res.latencies) != int(res.delivered) {
		t.Fatalf("sent %d, delivered %d of %d, %d errors", res.sent, res.delivered, res.expected, res.errors)
	}
}
