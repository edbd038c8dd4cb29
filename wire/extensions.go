package wire

import (
	"net/http"
	"strconv"
	"strings"
)

// The negotiation of permessage-deflate (RFC 7692 section 7.1).

const deflateName = "permessage-deflate"

// extParam is a parameter of an extension in a Sec-WebSocket-Extensions
// list (RFC 6455 section 9.1).
type extParam struct {
	name     string
	value    string // unquoted
	hasValue bool
}

// maxExtParams is the most parameters of one extension scanExtensions
// hands over: permessage-deflate has four, so an offer with more repeats
// one or has an unknown one, and is declined whatever they are.
const maxExtParams = 5

// scanExtensions calls f with the name and parameters of each extension
// of a Sec-WebSocket-Extensions field, every line of it in order, until f
// returns false. An extension with more than maxExtParams parameters is
// passed its first ones, and many set. If any of the field is malformed,
// scanExtensions reports false without calling f at all.
//
// Names and values are RFC 9110 tokens, and a value may also be a quoted
// string; empty list elements are skipped, as RFC 9110 section 5.6.1 has
// recipients do. It takes time linear in the length of the field, which
// the HTTP server bounds, and memory only for quoted values with escapes.
func scanExtensions(values []string, f func(name string, params []extParam, many bool) bool) bool {
	if !walkExtensions(values, nil) {
		return false
	}
	walkExtensions(values, f)
	return true
}

// walkExtensions parses the field, calling f (if not nil) as it goes, and
// reports whether it got to the end without finding it malformed.
func walkExtensions(values []string, f func(string, []extParam, bool) bool) bool {
	var buf [maxExtParams]extParam
	for _, v := range values {
		i := 0
		for {
			i = skipOWS(v, i)
			if i == len(v) {
				break
			}
			if v[i] == ',' {
				i++
				continue
			}
			name, j := token(v, i)
			if name == "" {
				return false
			}
			params, many := buf[:0], false
			for i = skipOWS(v, j); i < len(v) && v[i] == ';'; i = skipOWS(v, i) {
				var p extParam
				if p.name, i = token(v, skipOWS(v, i+1)); p.name == "" {
					return false
				}
				if i = skipOWS(v, i); i < len(v) && v[i] == '=' {
					i = skipOWS(v, i+1)
					ok := false
					if i < len(v) && v[i] == '"' {
						p.value, i, ok = quoted(v, i, f != nil)
					} else {
						p.value, i = token(v, i)
						ok = p.value != ""
					}
					if !ok {
						return false
					}
					p.hasValue = true
				}
				if len(params) < len(buf) {
					params = append(params, p)
				} else {
					many = true
				}
			}
			if i < len(v) && v[i] != ',' {
				return false
			}
			if f != nil && !f(name, params, many) {
				return true
			}
		}
	}
	return true
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// token returns the RFC 9110 token at s[i:], possibly empty, and where it
// ends.
func token(s string, i int) (string, int) {
	j := i
	for j < len(s) && isTchar(s[j]) {
		j++
	}
	return s[i:j], j
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoted returns the content of the quoted string at s[i:] (s[i] is '"'),
// its escapes undone if unescape (they are kept otherwise), and where it
// ends.
func quoted(s string, i int, unescape bool) (string, int, bool) {
	var b []byte
	start := i + 1
	for j := start; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			if b == nil {
				return s[start:j], j + 1, true
			}
			return string(b), j + 1, true
		case c == '\\':
			if j+1 == len(s) || !isQuotedChar(s[j+1]) {
				return "", 0, false
			}
			if b == nil && unescape {
				b = append([]byte(nil), s[start:j]...)
			}
			j++
			if b != nil {
				b = append(b, s[j])
			}
		case isQuotedChar(c):
			if b != nil {
				b = append(b, c)
			}
		default:
			return "", 0, false
		}
	}
	return "", 0, false // unterminated
}

// isQuotedChar reports whether c may stand in a quoted string: tab, space,
// visible ASCII and obs-text, not control characters.
func isQuotedChar(c byte) bool { return c == '\t' || c >= ' ' && c != 0x7F }

// deflateParams are the parameters of one permessage-deflate offer or
// response as they were written.
type deflateParams struct {
	serverNoContext, clientNoContext bool
	serverBits                       int  // 0 when absent
	clientBits                       int  // 0 when absent or without a value
	clientBitsSeen                   bool // client_max_window_bits is there
}

// readDeflateParams reads the parameters of a permessage-deflate offer (or
// response) and reports false when RFC 7692 section 7 has the offer
// declined (or the response fail the connection): a parameter that is
// unknown, repeated, or has a value it must not have, or lacks one it must
// have, or a window size out of 8-15. A response must give
// client_max_window_bits a value; an offer may not.
func readDeflateParams(params []extParam, response bool) (deflateParams, bool) {
	var d deflateParams
	var seen [4]bool
	for _, p := range params {
		var k int
		switch {
		case asciiEqualFold(p.name, "server_no_context_takeover"):
			k = 0
			d.serverNoContext = true
		case asciiEqualFold(p.name, "client_no_context_takeover"):
			k = 1
			d.clientNoContext = true
		case asciiEqualFold(p.name, "server_max_window_bits"):
			k = 2
			bits, ok := windowBits(p.value)
			if !p.hasValue || !ok {
				return d, false
			}
			d.serverBits = bits
		case asciiEqualFold(p.name, "client_max_window_bits"):
			k = 3
			d.clientBitsSeen = true
			if p.hasValue {
				bits, ok := windowBits(p.value)
				if !ok {
					return d, false
				}
				d.clientBits = bits
			} else if response {
				return d, false
			}
		default:
			return d, false
		}
		if seen[k] || k < 2 && p.hasValue {
			return d, false
		}
		seen[k] = true
	}
	return d, true
}

