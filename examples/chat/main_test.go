package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
)

// bound is how long the tests wait for what should happen: far more than
// a correct run needs on a busy 2-core machine under -race.
const bound = 20 * time.Second

// TestMetrics: with OTEL_METRICS_EXPORTER=prometheus, the chat serves
// /metrics beside its page, and once a client has signed in, joined a room
// and spoken, the page lists Shockwave's metrics of it.
func TestMetrics(t *testing.T) {
	url := start(t, "prometheus")

	if code, _ := get(t, url+"/"); code != http.StatusOK {
		t.Errorf("GET /: %d: the page is not served beside /metrics", code)
	}
	c := signIn(t, url, "alice")
	request(t, c, codec.EventJoin, nil)
	request(t, c, chatserver.EventSend, chatserver.SendRequest{Text: "hello"})

	// The runtime counts a message once its handler has returned, which
	// may be after the reply has gone: read until both are counted.
	var page string
	want := map[string]float64{
		"shockwave_sessions_active":         1,
		"shockwave_messages_received_total": 2,
	}
	for deadline := time.Now().Add(bound); ; time.Sleep(10 * time.Millisecond) {
		var code int
		code, page = get(t, url+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d\n%s", code, page)
		}
		got := values(page)
		if got["shockwave_sessions_active"] == want["shockwave_sessions_active"] &&
			got["shockwave_messages_received_total"] == want["shockwave_messages_received_total"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, /metrics has %v of %v:\n%s", bound, got, want, page)
		}
	}
	for _, name := range []string{
		"# TYPE shockwave_sessions_active gauge",
		"# TYPE shockwave_messages_received_total counter",
		"shockwave_frames_sent_total{",
		"shockwave_bytes_received_total{",
		"target_info{",   // the resource
		"go_goroutines ", // the Go runtime's, from the registry of otelsetup's own
	} {
		if !strings.Contains(page, name) {
			t.Errorf("/metrics has no %q:\n%s", name, page)
		}
	}
}

// TestNoMetrics: without the prometheus exporter, there is no /metrics.
func TestNoMetrics(t *testing.T) {
	url := start(t, "none")
	if code, _ := get(t, url+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics: %d, want 404", code)
	}
	if code, _ := get(t, url+"/"); code != http.StatusOK {
		t.Errorf("GET /: %d", code)
	}
}

// start sets telemetry up from the environment as main does, with
// OTEL_METRICS_EXPORTER=metrics and no traces, and serves the chat on
// loopback until the test ends, when it shuts the chat down and then the
// telemetry.
func start(t *testing.T, metrics string) string {
	t.Helper()
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", metrics)
	tel, err := otelsetup.Init(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after serveChat's: cleanups run last first
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("telemetry shutdown: %v", err)
		}
	})
	chat, h, err := newServer(chatserver.Config{}, tel)
	if err != nil {
		t.Fatal(err)
	}
	return serveChat(t, chat, h)
}

// serveChat serves h, the handler of chat, on loopback until the test ends,
// when it shuts the chat down, and returns its URL.
func serveChat(t *testing.T, chat *chatserver.Server, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := chat.Shutdown(ctx); err != nil {
			t.Errorf("chat shutdown: %v", err)
		}
		srv.Close()
	})
	return srv.URL
}

// get returns the status and body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// values reads the samples of a page of metrics, by name without labels;
// a name with several label sets gets the sum of their values.
func values(page string) map[string]float64 {
	v := map[string]float64{}
	for _, line := range strings.Split(page, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name, rest = line[:i], line[strings.LastIndexByte(line, '}')+1:]
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			v[name] += f
		}
	}
	return v
}

// signIn signs in as name (POST /login) and connects a client to the
// chat, closed when the test ends.
func signIn(t *testing.T, base, name string) *codec.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := codec.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", codec.WithHeader(cookieHeader(t, base, name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// cookieHeader signs in as name (POST /login) and returns the header
// that carries the sign-in cookie.
func cookieHeader(t *testing.T, base, name string) http.Header {
	t.Helper()
	resp, err := http.PostForm(base+"/login", url.Values{"name": {name}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := cookieValue(resp)
	if resp.StatusCode != http.StatusOK || cookie == "" {
		t.Fatalf("sign in: %s, cookie %q", resp.Status, cookie)
	}
	return http.Header{"Cookie": {chatserver.CookieName + "=" + cookie}}
}

// cookieValue is the sign-in cookie's value in resp.
func cookieValue(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == chatserver.CookieName {
			return c.Value
		}
	}
	return ""
}

// request sends a request to the lobby and waits for its reply, which
// must not be an error.
func request(t *testing.T, c *codec.Client, event string, data any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if _, err := codec.Request[struct{}](ctx, c, event, data, codec.InRoom("lobby")); err != nil {
		t.Fatalf("%s: %v", event, err)
	}
}
