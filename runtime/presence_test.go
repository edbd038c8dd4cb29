package runtime_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// presenceRig is a runtime whose rooms track presence by the user the
// client names in its URL (?user=), and records what Changed says.
type presenceRig struct {
	rt  *runtime.Runtime
	url string

	mu      sync.Mutex
	changes []string
}

func newPresenceRig(t *testing.T, grace time.Duration, opts ...runtime.Option) *presenceRig {
	t.Helper()
	rig := &presenceRig{}
	rig.rt, rig.url = start(t, roomCommands, append(opts, runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
		return runtime.Admission{Identity: r.URL.Query().Get("user")}, nil
	}), runtime.WithRoomPresence(func(string) *runtime.Presence {
		return &runtime.Presence{
			Who: func(s *session.Session) (string, any) {
				u, _ := session.Identity[string](s)
				return u, strings.ToUpper(u)
			},
			Grace: grace,
			Changed: func(r *runtime.Room, key string, info any, present bool) {
				rig.mu.Lock()
				defer rig.mu.Unlock()
				what := "leave "
				if present {
					what = "join "
				}
				rig.changes = append(rig.changes, what+key+" "+info.(string))
			},
		}
	}))...)
	return rig
}

func (rig *presenceRig) told() []string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return slices.Clone(rig.changes)
}

func (rig *presenceRig) present(t *testing.T, room string) map[string]any {
	t.Helper()
	r, ok := rig.rt.Room(room)
	if !ok {
		return nil
	}
	if n := r.PresentCount(); n != len(maps.Collect(r.Present())) {
		t.Errorf("PresentCount() = %d, Present() yields %d", n, len(maps.Collect(r.Present())))
	}
	return maps.Collect(r.Present())
}

// TestPresence: a room counts users, not sessions: a user's second
// session changes nothing, its last one leaving is a departure, after
// the grace period; a user who comes back within it was never away.
func TestPresence(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	alice1 := dial(t, rig.url+"?user=alice")
	alice2 := dial(t, rig.url+"?user=alice")
	bob := dial(t, rig.url+"?user=bob")
	ask(t, alice1, "join lobby")
	ask(t, alice2, "join lobby")
	ask(t, bob, "join lobby")
	if got, want := rig.told(), []string{"join alice ALICE", "join bob BOB"}; !slices.Equal(got, want) {
		t.Fatalf("told %q, want %q", got, want)
	}
	if got := rig.present(t, "lobby"); len(got) != 2 || got["alice"] != "ALICE" || got["bob"] != "BOB" {
		t.Fatalf("present: %v", got)
	}

	ask(t, alice1, "leave lobby") // alice has another session in: nothing
	alice2.CloseNow()             // her last one drops: the grace begins
	eventually(t, bound, "alice's sessions to leave", func() bool { r, _ := rig.rt.Room("lobby"); return r.Len() == 1 })
	back := dial(t, rig.url+"?user=alice")
	ask(t, back, "join lobby") // within the grace: she never left
	if got, want := rig.told(), []string{"join alice ALICE", "join bob BOB"}; !slices.Equal(got, want) {
		t.Fatalf("after alice's reconnection, told %q, want %q", got, want)
	}
	if got := rig.present(t, "lobby"); len(got) != 2 {
		t.Fatalf("present: %v", got)
	}
}

// TestPresenceGraceOver: a user who does not come back within the grace
// period departs, and is told so; without a grace period, at once.
func TestPresenceGraceOver(t *testing.T) {
	for _, grace := range []time.Duration{0, 10 * time.Millisecond} {
		rig := newPresenceRig(t, grace)
		alice := dial(t, rig.url+"?user=alice")
		bob := dial(t, rig.url+"?user=bob")
		ask(t, alice, "join lobby")
		ask(t, bob, "join lobby")
		bob.CloseNow()
		want := []string{"join alice ALICE", "join bob BOB", "leave bob BOB"}
		eventually(t, bound, "bob's departure", func() bool { return slices.Equal(rig.told(), want) })
		if got := rig.present(t, "lobby"); len(got) != 1 || got["alice"] != "ALICE" {
			t.Errorf("grace %v: present %v", grace, got)
		}
	}
}