// windowBits parses a window size of 8 to 15, in decimal without leading
// zeros as RFC 7692 section 7.1.2 requires.
func windowBits(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 8 && n <= 15
}

// negotiateDeflate answers the client's offers of permessage-deflate: it
// takes the first offer it can honour (other extensions are ignored) and
// returns the parameters in effect and the Sec-WebSocket-Extensions value
// to answer with, or ok false to use no compression. A malformed header
// and offers with invalid parameters are declined, never failed: the
// connection goes on without compression.
//
// Every valid offer can be honoured: a server_max_window_bits below 15 is
// met with a compressor of that window, and client_max_window_bits is left
// out of the answer, since the decompressor's 32 KiB window takes any
// smaller one. In CompressionNoContextTakeover mode the answer always asks
// for no context takeover both ways; otherwise the client's own requests
// are granted and its client_no_context_takeover hint is echoed, which
// spares a 32 KiB window per connection.
//
// With mode CompressionDisabled it returns at once, allocating nothing;
// otherwise the answer it builds is allocated.
func negotiateDeflate[F fields](h F, mode CompressionMode) (p CompressionParams, resp string, ok bool) {
	if mode == CompressionDisabled {
		return p, "", false
	}
	var buf [4]string
	values := buf[:0]
	eachValue(h, "Sec-WebSocket-Extensions", func(v string) bool {
		values = append(values, v)
		return true
	})
	if len(values) == 0 {
		return p, "", false
	}
	scanExtensions(values, func(name string, params []extParam, many bool) bool {
		if !asciiEqualFold(name, deflateName) || many {
			return true
		}
		d, valid := readDeflateParams(params, false)
		if !valid {
			return true
		}
		p = CompressionParams{
			Enabled:                 true,
			ServerNoContextTakeover: d.serverNoContext || mode == CompressionNoContextTakeover,
			ClientNoContextTakeover: d.clientNoContext || mode == CompressionNoContextTakeover,
			ServerMaxWindowBits:     15,
			ClientMaxWindowBits:     15,
		}
		b := []byte(deflateName)
		if p.ServerNoContextTakeover {
			b = append(b, "; server_no_context_takeover"...)
		}
		if p.ClientNoContextTakeover {
			b = append(b, "; client_no_context_takeover"...)
		}
		if d.serverBits != 0 {
			p.ServerMaxWindowBits = d.serverBits
			b = append(b, "; server_max_window_bits="...)
			b = strconv.AppendInt(b, int64(d.serverBits), 10)
		}
		if d.clientBits != 0 {
			p.ClientMaxWindowBits = d.clientBits // what the client promised
		}
		resp, ok = string(b), true
		return false
	})
	return p, resp, ok
}

// deflateOffer is the Sec-WebSocket-Extensions value Dial sends: the
// client can take a client_max_window_bits, and in
// CompressionNoContextTakeover mode asks for no context takeover both ways.
func deflateOffer(mode CompressionMode) string {
	if mode == CompressionNoContextTakeover {
		return deflateName + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
	}
	return deflateName + "; client_max_window_bits"
}

// acceptDeflate checks the server's Sec-WebSocket-Extensions answer to
// deflateOffer(mode) and returns the parameters in effect, or what is
// wrong with it. RFC 7692 section 7.1 has a client fail the connection
// when the answer is not a valid acceptance of its offer: another
// extension, more than one, a parameter unknown, repeated or out of range,
// or no server_no_context_takeover when it was asked for. A
// client_max_window_bits in the answer is honoured (the compressor takes
// that window); server_no_context_takeover and server_max_window_bits may
// come unasked.
func acceptDeflate(h http.Header, mode CompressionMode) (CompressionParams, string) {
	values := h.Values("Sec-WebSocket-Extensions")
	if len(values) == 0 {
		return CompressionParams{}, ""
	}
	quoted := func() string { return strconv.Quote(strings.Join(values, ", ")) }
	var (
		n     int
		first string
		d     deflateParams
		valid bool
	)
	if !scanExtensions(values, func(name string, params []extParam, many bool) bool {
		if n++; n == 1 {
			first = name
			d, valid = readDeflateParams(params, true)
			valid = valid && !many
		}
		return n == 1
	}) {
		return CompressionParams{}, "malformed Sec-WebSocket-Extensions " + quoted()
	}
	switch {
	case n == 0:
		return CompressionParams{}, ""
	case mode == CompressionDisabled || !asciiEqualFold(first, deflateName):
		return CompressionParams{}, "server chose extension " + strconv.Quote(first) + ", which was not offered"
	case n > 1:
		return CompressionParams{}, "server chose more than one extension: " + quoted()
	case !valid:
		return CompressionParams{}, "invalid permessage-deflate parameters in " + quoted()
	case mode == CompressionNoContextTakeover && !d.serverNoContext:
		return CompressionParams{}, "server answered permessage-deflate without server_no_context_takeover, which was asked for"
	}
	p := CompressionParams{
		Enabled:                 true,
		ServerNoContextTakeover: d.serverNoContext,
		ClientNoContextTakeover: d.clientNoContext || mode == CompressionNoContextTakeover,
		ServerMaxWindowBits:     15,
		ClientMaxWindowBits:     15,
	}
	if d.serverBits != 0 {
		p.ServerMaxWindowBits = d.serverBits
	}
	if d.clientBits != 0 {
		p.ClientMaxWindowBits = d.clientBits
	}
	return p, ""
}
