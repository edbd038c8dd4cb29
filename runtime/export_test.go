package runtime

// TracedUpgrades returns how many sessions' upgrade spans rt keeps for
// linking, for tests to check that none is left behind.
func TracedUpgrades(rt *Runtime) int {
	if rt.tel.upgrades == nil {
		return 0
	}
	return rt.tel.upgrades.Size()
}
