package chatserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// TestLogin: POST /login checks the name as nicknames were checked, and
// sets a cookie no script can read and no other site's page sends; GET /me
// says who the cookie is for.
func TestLogin(t *testing.T) {
	_, url := server(t, chatserver.Config{})

	resp, err := http.PostForm(url+"/login", neturl.Values{"name": {"  Zoë ☕ "}})
	if err != nil {
		t.Fatal(err)
	}
	var me chatserver.Me
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || me.Name != "Zoë ☕" {
		t.Fatalf("login: %s, %+v", resp.Status, me)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies", len(cookies))
	}
	c := cookies[0]
	day := 24 * time.Hour
	if c.Name != chatserver.CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure ||
		c.MaxAge != int(day/time.Second) || time.Until(c.Expires) > day || time.Until(c.Expires) < day-time.Minute {
		t.Errorf("cookie %s", c)
	}
	if me.Expires != c.Expires.UnixMilli() {
		t.Errorf("expires %d, the cookie's %v", me.Expires, c.Expires)
	}

	whoAmI := func(cookie string) (int, chatserver.Me) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+"/me", nil)
		if cookie != "" {
			req.Header.Set("Cookie", chatserver.CookieName+"="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var me chatserver.Me
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(resp.Body).Decode(&me)
		}
		return resp.StatusCode, me
	}
	if code, me := whoAmI(c.Value); code != http.StatusOK || me.Name != "Zoë ☕" {
		t.Errorf("GET /me: %d %+v", code, me)
	}
	if code, _ := whoAmI(""); code != http.StatusUnauthorized {
		t.Errorf("GET /me without a cookie: %d", code)
	}
	if code, _ := whoAmI(c.Value + "x"); code != http.StatusUnauthorized {
		t.Errorf("GET /me with a changed cookie: %d", code)
	}

	for _, tc := range []struct{ name, says string }{
		{"", "the name is empty"},
		{"   ", "the name is empty"},
		{strings.Repeat("n", 33), "the name is 33 characters long; at most 32 are allowed"},
		{"a\x00b", "the name has characters that cannot be shown"},
		{"a\u200bb", "the name has characters that cannot be shown"}, // zero-width space
		{"a\nb", "the name has characters that cannot be shown"},
	} {
		resp, err := http.PostForm(url+"/login", neturl.Values{"name": {tc.name}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != tc.says || len(resp.Cookies()) != 0 {
			t.Errorf("login as %q: %s %q, %d cookies", tc.name, resp.Status, body, len(resp.Cookies()))
		}
	}
	login(t, url, strings.Repeat("n", 32)) // the longest name

	// A form posted by another site's page is refused.
	req, _ := http.NewRequest(http.MethodPost, url+"/login", strings.NewReader("name=mallory"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site login: %s, %d cookies", resp.Status, len(resp.Cookies()))
	}
}

// TestLoginTLS: over TLS the cookie is Secure.
func TestLoginTLS(t *testing.T) {
	srv, err := chatserver.New(chatserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	resp, err := hs.Client().PostForm(hs.URL+"/login", neturl.Values{"name": {"ada"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != http.StatusOK || len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("login over TLS: %s, cookies %v", resp.Status, cs)
	}
}

// TestCookieSecure: the sign-in cookie is Secure over TLS, with
// SecureCookie, and when a trusted proxy says its client used https; a
// client's own X-Forwarded-Proto or Forwarded changes nothing, and no
// header makes the cookie less secure than TLS or SecureCookie make it.
// Every other attribute is the same in each case.
func TestCookieSecure(t *testing.T) {
	behindProxy := []runtime.Option{runtime.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"))}
	const (
		client  = "203.0.113.7:50000"
		proxy   = "10.1.2.3:40000"
		proxy6  = "[fd00::1]:40000"
		mapped  = "[::ffff:10.1.2.3]:40000"
		unknown = "not an address"
	)
	for _, tc := range []struct {
		name   string
		cfg    chatserver.Config
		remote string
		tls    bool
		header http.Header
		secure bool
	}{
		{"plain http", chatserver.Config{}, client, false, nil, false},
		{"TLS", chatserver.Config{}, client, true, nil, true},
		{"SecureCookie over http", chatserver.Config{SecureCookie: true}, client, false, nil, true},

		{"trusted proxy, X-Forwarded-Proto https", chatserver.Config{Runtime: behindProxy}, proxy, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted proxy, Forwarded proto=https", chatserver.Config{Runtime: behindProxy}, proxy, false,
			http.Header{"Forwarded": {`for=203.0.113.7;proto="HTTPS"`}}, true},
		{"trusted IPv6 proxy, X-Forwarded-Proto https", chatserver.Config{Runtime: behindProxy}, proxy6, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted proxy as a mapped address", chatserver.Config{Runtime: behindProxy}, mapped, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"trusted proxy, X-Forwarded-Proto http", chatserver.Config{Runtime: behindProxy}, proxy, false,
			http.Header{"X-Forwarded-Proto": {"http"}}, false},
		{"trusted proxy, no header", chatserver.Config{Runtime: behindProxy}, proxy, false, nil, false},
		// A client's https before the proxy's http: unsure, so Secure,
		// which costs only that client its sign-in.
		{"trusted proxy appending to a client's https", chatserver.Config{Runtime: behindProxy}, proxy, false,
			http.Header{"X-Forwarded-Proto": {"https, http"}}, true},

		{"untrusted client, forged X-Forwarded-Proto https", chatserver.Config{Runtime: behindProxy}, client, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"untrusted client, forged Forwarded proto=https", chatserver.Config{Runtime: behindProxy}, client, false,
			http.Header{"Forwarded": {"proto=https"}}, false},
		{"no trusted proxy, X-Forwarded-Proto https", chatserver.Config{}, proxy, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"unreadable peer, X-Forwarded-Proto https", chatserver.Config{Runtime: behindProxy}, unknown, false,
			http.Header{"X-Forwarded-Proto": {"https"}}, false},

		{"TLS, forged X-Forwarded-Proto http", chatserver.Config{}, client, true,
			http.Header{"X-Forwarded-Proto": {"http"}}, true},
		{"SecureCookie, trusted proxy says http", chatserver.Config{SecureCookie: true, Runtime: behindProxy}, proxy, false,
			http.Header{"X-Forwarded-Proto": {"http"}, "Forwarded": {"proto=http"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := chatserver.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			target := "http://chat.example/login"
			if tc.tls {
				target = "https://chat.example/login" // httptest sets r.TLS
			}
			r := httptest.NewRequest(http.MethodPost, target, strings.NewReader("name=ada"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, vs := range tc.header {
				r.Header[k] = vs
			}
			r.RemoteAddr = tc.remote
			if (r.TLS != nil) != tc.tls {
				t.Fatalf("r.TLS is %v", r.TLS)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)

			cs := w.Result().Cookies()
			if w.Code != http.StatusOK || len(cs) != 1 {
				t.Fatalf("login: %d, cookies %v", w.Code, cs)
			}
			c := cs[0]
			if c.Name != chatserver.CookieName || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tc.secure {
				t.Errorf("Set-Cookie: %s; want HttpOnly, SameSite=Strict, Path=/, Secure %v", w.Header().Get("Set-Cookie"), tc.secure)
			}
		})
	}
}

// TestAdmission: /ws without a valid sign-in cookie is refused with 401
// before the upgrade, never a 101: no cookie, a cookie with any one byte
// changed, an expired one, one signed with another key, an oversized one.
// A valid one is admitted under its name.
func TestAdmission(t *testing.T) {
	srv, url := server(t, chatserver.Config{Key: []byte("0123456789abcdef0123456789abcdef")})
	other, err := chatserver.New(chatserver.Config{Key: []byte("another key, as long as the first")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown(context.Background())
	valid := login(t, url, "ada")

	refused := func(what string, h http.Header) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		conn, resp, err := wire.Dial(ctx, wsURL(url), &wire.DialOptions{Subprotocols: []string{"shockwave.json"}, Header: h})
		if err == nil {
			conn.CloseNow()
			t.Fatalf("%s: admitted", what)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: %v, response %v; want 401", what, err, resp)
		}
	}
	refused("no cookie", nil)
	refused("another cookie", http.Header{"Cookie": {"other=" + valid}})
	refused("an expired cookie", cookieHeader(chatserver.Sign(srv, "ada", time.Now().Add(-time.Second))))
	refused("another key's cookie", cookieHeader(chatserver.Sign(other, "ada", time.Now().Add(time.Hour))))
	refused("an oversized cookie", cookieHeader(strings.Repeat("A", 600)+"."+valid))
	refused("an empty cookie", cookieHeader(""))
	// Every byte of the cookie, changed to another character that may be
	// in a cookie (base64url, digits, the dots).
	for i := range len(valid) {
		b := []byte(valid)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		refused(fmt.Sprintf("a cookie with byte %d changed", i), cookieHeader(string(b)))
	}

	// The name is the cookie's, whatever the join says.
	ada := dialCookie(t, url, "ada", "ada", valid)
	ada.joinWith("lobby", map[string]string{"nick": "bob"}) // checks the state's nick
	wantPresence(ada, "lobby", "ada", true)
}

// TestExpiry: a session whose cookie expires is closed with 3000, and its
// user is gone from the room.
func TestExpiry(t *testing.T) {
	srv, url := server(t, chatserver.Config{Grace: noGrace})
	bob := dial(t, url, "bob")
	bob.join("lobby", 0)

	// Whole seconds in the cookie: at least a second from now.
	ada := dialCookie(t, url, "ada", "ada", chatserver.Sign(srv, "ada", time.Now().Add(2*time.Second)))
	ada.join("lobby", 0)
	if code := ada.closed(); code != wire.StatusUnauthorized {
		t.Fatalf("closed with %v, want 3000", code)
	}
	wantPresence(bob, "lobby", "ada", true)
	wantPresence(bob, "lobby", "ada", false)
}

// TestKey: a key too short to be safe is refused.
func TestKey(t *testing.T) {
	if _, err := chatserver.New(chatserver.Config{Key: []byte("short")}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}
