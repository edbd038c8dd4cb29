package chatserver

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/shockwave-go/shockwave/codec/js"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

// The page: plain HTML, CSS and an ES module, no build step.
//
//go:embed web
var web embed.FS

// routes serves the page at "/", the browser client module it imports at
// "/shockwave.js", and the WebSocket at "/ws".
func (srv *Server) routes() *http.ServeMux {
	page, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embed has the directory: it cannot fail
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv.rt)
	mux.Handle("GET /shockwave.js", serve.Static(http.FileServerFS(js.FS)))
	mux.Handle("GET /", serve.Static(http.FileServerFS(page)))
	return mux
}
