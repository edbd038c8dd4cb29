package natsbroker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime/natsbroker"
)

// TestPresenceOffline: a connection that is down. A room's presence is
// shared at once, with no other node's keys, and the bucket's failure is
// counted, not waited for; Changed and Stop do not block. A room name
// past MaxRoomName is refused; after Close, ErrClosed. PresenceTTL must
// be 1 s or more.
func TestPresenceOffline(t *testing.T) {
	if _, err := natsbroker.New(offline(t), quiet, natsbroker.WithPresenceTTL(time.Second-1)); err == nil || !strings.Contains(err.Error(), "Options.PresenceTTL") {
		t.Errorf("New with a PresenceTTL under 1 s: %v", err)
	}
	b, err := natsbroker.New(offline(t), quiet, natsbroker.WithPresenceTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var told int
	start := time.Now()
	sp, err := b.SharePresence("lobby", func(yield func(string, any) bool) { yield("alice", "A") },
		func(string, map[string]any) { told++ })
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("SharePresence waited %v for a connection that is down", d)
	}
	sp.Changed()
	if st := b.Stats().Presence; st.Rooms != 1 {
		t.Errorf("stats %+v, want a room", st)
	}
	if _, err := b.SharePresence(strings.Repeat("r", natsbroker.MaxRoomName+1), nil, nil); err == nil {
		t.Error("a room name past MaxRoomName shared")
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Presence.Errors.Bucket == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bucket's failure was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sp.Stop(false)
	sp.Stop(true) // once is what counts
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats().Presence; st.Rooms != 0 || st.Puts != 0 || told != 0 {
		t.Errorf("after Close: stats %+v, others told %d times", st, told)
	}
	if _, err := b.SharePresence("lobby", nil, nil); !errors.Is(err, natsbroker.ErrClosed) {
		t.Errorf("SharePresence after Close: %v", err)
	}
}
