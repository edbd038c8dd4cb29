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
// "/shockwave.js" and "/msgpack.js", the sign-in at "/login" and "/me", and
// the WebSocket at "/ws". POST /login refuses cross-origin requests
// (http.CrossOriginProtection), so that another site cannot sign a visitor
// in under a name of its choosing.
func (srv *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv.rt)
	mux.Handle("POST /login", http.NewCrossOriginProtection().Handler(http.HandlerFunc(srv.login)))
	mux.HandleFunc("GET /me", srv.me)
	serve.Page(mux, web, "web")
	return mux
}
