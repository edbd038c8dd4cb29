package gameserver

import (
	"embed"
	"net/http"

	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

// The page: plain HTML, CSS and an ES module drawing on a canvas, no build
// step.
//
//go:embed web
var web embed.FS

// routes serves the page at "/", the browser client modules it imports,
// the WebSocket at "/ws" and the figures at "/stats".
func (srv *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv.rt)
	mux.HandleFunc("GET /stats", srv.serveStats)
	serve.Page(mux, web, "web")
	return mux
}
