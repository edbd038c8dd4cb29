package js

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTypeScriptDeclarations type-checks shockwave.d.ts and msgpack.d.ts
// with types-check.ts, which uses every declaration as an application
// would and holds wrong uses that must be refused (// @ts-expect-error):
// `tsc -p codec/js`, strict, emitting nothing (tsconfig.json). It needs
// node and the TypeScript of package.json, installed by
// `npm ci --prefix codec/js`; without them it skips, except under CI,
// where it fails. That every export of the modules is declared is checked
// by types.test.js, with node --test.
func TestTypeScriptDeclarations(t *testing.T) {
	const setup = "run `npm ci --prefix codec/js` (Node.js 20 or later)"
	node, _ := findNode(t, setup)
	tsc := filepath.Join("node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		missing(t, "the npm package typescript is not installed in codec/js", setup)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	version, err := exec.CommandContext(ctx, node, tsc, "--version").Output()
	if err != nil {
		t.Fatalf("tsc --version: %v", err)
	}
	cmd := exec.CommandContext(ctx, node, tsc, "-p", ".", "--noEmit", "--pretty", "false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tsc -p codec/js (%s): %v\n%s", strings.TrimSpace(string(version)), err, out)
	}
	t.Logf("tsc -p codec/js: %s, no errors", strings.TrimSpace(string(version)))
}

// findNode returns the path of Node.js 20 or later and its major version,
// or calls missing, with setup, without it.
func findNode(t *testing.T, setup string) (string, int) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed", setup)
	}
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing(t, "node --version: "+err.Error(), setup)
	}
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(v)), ".", 2)[0], "v"))
	if major < 20 {
		missing(t, "node "+strings.TrimSpace(string(v))+" is too old", setup)
	}
	return node, major
}

// missing skips the test for want of what, saying what to set up to run
// it, except under CI, which sets everything up: there it fails.
func missing(t *testing.T, what, setup string) {
	t.Helper()
	msg := what + ": " + setup + " to enable this test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