// TestPresenceRoomGone: a room whose last member leaves goes at once,
// and its user departs; one whose last member's session ends stays while
// that user's grace runs (empty, the user present), so that she comes
// back to it unseen, and goes when the grace ends, the user departing.
// A History.Linger shorter than the grace does not take it sooner.
func TestPresenceRoomGone(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	alice := dial(t, rig.url+"?user=alice")
	ask(t, alice, "join lobby")
	ask(t, alice, "leave lobby")
	want := []string{"join alice ALICE", "leave alice ALICE"}
	if got := rig.told(); !slices.Equal(got, want) {
		t.Fatalf("told %q, want %q", got, want)
	}
	if _, ok := rig.rt.Room("lobby"); ok {
		t.Error("the empty room is still there")
	}

	ask(t, alice, "join lobby")
	alice.CloseNow()
	eventually(t, bound, "alice's session to leave", func() bool { r, ok := rig.rt.Room("lobby"); return ok && r.Len() == 0 })
	if got := rig.present(t, "lobby"); len(got) != 1 || got["alice"] != "ALICE" {
		t.Fatalf("in alice's grace, present %v: the room must stay, with her", got)
	}
	back := dial(t, rig.url+"?user=alice")
	ask(t, back, "join lobby")
	want = append(want, "join alice ALICE")
	if got := rig.told(); !slices.Equal(got, want) {
		t.Fatalf("alice back within the grace: told %q, want %q", got, want)
	}

	for _, linger := range []time.Duration{0, time.Millisecond} {
		rig := newPresenceRig(t, 50*time.Millisecond, runtime.WithRoomHistory(func(string) runtime.History {
			return runtime.History{Size: 1, Linger: linger}
		}))
		bob := dial(t, rig.url+"?user=bob")
		ask(t, bob, "join lobby")
		r, _ := rig.rt.Room("lobby")
		bob.CloseNow()
		want := []string{"join bob BOB", "leave bob BOB"}
		eventually(t, bound, "bob's departure, his grace over", func() bool { return slices.Equal(rig.told(), want) })
		eventually(t, bound, "the room to go", func() bool { _, ok := rig.rt.Room("lobby"); return !ok })
		if r.PresentCount() != 0 {
			t.Errorf("linger %v: the removed room counts %d present", linger, r.PresentCount())
		}
	}
}

// TestPresenceShutdown: Shutdown takes the rooms that only a grace holds,
// and their users depart, told.
func TestPresenceShutdown(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	alice := dial(t, rig.url+"?user=alice")
	ask(t, alice, "join lobby")
	alice.CloseNow()
	eventually(t, bound, "alice's session to leave", func() bool { r, ok := rig.rt.Room("lobby"); return ok && r.Len() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := rig.rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := rig.told(), []string{"join alice ALICE", "leave alice ALICE"}; !slices.Equal(got, want) {
		t.Errorf("told %q, want %q", got, want)
	}
	if _, ok := rig.rt.Room("lobby"); ok {
		t.Error("the room is still there")
	}
}

// TestPresenceLeave: a user whose last session leaves the room while it
// goes on departs at once, however long the grace period: the grace is
// for sessions that end, the user meaning to come back.
func TestPresenceLeave(t *testing.T) {
	rig := newPresenceRig(t, time.Hour)
	alice := dial(t, rig.url+"?user=alice")
	bob := dial(t, rig.url+"?user=bob")
	ask(t, alice, "join lobby")
	ask(t, bob, "join lobby")
	ask(t, bob, "leave lobby")
	want := []string{"join alice ALICE", "join bob BOB", "leave bob BOB"}
	if got := rig.told(); !slices.Equal(got, want) {
		t.Fatalf("told %q, want %q", got, want)
	}
	if got := rig.present(t, "lobby"); len(got) != 1 || got["alice"] != "ALICE" {
		t.Fatalf("present: %v", got)
	}
}
