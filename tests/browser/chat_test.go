package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
)

// TestChat runs examples/chat in Chromium: two users, each in a profile of
// their own (the sign-in is a cookie), one page the size of a laptop window
// and one the size of a phone, sign in through the page's form, join a room
// and talk, in the room and in private; an HTML injection attempt shows as
// text and makes no element, and runs nothing; the network drops and the
// pages come back by themselves, rejoin the room where they were and show
// what they showed, nothing repeated. Then bob's cookie is changed: the
// WebSocket is refused, and after the next drop the client stops with
// "unauthorized", which the page shows by asking him to sign in again;
// alice sees him leave once the chat's grace period is over.
func TestChat(t *testing.T) {
	browser := newBrowser(t)
	url := serveChat(t, chatserver.Config{Grace: 2 * time.Second})

	alice := newTab(t, newProfile(t, browser), "alice", 880, 600)
	bob := newTab(t, newProfile(t, browser), "bob", 390, 600) // a phone
	alice.login(url.addr, "alice", "lobby")
	bob.login(url.addr, "bob", "lobby")
	alice.waitFor("bob in the member list", `[...document.querySelectorAll('#members .member')].some((b) => b.firstChild.textContent === 'bob')`)

	conversation := []struct {
		from *tab
		text string
	}{
		{alice, "Hello Bob! One headless Chromium to another, over Shockwave."},
		{bob, "Loud and clear, Alice."},
		{alice, `<img src=x onerror=alert(1)>`},
		{bob, "Nice try: that is only text here."},
	}
	for _, line := range conversation {
		line.from.say(line.text)
		for _, tb := range []*tab{alice, bob} {
			tb.waitForMessage(line.from.name, line.text)
		}
	}

	// Alice whispers to bob: she picks him in the member list.
	const secret = "Psst: this one is just for you."
	alice.do("pick bob", chromedp.Click(chromedp.JSPath(`[...document.querySelectorAll('#members .member')].find((b) => b.firstChild.textContent === 'bob')`)))
	alice.waitFor("the private mode", `!document.getElementById('private-to').hidden`)
	alice.say(secret)
	alice.waitForMessage("you → bob", secret)
	bob.waitForMessage("alice → you", secret)

	// The injected markup is text: no element was made from it, and
	// nothing ran.
	for _, tb := range []*tab{alice, bob} {
		if n := eval[int](tb, `document.querySelectorAll('#messages img, #messages script, #messages [onerror]').length`); n != 0 {
			t.Errorf("%s: %d elements made from a message", tb.name, n)
		}
		if n := tb.dialogs.Load(); n != 0 {
			t.Errorf("%s: %d JavaScript dialogs opened", tb.name, n)
		}
	}

	// The phone shows the messages alone, with buttons for the panels;
	// the laptop shows all three columns.
	if !eval[bool](bob, `getComputedStyle(document.getElementById('toggle-people')).display !== 'none' &&
		document.getElementById('people-panel').getBoundingClientRect().left >= innerWidth &&
		document.getElementById('messages').getBoundingClientRect().width > innerWidth - 40`) {
		t.Error("bob's phone-sized page does not have the narrow layout")
	}
	if !eval[bool](alice, `getComputedStyle(document.getElementById('toggle-people')).display === 'none' &&
		document.getElementById('people-panel').getBoundingClientRect().right <= innerWidth`) {
		t.Error("alice's page does not have the wide layout")
	}

	if os.Getenv("SHOCKWAVE_SCREENSHOT") != "" {
		// Before the panel below opens.
		path := filepath.Join("..", "..", "docs", "chat.png")
		sideBySide(t, path, alice, bob)
		t.Logf("wrote %s", path)
	}

	// On the phone, the people slide in from the side.
	bob.do("open the people", chromedp.Click(chromedp.ID("toggle-people")))
	bob.waitFor("the people panel", `(() => { const r = document.getElementById('people-panel').getBoundingClientRect();
		return r.right <= innerWidth + 1 && r.left >= 0 && document.getElementById('members').textContent.includes('alice'); })()`)
	bob.do("close the people", chromedp.Click(chromedp.ID("toggle-people")))

	// The network drops. Both pages reconnect with backoff and join the
	// lobby again from the last message they got: none was missed, and
	// what they show stays.
	shown := `document.querySelectorAll('#messages .msg').length`
	want := len(conversation) + 1 + 1 // the private message stays, the rejoin adds nothing
	url.cut()
	for _, tb := range []*tab{alice, bob} {
		tb.waitFor("the page to be back", `document.querySelectorAll('#messages .note.reconnected').length === 1 &&
			document.getElementById('status').dataset.state === 'online'`)
	}
	bob.say("Still there?") // after the join the page sent as it reconnected
	for _, tb := range []*tab{alice, bob} {
		tb.waitForMessage("bob", "Still there?")
		if n := eval[int](tb, shown); n != want {
			t.Errorf("%s shows %d messages after the reconnection, want %d", tb.name, n, want)
		}
	}

	// The page's script cannot read or write the HttpOnly cookie; the
	// DevTools protocol can. With its signature's first byte changed, the
	// handshake is refused (401, which a page sees as 1006 before open).
	if got := bob.dialFromPage(); got != "open" {
		t.Fatalf("bob's page, with his cookie: the WebSocket %s", got)
	}
	if eval[bool](bob, `document.cookie.includes('chat_session')`) {
		t.Error("the page's script can read the sign-in cookie")
	}
	c := bob.cookie(url.addr)
	tampered := []byte(c.Value)
	sig := strings.LastIndexByte(c.Value, '.') + 1
	if tampered[sig] == 'A' {
		tampered[sig] = 'B'
	} else {
		tampered[sig] = 'A'
	}
	bob.setCookie(url.addr, c, string(tampered))
	if got := bob.dialFromPage(); got != "closed 1006" {
		t.Fatalf("bob's page, with a changed cookie: the WebSocket %s, want closed 1006 before open", got)
	}

	// The network drops again: alice comes back; bob's client asks GET
	// /me, is told 401, stops with "unauthorized", and the page asks him
	// to sign in.
	url.cut()
	alice.waitFor("alice to be back", `document.querySelectorAll('#messages .note.reconnected').length === 2 &&
		document.getElementById('status').dataset.state === 'online'`)
	bob.waitFor("the sign-in form", `!document.getElementById('login').hidden &&
		document.getElementById('login-error').textContent.includes('sign in again') &&
		document.getElementById('status').dataset.state === 'offline'`)
	alice.waitFor("bob to have left", `![...document.querySelectorAll('#members .member')].some((b) => b.firstChild.textContent === 'bob')`)

	// He signs in again, through the form, and is back.
	bob.signIn("bob")
	bob.waitFor("the room", `document.getElementById('status').dataset.state === 'online' && document.getElementById('room-title').textContent === '#lobby'`)
	bob.say("Back, signed in again.")
	alice.waitForMessage("bob", "Back, signed in again.")
}

