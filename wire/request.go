package wire

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"unsafe"
)

// The opening handshake read from raw bytes. Shockwave's event loop serves
// WebSocket connections without net/http, whose request costs a few
// kilobytes of garbage (a bufio.Reader, a map, a string per field): an idle
// connection must cost none. So the loop reads the request head into a
// buffer of its own, parses it in place with ParseRequest and answers it
// with AppendAccept or AppendRefusal, by the same checks as Accept.

// maxRequestFields is the most header fields a Request holds; a head with
// more is refused with 431. Browsers send about 15.
const maxRequestFields = 64

// ErrIncomplete is returned by ParseRequest when the bytes do not hold the
// whole request head yet: the caller reads more and calls it again.
var ErrIncomplete = errors.New("websocket: incomplete request head")

// Refusals of a malformed head, shared (see ParseRequest).
var (
	errRequestLine = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: malformed request line"}
	errTarget      = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: request-target is not a path (origin-form)"}
	errVersion     = &HandshakeError{Status: http.StatusHTTPVersionNotSupported, Msg: "websocket: HTTP version not supported"}
	errBareLF      = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: line not ended by CRLF"}
	errFold        = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: field line starts with whitespace (obs-fold)"}
	errFieldName   = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: malformed field name"}
	errFieldValue  = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: control character in field value"}
	errTooMany     = &HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, Msg: "websocket: more than 64 header fields"}
	errHeadSize    = &HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, Msg: "websocket: request head over 4 GiB"}
	errHost        = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: HTTP/1.1 request without one Host field"}
	errLength      = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: malformed Content-Length"}
	errBody        = &HandshakeError{Status: http.StatusBadRequest, Msg: "websocket: upgrade request with a body"}
)

// span is where a part of the head lies in Request.b.
type span struct{ start, end uint32 }

// Request is the head of an HTTP/1.1 request (the request line and the
// header fields), parsed in place by ParseRequest: it refers to the bytes
// given to ParseRequest, which must stay unchanged while it is used, and
// the slices its methods return are views of them (copy to keep). It
// allocates nothing. A Request is about 1 KiB and may be reused for the
// next request, but not read while ParseRequest writes it.
type Request struct {
	b              []byte // the head, through the empty line that ends it
	method, target span
	minor          uint8 // HTTP/1.minor
	n              int   // fields in use
	fields         [maxRequestFields]struct{ name, value span }
}

// ParseRequest parses the request head at the start of b into r and
// returns the length of the head, through the empty line that ends it.
// The bytes after it are the client's: frames sent right after the
// handshake. r is valid only when ParseRequest returns a nil error.
//
// It returns ErrIncomplete when b does not hold the whole head yet; the
// caller then reads more, up to a bound of its own (16 KiB, say), and
// answers 431 past it. A request line that is complete is judged at
// once, so garbage is refused without waiting for the bound. Each call
// looks for the end of the head first, with bytes.Index (vectorised), and
// only then parses, in one pass: a call on a growing buffer that is still
// incomplete costs a scan of it and of its request line, about 2 µs for
// 16 KiB, and nothing else.
//
// Otherwise it returns a *HandshakeError with the status to refuse the
// request with (AppendRefusal writes it): 505 for an HTTP version other
// than 1.0 and 1.1, 431 for more than 64 fields, and 400 for the rest:
//   - a malformed request line, or a request-target that is not a path
//     ("/chat?room=x"): the absolute form and "*" are refused, since a
//     browser sends neither to a WebSocket server;
//   - a line ended by a bare LF without CR: RFC 9112 section 2.2 lets a
//     server take one as a line ending, as net/http does, but browsers
//     never send one and reading lines two ways is how requests are
//     smuggled;
//   - a field line that starts with whitespace (obs-fold), a field name
//     that is not a token or has whitespace before its colon, a control
//     character in a value;
//   - an HTTP/1.1 request without a Host field, or one with two (RFC 9112
//     section 3.2);
//   - a body: Transfer-Encoding, or a Content-Length other than 0
//     (several must agree). An upgrade request has none.
//
// The *HandshakeError values are shared, so that garbage costs no
// allocation: read them, do not change them.
//
// Whatever ParseRequest accepts, http.ReadRequest reads the same way
// (FuzzParseRequest checks it), and all it refuses, ReadRequest refuses
// too, but for the bare LF, the absolute form and bodies.
func ParseRequest(r *Request, b []byte) (int, error) {
	n, err := r.parse(b)
	if err != nil {
		// Left empty, r's methods find nothing rather than panic.
		r.b, r.n, r.method, r.target = nil, 0, span{}, span{}
		return 0, err
	}
	return n, nil
}

