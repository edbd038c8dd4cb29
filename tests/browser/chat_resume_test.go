package browser

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// TestChatOffline: two chat pages in the lobby, alice's and bob's. Alice's
// browser goes offline (the DevTools protocol's network emulation: her
// requests fail, and the page is told, navigator.onLine and the window's
// "offline" event), and her client drops its connection, which the server
// sees end. Bob says 20 things meanwhile. Alice's browser comes back
// online: her page, never reloaded, shows the 20 messages, each once, in
// order, after what it showed before; and bob's member list, watched for
// the whole test, never loses alice, since she came back within the chat's
// grace period.
func TestChatOffline(t *testing.T) {
	browser := newBrowser(t)
	leaves := &leaveLog{}
	// The grace is far longer than the outage can last: the test's
	// steps are bounded, and there are few.
	url := serveChat(t, chatserver.Config{Grace: time.Hour, Runtime: []runtime.Option{
		runtime.WithRoomHooks(nil, leaves.add),
	}})

	alice := newTab(t, newProfile(t, browser), "alice", 880, 600)
	bob := newTab(t, newProfile(t, browser), "bob", 880, 600)
	alice.login(url.addr, "alice", "lobby")
	bob.login(url.addr, "bob", "lobby")
	eval[bool](bob, memberNames)
	bob.waitFor("alice in bob's member list", `memberNames().includes('alice')`)

	// From now on, bob's page records every change of its member list.
	eval[bool](bob, `window.memberLog = [memberNames()];
		new MutationObserver(() => memberLog.push(memberNames()))
			.observe(document.getElementById('members'), { childList: true, subtree: true, characterData: true });
		true`)
	bob.say("Before you go")
	alice.waitForMessage("bob", "Before you go")
	before := eval[int](alice, `document.querySelectorAll('#messages .msg').length`)

	// A mark that a reload would lose, the element of a message shown,
	// which a page that starts the room over would lose too, and the
	// page's view of the network.
	eval[bool](alice, `window.mark = 'not reloaded';
		window.shown = [...document.querySelectorAll('#messages .msg')].find((li) => li.textContent.includes('Before you go'));
		window.wentOffline = 0;
		window.wentOnline = 0;
		addEventListener('offline', () => wentOffline++);
		addEventListener('online', () => wentOnline++);
		true`)

	alice.setOffline(true)
	alice.waitFor("the browser offline", `!navigator.onLine && wentOffline === 1`)
	alice.waitFor("the page to say it is offline", `document.getElementById('status').dataset.state === 'reconnecting'`)
	if !waitUntil(t, func() bool { return leaves.has("alice") }) {
		t.Fatalf("the server did not see alice's connection end in %v", bound)
	}

	var said []string
	for i := 1; i <= 20; i++ {
		said = append(said, fmt.Sprintf("While you were away, %d", i))
		bob.say(said[i-1])
		bob.waitForMessage("bob", said[i-1])
	}
	if eval[int](alice, `document.querySelectorAll('#messages .msg').length`) != before {
		t.Fatal("alice's page got messages while offline")
	}

	alice.setOffline(false)
	alice.waitFor("the browser online", `navigator.onLine && wentOnline === 1`)
	alice.waitFor("the 20 messages", fmt.Sprintf(`document.querySelectorAll('#messages .msg').length >= %d &&
		document.getElementById('status').dataset.state === 'online'`, before+len(said)))
	// Nothing more is coming: bob's next message is the last one.
	bob.say("Welcome back")
	alice.waitForMessage("bob", "Welcome back")

	got := eval[[]string](alice, `[...document.querySelectorAll('#messages .msg .text')].map((e) => e.textContent)`)
	want := append([]string{"Before you go"}, said...)
	want = append(want, "Welcome back")
	if i := slices.Index(got, "Before you go"); i < 0 || !slices.Equal(got[i:], want) {
		t.Errorf("alice's page shows\n%s\nwant, from \"Before you go\" on,\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(got) != before+len(said)+1 {
		t.Errorf("alice's page shows %d messages, want %d", len(got), before+len(said)+1)
	}
	if m := eval[string](alice, `String(window.mark)`); m != "not reloaded" {
		t.Errorf("alice's page was reloaded: its mark is %q", m)
	}
	if !eval[bool](alice, `window.shown.isConnected`) {
		t.Error("alice's page started the room over: it did not recover, or did not keep what it showed")
	}

	log := eval[[][]string](bob, `memberLog`)
	for i, names := range log {
		if !slices.Contains(names, "alice") {
			t.Errorf("bob's member list, change %d of %d, lost alice: %q", i, len(log), names)
		}
	}
	if n := eval[int](bob, `[...document.querySelectorAll('#messages .note')].filter((li) => li.textContent.startsWith('alice ')).length`); n != 0 {
		t.Errorf("bob's page has %d notes of alice leaving or joining", n)
	}
}

// memberNames defines the page's memberNames(), the names in its member
// list.
const memberNames = `window.memberNames = () =>
	[...document.querySelectorAll('#members .member')].map((b) => b.firstChild.textContent);
	true`

// setOffline takes the tab's browser context off the network, or puts it
// back, as when a laptop loses its Wi-Fi: its requests fail
// (Network.emulateNetworkConditionsByRule), and the page is told
// (Network.overrideNetworkState: navigator.onLine, the window's "offline"
// and "online" events). Off, the network goes first, and the page is told
// once it is; back on, the network comes back before the page is told, so
// that what the page does then reaches the server. An open WebSocket
// stays open: Chromium emulates requests, not sockets.
func (tb *tab) setOffline(offline bool) {
	tb.t.Helper()
	rules := offlineRules{Offline: offline, MatchedNetworkConditions: []*network.Conditions{}}
	if offline {
		rules.MatchedNetworkConditions = []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}
	}
	state := network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}
	tb.do(fmt.Sprintf("set offline %v", offline), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, emulateByRule, rules); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, state)
		return err
	}))
}

// offlineRules are the parameters of Network.emulateNetworkConditionsByRule
// as Chromium 148 takes them: "offline" is a parameter of the command,
// which cdproto's EmulateNetworkConditionsByRuleParams, of an earlier
// revision of the protocol, has in each rule instead. Both are sent.
type offlineRules struct {
	Offline                  bool                  `json:"offline"`
	MatchedNetworkConditions []*network.Conditions `json:"matchedNetworkConditions"`
}

var emulateByRule = cdp.Command[offlineRules, network.EmulateNetworkConditionsByRuleResult]{Method: network.CommandEmulateNetworkConditionsByRule}

// leaveLog records who left a room of the chat: the runtime's OnLeave.
type leaveLog struct {
	mu    sync.Mutex
	names []string
}

func (l *leaveLog) add(_ *runtime.Room, s *session.Session) {
	u, _ := session.Identity[fmt.Stringer](s) // the chat's user
	l.mu.Lock()
	defer l.mu.Unlock()
	if u != nil {
		l.names = append(l.names, u.String())
	}
}

func (l *leaveLog) has(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.names, name)
}