// TestChatSignIn: a page with no cookie, or a changed one, shows the
// sign-in form; a name the server refuses is explained there, as text.
func TestChatSignIn(t *testing.T) {
	browser := newBrowser(t)
	url := serveChat(t, chatserver.Config{})
	carol := newTab(t, newProfile(t, browser), "carol", 880, 600)

	carol.do("open the page", chromedp.Navigate(url.addr+"/"))
	carol.signIn("carol\u200b") // a zero-width space
	carol.waitFor("the refusal", `document.getElementById('login-error').textContent.length > 0 && !document.getElementById('login').hidden`)
	if got := eval[string](carol, `document.getElementById('login-error').textContent`); !strings.Contains(got, "cannot be shown") {
		t.Errorf("the form says %q", got)
	}
	carol.signIn("<b>carol</b>")
	// Online comes with the connection, the name with the room's state.
	carol.waitFor("the room", `document.getElementById('status').dataset.state === 'online' && document.getElementById('me').textContent !== ''`)
	if got := eval[string](carol, `document.getElementById('me').textContent`); got != "<b>carol</b>" {
		t.Errorf("signed in as %q", got)
	}

	// A changed cookie, set before the page loads: the form again.
	c := carol.cookie(url.addr)
	carol.setCookie(url.addr, c, c.Value+"x")
	carol.do("reload", chromedp.Navigate(url.addr+"/"))
	carol.waitFor("the sign-in form", `!document.getElementById('login').hidden && document.getElementById('status').dataset.state === 'offline'`)
}

// newProfile returns a context whose tabs share a browser context of their
// own: their own cookies, as another browser profile would have, so that
// two tabs can be signed in as two users.
func newProfile(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // makes the browser context
		t.Fatal(err)
	}
	return ctx
}

// signIn fills in the sign-in form with name and sends it.
func (tb *tab) signIn(name string) {
	tb.t.Helper()
	tb.do("sign in as "+name,
		chromedp.WaitVisible(chromedp.ID("nick")),
		chromedp.SetValue(chromedp.ID("nick"), name),
		chromedp.Click(chromedp.ID("login-submit")),
	)
}

// cookie returns the page's sign-in cookie, read over the DevTools
// protocol (it is HttpOnly: the page's script cannot).
func (tb *tab) cookie(url string) *network.Cookie {
	tb.t.Helper()
	var got *network.Cookie
	tb.do("read the cookie", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		for _, c := range res.Cookies {
			if c.Name == chatserver.CookieName {
				got = c
			}
		}
		return err
	}))
	if got == nil {
		tb.t.Fatalf("%s: no %s cookie", tb.name, chatserver.CookieName)
	}
	return got
}

