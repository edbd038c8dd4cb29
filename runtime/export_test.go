package runtime

import "unsafe"

// TracedUpgrades returns how many sessions' upgrade spans rt keeps for
// linking, for tests to check that none is left behind.
func TracedUpgrades(rt *Runtime) int {
	if rt.tel.upgrades == nil {
		return 0
	}
	return rt.tel.upgrades.Size()
}

// Admit runs rt's admission of an upgrade request from remote (a
// RemoteAddr), as ServeHTTP does before the upgrade, so that tests can
// try addresses no socket has. It returns the refusal's status, or 0 and
// the function that gives the counts back.
func Admit(rt *Runtime, remote string) (status int, release func()) {
	ip, _ := clientIP(remote)
	key, f := rt.adm.admit(ip)
	if f.status != 0 {
		return f.status, nil
	}
	return 0, func() { rt.adm.release(key) }
}

// Admitted returns what rt's admission counts: the sessions, the entries
// of its address table, and the entries the table holds, for tests to
// check that nothing is left behind.
func Admitted(rt *Runtime) (sessions, entries, stored int) {
	if rt.adm.addrs != nil {
		stored = rt.adm.addrs.Size()
	}
	return int(rt.adm.live.Load()), int(rt.adm.entries.Load()), stored
}

// MemberSize is the size of a registry entry, whose padding holds the
// client address's key.
const MemberSize = unsafe.Sizeof(member{})

// Enabled is the telemetry's check of a provider.
func Enabled(p any) bool { return enabled(p) }

// Outcome and CloseCause are the names the telemetry gives a frame's end
// for one session and a session's end.
var (
	Outcome    = outcome
	PolicyOf   = policyOf
	CloseCause = closeCause
)
