package main

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// TestREADME: the README's Usage shows this program whole, as it is here.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// The program from its package clause on: the README has no need of
	// the doc comment above it.
	program := string(src[strings.Index(string(src), "package main"):])
	if !strings.Contains(string(readme), "```go\n"+program+"```\n") {
		t.Fatal("README.md's Usage is not examples/chat/minimal/main.go from its package clause on: copy it over")
	}
	// Every other Go block is a part of an Example that runs as a test,
	// one tab in.
	example, err := os.ReadFile("../../../codec/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```go\n")[1:]
	for _, b := range blocks {
		b = b[:strings.Index(b, "```")]
		if b == program {
			continue
		}
		indented := "\t" + strings.ReplaceAll(strings.TrimSuffix(b, "\n"), "\n", "\n\t")
		indented = strings.ReplaceAll(indented, "\n\t\n", "\n\n")
		if !strings.Contains(string(example), indented) {
			t.Errorf("a Go block of README.md is neither this program nor a part of codec's examples:\n%s", b)
		}
	}
}

// TestLobby: what one client sends, every client gets, itself included.
func TestLobby(t *testing.T) {
	rt, err := runtime.New(lobby{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var clients []*wire.Conn
	for range 3 {
		c, _, err := wire.Dial(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
	}
	waitFor(t, func() bool { r, ok := rt.Room("lobby"); return ok && r.Len() == 3 })
	if err := clients[1].WriteMessage(wire.OpText, []byte("hello, all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != "hello, all" {
			t.Fatalf("client %d: %q %v", i, p, err)
		}
	}
}

// waitFor polls cond until it holds, for 10 s at most.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}
