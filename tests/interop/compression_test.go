package interop

import (
	"fmt"
	"testing"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

// deflateSizes are the message sizes of TestCompression: empty, under and
// over the threshold, over the 32 KiB window, and large.
var deflateSizes = []int{0, 100, 1000, 40_000, 1 << 20}

// TestCompression exchanges compressed messages (permessage-deflate, RFC
// 7692) with gws both ways, in both topologies, for each mode of our side
// against gws with and without context takeover, and with a small window
// (which gws's server imposes on our client with client_max_window_bits):
// messages of every size, whole and (from our side, and from gws's
// WriteFile) in fragments, arrive intact.
func TestCompression(t *testing.T) {
	peers := []struct {
		name string
		pd   gws.PermessageDeflate
	}{
		// gws defaults a window of 12 bits with context takeover.
		{"gws-takeover", gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true}},
		{"gws-no-takeover", gws.PermessageDeflate{Enabled: true}},
		{"gws-window-9", gws.PermessageDeflate{Enabled: true, ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 9}},
	}
	for _, topo := range topologies {
		for _, peer := range peers {
			for _, mode := range []wire.CompressionMode{wire.CompressionNoContextTakeover, wire.CompressionContextTakeover} {
				t.Run(fmt.Sprintf("%s/%s/ours=%v", topo.name, peer.name, mode), func(t *testing.T) {
					p := topo.open(t, config{ours: wire.Options{Compression: mode}, peerDeflate: peer.pd})
					cp := p.ours.Compression()
					if !cp.Enabled {
						t.Fatalf("no compression negotiated: %+v", cp)
					}
					t.Logf("negotiated %+v", cp)
					p.startReader()
					for _, n := range deflateSizes {
						for _, op := range opcodes {
							want := prose(op, n, n)
							ok := t.Run(fmt.Sprintf("ours-to-gws/%v/%d", op, n), func(t *testing.T) {
								if err := p.ours.WriteMessage(op, want); err != nil {
									t.Fatalf("WriteMessage: %v", err)
								}
								checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), op, want)
							}) && t.Run(fmt.Sprintf("ours-fragments-to-gws/%v/%d", op, n), func(t *testing.T) {
								if err := writeFragments(p.ours, op, split(want, n/3, n/3), nil); err != nil {
									t.Fatalf("WriteFrame: %v", err)
								}
								checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), op, want)
							}) && t.Run(fmt.Sprintf("gws-to-ours/%v/%d", op, n), func(t *testing.T) {
								werr := goErr(func() error { return p.peer.WriteMessage(gws.Opcode(op), want) })
								checkMessage(t, recv(t, p.msgs, "our side to receive"), op, want)
								if err := recv(t, werr, "gws to write"); err != nil {
									t.Fatalf("gws WriteMessage: %v", err)
								}
							}) && t.Run(fmt.Sprintf("gws-fragments-to-ours/%v/%d", op, n), func(t *testing.T) {
								werr := goErr(func() error {
									return p.peer.WriteFile(gws.Opcode(op), &fragmentReader{frags: chunks(want, 16<<10)})
								})
								checkMessage(t, recv(t, p.msgs, "our side to receive"), op, want)
								if err := recv(t, werr, "gws to write"); err != nil {
									t.Fatalf("gws WriteFile: %v", err)
								}
							})
							if !ok {
								return // the connection is out of step
							}
						}
					}
				})
			}
		}
	}
}
