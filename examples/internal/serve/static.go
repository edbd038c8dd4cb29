package serve

import (
	"io/fs"
	"net/http"

	"github.com/shockwave-go/shockwave/codec/js"
)

// Static adds the headers of an example page's files: a
// Content-Security-Policy that allows the page's own scripts, styles and
// WebSocket and nothing else (no inline script, so even an injected element
// could run nothing), and no caching, so that a new build shows at once.
func Static(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// BrowseAddr turns a listening address such as ":8080" into one to open
// in a browser.
func BrowseAddr(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "localhost" + addr
	}
	return addr
}

// Page mounts an example's web page on mux: the files of dir in web at
// "/", and the browser client modules they import (codec/js) at
// "/shockwave.js" and "/msgpack.js", all with Static's headers.
func Page(mux *http.ServeMux, web fs.FS, dir string) {
	page, err := fs.Sub(web, dir)
	if err != nil {
		panic(err) // an embedded directory: it cannot fail
	}
	lib := Static(http.FileServerFS(js.FS)) // shockwave.js imports msgpack.js
	mux.Handle("GET /shockwave.js", lib)
	mux.Handle("GET /msgpack.js", lib)
	mux.Handle("GET /", Static(http.FileServerFS(page)))
}
