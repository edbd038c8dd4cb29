package js

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
	missing := func(what string) {
		t.Helper()
		msg := what + ": run `npm ci --prefix codec/js` (Node.js 20 or later) to enable this test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	tsc := filepath.Join("node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		missing("the npm package typescript is not installed in codec/js")
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
