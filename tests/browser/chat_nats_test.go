package browser

import (
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
)

// TestChatNATS runs examples/chat as two nodes, a and b, each with its own
// natsbroker.Broker on its own connection to one NATS server with
// JetStream, all in this process, on loopback: the deployment of
// docs/scaling.md, as `go run ./examples/chat -nats …` makes it. Alice's
// page is on a, bob's on b; they sign in on their own node and join one
// room. What each types appears on the other's page, and each page shows
// the other user present; a private message from alice to bob, who is on
// the other node, is refused, and her page says so. Then bob moves to the lobby, so that b has
// nobody left in the room and forgets it; carol signs in on b and joins
// the room: her page shows what alice and bob said, in order, read from
// the room's stream, and alice present on a.
func TestChatNATS(t *testing.T) {
	browser := newBrowser(t)
	ns := startJetStream(t)
	key := make([]byte, 32) // one key: a sign-in on one node holds on the other
	rand.Read(key)
	const room = "across" // not a fixed room: empty, it goes (Linger < 0)
	nodeA := serveNode(t, ns, "a", key)
	nodeB := serveNode(t, ns, "b", key)

	alice := newTab(t, newProfile(t, browser), "alice", 880, 600)
	bob := newTab(t, newProfile(t, browser), "bob", 880, 600)
	alice.login(nodeA.url.addr, "alice", room)
	bob.login(nodeB.url.addr, "bob", room)
	for _, tb := range []*tab{alice, bob} {
		if got := eval[string](tb, `document.getElementById('node').textContent`); !strings.Contains(got, map[*tab]string{alice: "a", bob: "b"}[tb]) {
			t.Errorf("%s's page says it is %q", tb.name, got)
		}
	}

	conversation := []struct {
		from *tab
		text string
	}{
		{alice, "Hello from node a."},
		{bob, "Hello from node b: heard you through NATS."},
		{alice, "And the stream keeps it all."},
	}
	for _, line := range conversation {
		line.from.say(line.text)
		for _, tb := range []*tab{alice, bob} {
			tb.waitForMessage(line.from.name, line.text)
		}
	}

	// Presence is the room's, whatever node its users are on.
	for _, tb := range []*tab{alice, bob} {
		eval[bool](tb, memberNames)
	}
	alice.waitFor("bob, on b, in alice's member list", `memberNames().includes('bob')`)
	bob.waitFor("alice, on a, in bob's member list", `memberNames().includes('alice')`)

	// Private messages are each node's own: alice's whisper to bob, on
	// the other node, is refused, and her page says why.
	alice.do("pick bob", chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll('#members .member')].find((b) => b.firstChild.textContent === 'bob')`)))
	alice.waitFor("the private mode", `!document.getElementById('private-to').hidden`)
	alice.say("Psst, bob.")
	alice.waitFor("the refusal", `[...document.querySelectorAll('#messages .note.error')].some((li) => li.textContent.includes('another server'))`)
	eval[bool](alice, `document.getElementById('input').value = ''; true`) // the page gave the text back, to retry
	alice.do("back to the room", chromedp.Click(chromedp.ID("private-cancel")))

	// Bob moves to the lobby: b has nobody left in the room, and
	// unsubscribes from it.
	bob.do("go to the lobby",
		chromedp.SetValue(chromedp.ID("new-room-name"), "lobby"),
		chromedp.Click(chromedp.JSPath(`document.querySelector('#new-room button')`)),
	)
	bob.waitFor("the lobby", `document.getElementById('room-title').textContent === '#lobby'`)
	if !waitUntil(t, func() bool { return !nodeB.subscribed(t, room) }) {
		t.Fatalf("node b still subscribes to %s after %v", room, bound)
	}

	// Carol joins it on b, which reads the room's history from the
	// stream.
	carol := newTab(t, newProfile(t, browser), "carol", 880, 600)
	carol.login(nodeB.url.addr, "carol", room)
	for _, line := range conversation {
		carol.waitForMessage(line.from.name, line.text)
	}
	got := eval[[]string](carol, `[...document.querySelectorAll('#messages .msg .text')].map((e) => e.textContent)`)
	var want []string
	for _, line := range conversation {
		want = append(want, line.text)
	}
	if !slices.Equal(got, want) {
		t.Errorf("carol's page shows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	eval[bool](carol, memberNames)
	carol.waitFor("alice, on a, in carol's member list", `memberNames().includes('alice')`)

	// And it goes on live, both ways.
	carol.say("Hello alice, from b.")
	alice.waitForMessage("carol", "Hello alice, from b.")
	alice.say("Hello carol.")
	carol.waitForMessage("alice", "Hello carol.")
}

// startJetStream starts a NATS server with JetStream, its store in a
// directory of the test's, on a random loopback port; it stops when the
// test ends, after the nodes (cleanups run last first).
func startJetStream(t *testing.T) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(bound) {
		t.Fatal("the NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// chatNode is a chat node of TestChatNATS: examples/chat's server with a
// Broker of its own, on a connection of its own.
type chatNode struct {
	ns  *server.Server
	nc  *nats.Conn
	url *chatURL
}

// serveNode starts a chat node called name on ns, as examples/chat does
// with -nats and -node name, behind serveChat's proxy. When the test ends
// it stops as the program does: the chat, then the Broker, then the
// connection.
func serveNode(t *testing.T, ns *server.Server, name string, key []byte) *chatNode {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("chat "+name), nats.MaxReconnects(-1), nats.NoEcho(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { t.Logf("node %s: nats: %v", name, err) }))
	if err != nil {
		t.Fatal(err)
	}
	const history = 100
	b, err := natsbroker.New(nc, natsbroker.WithNode(name), natsbroker.WithLog(history+1, 0))
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { // after serveChat's, which shuts the chat down
		if err := b.Close(); err != nil {
			t.Errorf("node %s: %v", name, err)
		}
		if err := nc.Drain(); err != nil {
			t.Errorf("node %s: drain: %v", name, err)
		}
	})
	u := serveChat(t, chatserver.Config{
		Key: key, History: history, Linger: -1, Node: b.Node(),
		Runtime: []runtime.Option{runtime.WithBroker(b)},
	})
	return &chatNode{ns: ns, nc: nc, url: u}
}

// subscribed reports whether the node subscribes to room's subject on the
// NATS server: whether it has members in the room.
func (n *chatNode) subscribed(t *testing.T, room string) bool {
	t.Helper()
	id, err := n.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	sz, err := n.ns.Subsz(&server.SubszOptions{Subscriptions: true, Test: natsbroker.Subject("sw", room)})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(sz.Subs, func(d server.SubDetail) bool { return d.Cid == id })
}
