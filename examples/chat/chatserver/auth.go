package chatserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// CookieName is the name of the sign-in cookie that POST /login sets.
const CookieName = "chat_session"

// maxCookie bounds the sign-in cookie's value, checked before anything is
// decoded: one the chat signed is under 256 bytes (a name of 32 characters
// of 4 bytes, an expiry, a MAC, in base64), and any longer one is not ours.
const maxCookie = 512

// maxLoginBody bounds the body of POST /login: a name field.
const maxLoginBody = 4 << 10

// minKey is the shortest signing key New accepts, in bytes.
const minKey = 16

// user is a session's identity (runtime.Admission.Identity, read with
// session.Identity): the name its cookie was signed for. It is the only
// name the chat shows for the session.
type user struct {
	name string
}

// String is the user's name: the runtime's traces show it (user.id).
func (u user) String() string { return u.name }

// nameOf returns the signed name of s. The chat admits no session without
// one (see admit).
func nameOf(s *session.Session) (string, error) {
	u, ok := session.Identity[user](s)
	if !ok {
		return "", errors.New("chat: a session without a signed-in user")
	}
	return u.name, nil
}

// signer signs and checks sign-in cookies: the name and expiry in base64url
// and decimal, and an HMAC-SHA256 of them under a key only the server
// knows, so that a client can read its cookie but make no other.
type signer struct {
	key []byte
}

// newSigner returns a signer with key, or with 32 random bytes if key is
// empty.
func newSigner(key []byte) (*signer, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key) // never fails (crypto/rand)
	} else if len(key) < minKey {
		return nil, fmt.Errorf("chatserver: the cookie key is %d bytes long; at least %d are needed", len(key), minKey)
	}
	return &signer{key: append([]byte(nil), key...)}, nil
}

// b64 is strict, so that a value has one encoding only: a changed last
// character, whose low bits the loose decoder ignores, is refused.
var b64 = base64.RawURLEncoding.Strict()

// sign returns the cookie value for name until expires, as
// base64url(name) "." unix seconds "." base64url(HMAC of the two).
func (k *signer) sign(name string, expires time.Time) string {
	payload := b64.EncodeToString([]byte(name)) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + b64.EncodeToString(k.mac(payload))
}

func (k *signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// verify returns the name and expiry of v if this signer signed it and it
// has not expired at now.
func (k *signer) verify(v string, now time.Time) (name string, expires time.Time, ok bool) {
	if len(v) > maxCookie {
		return "", time.Time{}, false
	}
	payload, sig, found := cutLast(v, '.')
	if !found {
		return "", time.Time{}, false
	}
	mac, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, k.mac(payload)) {
		return "", time.Time{}, false
	}
	// Signed by us: what follows only reads what sign wrote.
	enc, secs, _ := strings.Cut(payload, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	expires = time.Unix(n, 0)
	raw, err := b64.DecodeString(enc)
	if err != nil || !now.Before(expires) {
		return "", time.Time{}, false
	}
	return string(raw), expires, true
}

func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// signedIn returns the name and expiry of r's sign-in cookie, if it has a
// valid one.
func (srv *Server) signedIn(r *http.Request) (string, time.Time, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return "", time.Time{}, false
	}
	return srv.keys.verify(c.Value, srv.cfg.Now())
}

// admit is the runtime's AdmitFunc: a request without a valid sign-in
// cookie is refused with 401 before the upgrade; one with a cookie becomes
// a session whose identity is the signed name, closed with 3000 when the
// cookie expires.
func (srv *Server) admit(r *http.Request) (runtime.Admission, error) {
	name, expires, ok := srv.signedIn(r)
	if !ok {
		return runtime.Admission{}, &runtime.Refusal{Status: http.StatusUnauthorized, Message: "sign in first (POST /login)"}
	}
	return runtime.Admission{Identity: user{name: name}, Expires: expires}, nil
}

// Me is the answer to POST /login and GET /me: who the cookie says the
// client is, and until when (Unix milliseconds).
type Me struct {
	Name    string `json:"name"`
	Expires int64  `json:"expires"`
}

// login signs the client in (POST /login, form field "name"): the name is
// checked as nicknames are, and the answer sets the sign-in cookie. The
// cookie is HttpOnly, so that no script of the page can read it;
// SameSite=Strict, so that no other site's page sends it (neither with a
// form to /login nor with a WebSocket to /ws); Secure as secureCookie
// decides.
func (srv *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	name, err := checkName("name", "bad_name", r.PostForm.Get("name"), maxNick)
	if err != nil {
		http.Error(w, err.(*codec.Error).Message, http.StatusBadRequest)
		return
	}
	expires := srv.cfg.Now().Add(srv.cfg.LoginTTL).Truncate(time.Second)
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    srv.keys.sign(name, expires),
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(srv.cfg.LoginTTL / time.Second),
		HttpOnly: true,
		Secure:   srv.secureCookie(r),
		SameSite: http.SameSiteStrictMode,
	})
	writeMe(w, name, expires)
}

// secureCookie reports whether the sign-in cookie sent in answer to r is
// Secure, so that the browser sends it over https only: when r came over
// TLS, when Config.SecureCookie says the site is served over https, or
// when r came from a proxy the runtime trusts (runtime.WithTrustedProxies
// in Config.Runtime) that says, in X-Forwarded-Proto or Forwarded's proto,
// that its client used https.
//
// The headers are read only from a trusted proxy, as the runtime reads
// the client's address: anyone else may write them. And they can only add
// Secure, never take it away: any "https" in them counts, even one a
// client wrote before a proxy that appends, since a Secure cookie lost on
// a page served over http only signs out the client that forged it, while
// a cookie without Secure on a site served over https may be sent in
// clear text. The sure setting behind a proxy that terminates TLS is
// Config.SecureCookie; the headers are for proxies that serve both.
func (srv *Server) secureCookie(r *http.Request) bool {
	if r.TLS != nil || srv.cfg.SecureCookie {
		return true
	}
	return srv.rt.FromTrustedProxy(r) && forwardedHTTPS(r.Header)
}

// forwardedHTTPS reports whether a proto parameter of h's Forwarded
// header (RFC 7239) or a value of its X-Forwarded-Proto is https.
func forwardedHTTPS(h http.Header) bool {
	for _, line := range h.Values("Forwarded") {
		for _, elem := range strings.Split(line, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "proto") && strings.EqualFold(strings.Trim(v, `"`), "https") {
					return true
				}
			}
		}
	}
	for _, line := range h.Values("X-Forwarded-Proto") {
		for _, v := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), "https") {
				return true
			}
		}
	}
	return false
}

// me tells the page who it is signed in as (GET /me), or answers 401: the
// page asks before every connection, since a browser does not tell a
// script why a WebSocket handshake failed.
func (srv *Server) me(w http.ResponseWriter, r *http.Request) {
	name, expires, ok := srv.signedIn(r)
	if !ok {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	writeMe(w, name, expires)
}

func writeMe(w http.ResponseWriter, name string, expires time.Time) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(Me{Name: name, Expires: expires.UnixMilli()})
}
