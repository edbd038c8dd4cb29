package js

import (
	"io/fs"
	"regexp"
	"testing"
)

// TestFSHoldsImports checks that every module in FS finds the modules it
// imports by relative path next to it in FS, so a server that serves FS
// serves a client that loads.
func TestFSHoldsImports(t *testing.T) {
	imports := regexp.MustCompile(`(?m)^import\s[^'"]*['"]\./([^'"]+)['"]`)
	mods, err := fs.Glob(FS, "*.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 2 {
		t.Errorf("FS holds %v, want shockwave.js and msgpack.js", mods)
	}
	for _, m := range mods {
		src, err := fs.ReadFile(FS, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range imports.FindAllSubmatch(src, -1) {
			if _, err := fs.Stat(FS, string(im[1])); err != nil {
				t.Errorf("%s imports ./%s, which FS lacks: %v", m, im[1], err)
			}
		}
	}
}