// setCookie replaces the sign-in cookie c of the page's profile with one
// of the same attributes holding value.
func (tb *tab) setCookie(url string, c *network.Cookie, value string) {
	tb.t.Helper()
	tb.do("set the cookie", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name: c.Name, Value: value, URL: url, Path: c.Path,
			HTTPOnly: &c.HTTPOnly, SameSite: c.SameSite, Expires: cdp.TimeSinceEpoch(c.Expires),
		})
		return err
	}))
}

// dialFromPage opens a WebSocket to the chat from the page's script and
// returns what became of it: "open", or "closed <code>" if it closed
// before opening.
func (tb *tab) dialFromPage() string {
	tb.t.Helper()
	eval[bool](tb, `(() => {
		window.probe = 'pending';
		const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'), 'shockwave.json');
		ws.onopen = () => { window.probe = 'open'; ws.close(); };
		ws.onclose = (e) => { if (window.probe === 'pending') window.probe = 'closed ' + e.code; };
		return true;
	})()`)
	tb.waitFor("the WebSocket to open or close", `window.probe !== 'pending'`)
	return eval[string](tb, `window.probe`)
}

// login opens the chat, signs in as nick through the page's form and
// joins room.
func (tb *tab) login(url, nick, room string) {
	tb.t.Helper()
	tb.do("open the page", chromedp.Navigate(url+"/#"+room))
	tb.signIn(nick)
	tb.waitFor("the room", fmt.Sprintf(`document.getElementById('room-title').textContent === %s &&
		document.getElementById('status').dataset.state === 'online'`, jsString("#"+room)))
}

// say types a message, once the page lets us, and sends it. It types as
// chromedp.SendKeys does, without SendKeys' read of the node's attributes,
// which chromedp makes without its lock: a race (under -race) with the
// page changing the input's attributes meanwhile, as it does when it shows
// the room.
func (tb *tab) say(text string) {
	tb.t.Helper()
	tb.do("say "+text,
		chromedp.Focus(chromedp.ID("input"), chromedp.NodeVisible, chromedp.NodeEnabled),
		chromedp.KeyEvent(text),
		chromedp.Click(chromedp.ID("send")),
	)
}

// waitForMessage waits until the page shows a message from nick.
func (tb *tab) waitForMessage(nick, text string) {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("%s's message %q", nick, text), fmt.Sprintf(`[...document.querySelectorAll('#messages .msg')].some((li) =>
		li.querySelector('.from').textContent === %s && li.querySelector('.text').textContent === %s)`, jsString(nick), jsString(text)))
}

// chatURL is where the pages reach the chat: a proxy in front of it, so that
// the test can cut every connection, as a network drop would.
type chatURL struct {
	addr string
	srv  *chatserver.Server

	mu     sync.Mutex
	conns  []net.Conn
	closed bool      // the test is over: close new connections at once
	tap    *frameTap // set by watch: the new connections are parsed
}

// serveChat starts examples/chat's server with cfg on loopback behind a
// proxy; both stop when the test ends.
func serveChat(t *testing.T, cfg chatserver.Config) *chatURL {
	t.Helper()
	srv, err := chatserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &chatURL{addr: "http://" + ln.Addr().String(), srv: srv}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.forward(c, hs.Listener.Addr().String())
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		u.closed = true
		u.mu.Unlock()
		u.cut()
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return u
}

// forward copies bytes both ways between c and the server until either
// side closes or the proxy is cut.
func (u *chatURL) forward(c net.Conn, server string) {
	s, err := net.Dial("tcp", server)
	if err != nil {
		c.Close()
		return
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	u.conns = append(u.conns, c, s)
	var up, down io.Reader = c, s
	if u.tap != nil {
		up, down = u.tap.conn(c, s)
	}
	u.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, up); s.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, down); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// cut closes every connection through the proxy, without a word to either
// side: browser and server see their TCP connections end.
func (u *chatURL) cut() {
	u.mu.Lock()
	conns := u.conns
	u.conns = nil
	u.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// sideBySide writes a PNG of the tabs' viewports side by side.
func sideBySide(t *testing.T, path string, tabs ...*tab) {
	t.Helper()
	var shots []image.Image
	for _, tb := range tabs {
		var shot []byte
		tb.do("take a screenshot", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// A tab paints while it is in front.
			if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
				return err
			}
			var err error
			shot, err = chromedp.CaptureScreenshot()(ctx, tg)
			return err
		}))
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", tb.name, err)
		}
		shots = append(shots, img)
	}
	const gap = 24
	w, h := gap, 0
	for _, img := range shots {
		w += img.Bounds().Dx() + gap
		h = max(h, img.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h+2*gap))
	draw.Draw(out, out.Bounds(), &image.Uniform{color.RGBA{0x2a, 0x32, 0x46, 0xff}}, image.Point{}, draw.Src)
	x := gap
	for _, img := range shots {
		b := img.Bounds()
		draw.Draw(out, image.Rect(x, gap, x+b.Dx(), gap+b.Dy()), img, b.Min, draw.Src)
		x += b.Dx() + gap
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
