package chatserver

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/shockwave-go/shockwave/codec/js"
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
	mux.Handle("GET /shockwave.js", static(http.FileServerFS(js.FS)))
	mux.Handle("GET /", static(http.FileServerFS(page)))
	return mux
}

// static adds the headers of the page's files: a Content-Security-Policy
// that allows the page's own scripts, styles and WebSocket and nothing
// else (no inline script, so even an injected element could run nothing),
// and no caching, so that a new build shows at once.
func static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