func (r *Request) parse(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if lf := bytes.IndexByte(b, '\n'); lf >= 0 {
			if err := r.parseRequestLine(b, lf); err != nil {
				return 0, err
			}
		}
		return 0, ErrIncomplete
	}
	if uint64(end) > math.MaxUint32-4 {
		return 0, errHeadSize
	}
	r.b, r.n = b[:end+4], 0
	lf := bytes.IndexByte(r.b, '\n')
	if err := r.parseRequestLine(r.b, lf); err != nil {
		return 0, err
	}
	for i := lf + 1; i < end+2; {
		lf := i + bytes.IndexByte(r.b[i:], '\n')
		if err := r.parseField(r.b, i, lf); err != nil {
			return 0, err
		}
		i = lf + 1
	}
	if err := r.checkFraming(); err != nil {
		return 0, err
	}
	return len(r.b), nil
}

// parseRequestLine parses the request line, which ends with b[lf].
func (r *Request) parseRequestLine(b []byte, lf int) error {
	if lf == 0 || b[lf-1] != '\r' {
		return errBareLF
	}
	line := b[:lf-1]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return errRequestLine
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return errRequestLine
	}
	sp2 += sp1 + 1
	switch proto := line[sp2+1:]; string(proto) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		if len(proto) == len("HTTP/1.1") && string(proto[:5]) == "HTTP/" &&
			isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]) {
			return errVersion
		}
		return errRequestLine
	}
	if !validTarget(line[sp1+1 : sp2]) {
		return errTarget
	}
	r.method = span{0, uint32(sp1)}
	r.target = span{uint32(sp1 + 1), uint32(sp2)}
	return nil
}

// validTarget reports whether t is a request-target in origin-form made
// of visible ASCII, its path without malformed percent-escapes: what
// url.ParseRequestURI takes for a path.
func validTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	inPath := true
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c <= ' ' || c >= 0x7F:
			return false
		case c == '?':
			inPath = false
		case c == '%' && inPath:
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
		}
	}
	return true
}

// parseField parses the field line b[i:lf] (lf is its LF) into the next
// field of r.
func (r *Request) parseField(b []byte, i, lf int) error {
	if lf == i || b[lf-1] != '\r' {
		return errBareLF
	}
	line := b[i : lf-1]
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return errFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return errFieldName
	}
	v := colon + 1
	for _, c := range line[v:] {
		if c < ' ' && c != '\t' || c == 0x7F {
			return errFieldValue
		}
	}
	e := len(line)
	for v < e && (line[v] == ' ' || line[v] == '\t') {
		v++
	}
	for e > v && (line[e-1] == ' ' || line[e-1] == '\t') {
		e--
	}
	if r.n == maxRequestFields {
		return errTooMany
	}
	f := &r.fields[r.n]
	f.name = span{uint32(i), uint32(i + colon)}
	f.value = span{uint32(i + v), uint32(i + e)}
	r.n++
	return nil
}

