package serve_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

// TestNewServerHeaderBound sends requests with headers of several sizes:
// a browser's upgrade with its cookies passes, past the bound (and
// net/http's 4 KiB of slack) is 431.
func TestNewServerHeaderBound(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	ts := httptest.NewUnstartedServer(ok)
	ts.Config = serve.NewServer("", ok)
	ts.Start()
	defer ts.Close()
	for _, tc := range []struct {
		name   string
		cookie int
		want   int
	}{
		{"no cookie", 0, http.StatusOK},
		{"4 KiB of cookies", 4 << 10, http.StatusOK},
		{"16 KiB of cookies", 16 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			req.Header.Set("Origin", ts.URL)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
			if tc.cookie > 0 {
				req.Header.Set("Cookie", "session="+strings.Repeat("x", tc.cookie))
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s, want %d", resp.Status, tc.want)
			}
		})
	}
	if s := serve.NewServer("", ok); s.ReadHeaderTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes != serve.MaxHeaderBytes {
		t.Errorf("NewServer: %+v", s)
	}
}

// TestWithMetrics: GET /metrics goes to the metrics handler and the rest
// to the page's; without a metrics handler, the page's handler gets all.
func TestWithMetrics(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	for _, tc := range []struct {
		name    string
		metrics http.Handler
		method  string
		path    string
		want    string // the handler that answers, or the status if not 200
	}{
		{"metrics", named("metrics"), http.MethodGet, "/metrics", "metrics"},
		{"the page beside", named("metrics"), http.MethodGet, "/", "page"},
		{"the WebSocket beside", named("metrics"), http.MethodGet, "/ws", "page"},
		{"POST /metrics is not for metrics", named("metrics"), http.MethodPost, "/metrics", "page"},
		{"no metrics handler", nil, http.MethodGet, "/metrics", "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			serve.WithMetrics(named("page"), tc.metrics).ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
			got := w.Body.String()
			if w.Code != http.StatusOK {
				got = strconv.Itoa(w.Code)
			}
			if got != tc.want {
				t.Errorf("%s %s: %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}
