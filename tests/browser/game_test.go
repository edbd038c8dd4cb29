package browser

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/wire"
)

// TestGame runs examples/game in Chromium: the page connects, takes a name,
// draws the arena on its canvas, and when ArrowRight is held the server
// moves the player to the right, and the page shows it, and its ping. With
// SHOCKWAVE_SCREENSHOT=1, three bots join the match and the test writes
// docs/game.png.
func TestGame(t *testing.T) {
	browser := newBrowser(t)
	srv, err := gameserver.New(gameserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})

	tb := newTab(t, browser, "player", 960, 600)
	tb.do("open the page", chromedp.Navigate(hs.URL+"/"))
	tb.waitFor("the first connection", `window.game !== undefined && game.connected && game.id > 0`)
	// A name takes a connection of its own.
	tb.do("choose a name",
		chromedp.SetValue(chromedp.ID("name"), "chromium"),
		chromedp.Click(chromedp.JSPath(`document.querySelector('#name-form button')`)),
	)
	tb.waitFor("the player named", `game.connected && game.self() !== null && game.self().n === 'chromium'`)

	// The page draws: the arena covers much of the canvas, in other
	// colours than the page's, which its top-left corner shows.
	tb.waitFor("the arena drawn", `game.tick > 0 && game.frames > 0 && (() => {
		const c = document.getElementById('arena');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let other = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) other++;
		}
		return other > c.width * c.height / 4;
	})()`)

	id := uint32(eval[float64](tb, `game.id`))
	start, _, ok := gamePlayer(srv, id)
	if !ok {
		t.Fatalf("the server has no player %d", id)
	}

	// Hold ArrowRight until the server has moved the player right; or
	// ArrowLeft in the rare case it spawned against the right wall.
	arrow, code, dir := "ArrowRight", int64(39), int32(1)
	if start.X >= (sim.Config{}.WithDefaults().Width-2*sim.PlayerRadius)*sim.Scale {
		arrow, code, dir = "ArrowLeft", 37, -1
	}
	key := func(typ input.DispatchKeyEventType) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: arrow, Code: arrow, WindowsVirtualKeyCode: code,
			})
			return err
		})
	}
	tb.do("press "+arrow, key(input.DispatchKeyEventTypeKeyDown))
	moved := waitUntil(t, func() bool {
		p, _, ok := gamePlayer(srv, id)
		return ok && (p.X-start.X)*dir > 0
	})
	tb.do("release "+arrow, key(input.DispatchKeyEventTypeKeyUp))
	if !moved {
		p, _, _ := gamePlayer(srv, id)
		t.Fatalf("holding %s: the server has the player at x=%d, it started at x=%d", arrow, p.X, start.X)
	}
	tb.waitFor("the page to show the move", fmt.Sprintf(`game.self() !== null && (game.self().x - %d) * %d > 0`, start.X, dir))
	tb.waitFor("a ping measured", `typeof game.ping === 'number' && game.ping >= 0`)

	if os.Getenv("SHOCKWAVE_SCREENSHOT") != "" {
		wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
		keys := []sim.Keys{sim.Left | sim.Down, sim.Up | sim.Left, sim.Down | sim.Right}
		var stopped []<-chan struct{}
		for i, k := range keys {
			stopped = append(stopped, gameBot(t, wsURL, fmt.Sprintf("bot %d", i+1), k))
		}
		for _, c := range stopped {
			select {
			case <-c:
			case <-time.After(bound):
				t.Fatal("a bot did not get its snapshots")
			}
		}
		// The bots have let go of their keys; let them come to a halt,
		// in the page too.
		_, tick, _ := gamePlayer(srv, id)
		tb.waitFor("the bots at rest", fmt.Sprintf(`game.players === %d && game.tick > %d`, 1+len(keys), tick+15))
		path := filepath.Join("..", "..", "docs", "game.png")
		sideBySide(t, path, tb)
		t.Logf("wrote %s", path)
	}
}

// gamePlayer returns player id as the latest snapshot of its match has
// it, and the tick of that snapshot.
func gamePlayer(srv *gameserver.Server, id uint32) (p sim.Player, tick uint64, ok bool) {
	for _, m := range srv.Matches() {
		for _, p := range m.Snapshot.Players {
			if p.ID == id {
				return p, m.Snapshot.Tick, true
			}
		}
	}
	return sim.Player{}, 0, false
}

// waitUntil polls cond until it is true, for at most bound, and reports
// whether it became true.
func waitUntil(t *testing.T, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// gameEnvelope is the Shockwave envelope of a client's event.
type gameEnvelope struct {
	E string `msgpack:"e"`
	D any    `msgpack:"d,omitempty"`
}

// gameBot joins the game at url as name and holds keys for 20 ticks; then
// it lets go, closes the channel it returns, and reads on until the test
// ends.
func gameBot(t *testing.T, url, name string, keys sim.Keys) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, _, err := wire.Dial(ctx, url, &wire.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.MsgPack)}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	send := func(event string, d any) error {
		b, err := codec.MsgPack.Append(nil, gameEnvelope{E: event, D: d})
		if err != nil {
			return err
		}
		return c.WriteMessage(wire.OpBinary, b)
	}
	if err := send("join", map[string]any{"n": name}); err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		snaps := 0
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				return // the test is over
			}
			var env struct {
				E string `msgpack:"e"`
			}
			if err := codec.MsgPack.Decode(p, &env); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			var in *sim.Input
			switch {
			case env.E == "welcome":
				in = &sim.Input{Seq: 1, Keys: keys}
			case env.E == "snap":
				snaps++
				if snaps == 20 {
					in = &sim.Input{Seq: 2}
				}
			}
			if in != nil {
				if err := send("input", in); err != nil {
					return
				}
				if in.Keys == 0 {
					close(stopped)
				}
			}
		}
	}()
	t.Cleanup(func() {
		c.CloseNow()
		wg.Wait()
	})
	return stopped
}