// checkFraming refuses what RFC 9112 section 3.2 has a server refuse of
// the Host fields, and a request with a body.
func (r *Request) checkFraming() error {
	hosts, length := 0, ""
	for k := range r.n {
		name, value := r.view(r.fields[k].name), r.view(r.fields[k].value)
		switch {
		case asciiEqualFold(name, "host"):
			hosts++
		case asciiEqualFold(name, "transfer-encoding"):
			return errBody
		case asciiEqualFold(name, "content-length"):
			// Digits only, so no number is computed that could
			// overflow; net/http refuses lengths that differ.
			if value == "" || length != "" && value != length {
				return errLength
			}
			length = value
			for i := range len(value) {
				if !isDigit(value[i]) {
					return errLength
				}
				if value[i] != '0' {
					return errBody
				}
			}
		}
	}
	if hosts > 1 || hosts == 0 && r.minor == 1 {
		return errHost
	}
	return nil
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return len(b) > 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// view returns the bytes of s as a string, without copying: a string
// that aliases r.b, which the caller of ParseRequest keeps unchanged while
// r is used. The handshake's functions read views during their call and
// keep only copies (a message is concatenated, a subprotocol is one of the
// server's strings), so no view outlives the call that made it.
func (r *Request) view(s span) string {
	if s.end == s.start {
		return ""
	}
	return unsafe.String(&r.b[s.start], s.end-s.start)
}

// slice returns the bytes of s, capped so that an append cannot write over
// what follows.
func (r *Request) slice(s span) []byte { return r.b[s.start:s.end:s.end] }

// next returns the index of the first field at or after i named name, in
// any case, or -1.
func (r *Request) next(name string, i int) int {
	for ; i < r.n; i++ {
		if asciiEqualFold(r.view(r.fields[i].name), name) {
			return i
		}
	}
	return -1
}

// Method returns the request's method ("GET").
func (r *Request) Method() []byte { return r.slice(r.method) }

// Target returns the request-target as sent: a path, with the query if
// there is one ("/chat?room=x").
func (r *Request) Target() []byte { return r.slice(r.target) }

// Header returns the value of the first field named name, compared
// ignoring ASCII case, without the whitespace around it; nil if there is
// no such field (and an empty slice if its value is empty).
func (r *Request) Header(name string) []byte {
	if i := r.next(name, 0); i >= 0 {
		return r.slice(r.fields[i].value)
	}
	return nil
}

// Values calls f with the value of each field named name, in order, until
// f returns false. Names are compared ignoring ASCII case; values are as
// Header returns them.
func (r *Request) Values(name string, f func(value []byte) bool) {
	for i := r.next(name, 0); i >= 0; i = r.next(name, i+1) {
		if !f(r.slice(r.fields[i].value)) {
			return
		}
	}
}

// Fields calls f with the name and value of each field, in order, until f
// returns false. Values are as Header returns them.
func (r *Request) Fields(f func(name, value []byte) bool) {
	for i := range r.n {
		if !f(r.slice(r.fields[i].name), r.slice(r.fields[i].value)) {
			return
		}
	}
}

// CheckUpgrade does for r what the package's CheckUpgrade does for an
// *http.Request, by the same code: it returns nil for a valid upgrade
// request, or a *HandshakeError with the status and message to refuse it
// with (405 for a method other than GET, 400 for HTTP/1.0, 426 for a
// missing upgrade or another protocol version, 400 for a malformed key,
// 403 for an Origin that is not the Host and no pattern of
// opts.OriginPatterns matches). It writes nothing: AppendRefusal does.
//
// opts.CheckOrigin, which takes an *http.Request, is not called, and the
// origin is not checked when it is set: the caller calls it on r.HTTP
// (which allocates) when r passes, and refuses with 403 if it returns
// false.
//
// It allocates nothing for a request it lets through whose Origin, if
// any, is "scheme://host[:port]" with a lower-case ASCII host, as
// browsers send it (url.Parse reads other forms), with OriginPatterns in
// lower case; a refusal allocates its error.
func (r *Request) CheckUpgrade(opts *AcceptOptions) error {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	if status, msg := checkUpgrade(r.view(r.method), r.minor >= 1, firstValue(r, "Host"), r, &o, nil); status != 0 {
		return &HandshakeError{Status: status, Msg: msg}
	}
	return nil
}

// AppendAccept appends to dst the 101 Switching Protocols response Upgrade
// writes for the same request and options, byte for byte: its
// Sec-WebSocket-Accept, the subprotocol chosen, the answer to an offer of
// permessage-deflate when opts.Compression allows it, and opts.Header.
// It returns the response, the subprotocol (one of opts.Subprotocols, or
// "") and the compression agreed, which the connection must then speak
// (see Upgraded.Compression). r must have passed CheckUpgrade.
//
// Into a dst with room (256 bytes and opts.Header's), it allocates
// nothing when opts.Compression is CompressionDisabled or the client
// offers no extension. Reading an offer when compression is on allocates
// about 600 bytes, in 5 allocations when it is agreed.
func (r *Request) AppendAccept(dst []byte, opts *AcceptOptions) (resp []byte, subprotocol string, cp CompressionParams) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	return appendSwitching(dst, r, &o)
}

// AppendRefusal appends to dst a complete HTTP/1.1 response that refuses
// an upgrade with status and msg, the Status and Msg of a
// *HandshakeError, and says the connection closes: msg and a newline as a
// text/plain body, with the fields CheckUpgrade sets on the net/http path
// (Allow: GET for 405; Upgrade: websocket and Sec-WebSocket-Version: 13
// for 426) and Retry-After when retryAfter, in seconds, is more than 0.
// A status outside 100-999 is sent as 500.
//
// msg can quote the client's own header (an Origin), so it goes only in
// the body, whose length is given, with its control characters made '?'
// and the type sniffing off: a msg cannot add a field or a response.
// AppendRefusal allocates nothing into a dst with room.
func AppendRefusal(dst []byte, status int, msg string, retryAfter int) []byte {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	for _, f := range refusalFields(status) {
		dst = append(dst, f.name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.value...)
		dst = append(dst, "\r\n"...)
	}
	if retryAfter > 0 {
		dst = append(dst, "Retry-After: "...)
		dst = strconv.AppendInt(dst, int64(retryAfter), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Connection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(msg))+1, 10)
	dst = append(dst, "\r\n\r\n"...)
	for i := range len(msg) {
		c := msg[i]
		if c < ' ' && c != '\t' || c == 0x7F {
			c = '?'
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// HTTP returns an *http.Request with copies of r's parts, for code that
// needs one (AcceptOptions.CheckOrigin, an admission hook, tracing):
// Method, URL (parsed from the target; an error if it does not parse),
// Proto, ProtoMajor and ProtoMinor, Header (with canonical keys), Host
// (from the Host field, which, as net/http does, Header leaves out),
// RequestURI, RemoteAddr set to remote, and an
// empty Body. Its Context is context.Background(). It allocates, and
// shares nothing with r's bytes.
func (r *Request) HTTP(remote string) (*http.Request, error) {
	target := string(r.Target())
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, r.n)
	r.Fields(func(name, value []byte) bool {
		h.Add(string(name), string(value))
		return true
	})
	host := h.Get("Host")
	h.Del("Host") // as net/http has it in a server's request
	proto := "HTTP/1.1"
	if r.minor == 0 {
		proto = "HTTP/1.0"
	}
	return &http.Request{
		Method:     string(r.Method()),
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: int(r.minor),
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: target,
		RemoteAddr: remote,
	}, nil
}
