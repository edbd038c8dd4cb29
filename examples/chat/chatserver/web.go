package chatserver

import (
	"embed"
	"net/http"

	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

// The page: plain HTML, CSS and an ES module, no build step.
//
//go:embed web
var web embed.FS

// routes serves the page at "/", the browser client modules it imports at
// "/shockwave.js" and "/msgpack.js", and the WebSocket at "/ws".
func (srv *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv.rt)
	serve.Page(mux, web, "web")
	return mux
}
