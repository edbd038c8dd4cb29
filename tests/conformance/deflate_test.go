package conformance

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	kflate "github.com/klauspost/compress/flate"
)

// The client's side of permessage-deflate (RFC 7692): the offers, the
// checks of the server's answer, and the compression of what it sends.

const pmdName = "permessage-deflate"

// extParam is a parameter of an extension in a Sec-WebSocket-Extensions
// field (RFC 6455 section 9.1), its value unquoted.
type extParam struct {
	name, value string
	hasValue    bool
}

type extension struct {
	name   string
	params []extParam
}

// parseExtensions parses a Sec-WebSocket-Extensions field strictly, as
// RFC 6455 section 9.1 writes it: a list of tokens, each with parameters
// whose values are tokens or quoted strings.
func parseExtensions(s string) ([]extension, error) {
	var exts []extension
	i := 0
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	tok := func() string {
		j := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		return s[j:i]
	}
	for {
		ows()
		if i == len(s) {
			break
		}
		if s[i] == ',' { // empty list elements are allowed (RFC 9110 section 5.6.1)
			i++
			continue
		}
		e := extension{name: tok()}
		if e.name == "" {
			return nil, fmt.Errorf("no extension name at %q", s[i:])
		}
		for ows(); i < len(s) && s[i] == ';'; ows() {
			i++
			ows()
			p := extParam{name: tok()}
			if p.name == "" {
				return nil, fmt.Errorf("no parameter name at %q", s[i:])
			}
			if ows(); i < len(s) && s[i] == '=' {
				i++
				ows()
				p.hasValue = true
				if i < len(s) && s[i] == '"' {
					var b strings.Builder
					for i++; ; i++ {
						if i == len(s) {
							return nil, errors.New("unterminated quoted string")
						}
						if s[i] == '\\' && i+1 < len(s) {
							i++
						} else if s[i] == '"' {
							i++
							break
						}
						b.WriteByte(s[i])
					}
					p.value = b.String()
				} else if p.value = tok(); p.value == "" {
					return nil, fmt.Errorf("no value for %s", p.name)
				}
			}
			e.params = append(e.params, p)
		}
		exts = append(exts, e)
		if i < len(s) && s[i] != ',' {
			return nil, fmt.Errorf("unexpected %q", s[i:])
		}
	}
	return exts, nil
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// pmdParams are the parameters of a permessage-deflate offer or answer.
type pmdParams struct {
	serverNoContext, clientNoContext bool
	serverBits                       int  // 0 when absent
	clientBits                       int  // 0 when absent or without a value
	clientBitsSeen                   bool // client_max_window_bits is there
}

// readPMD reads the parameters of a permessage-deflate offer or answer
// and says what RFC 7692 section 7.1 does not allow in them: a parameter
// unknown or repeated, a value where there may be none, a window size
// that is not a decimal from 8 to 15 without leading zeros, and, in an
// answer, a client_max_window_bits without a value. It reads what it can
// past the first error, which it returns.
func readPMD(params []extParam, answer bool) (pmdParams, error) {
	var d pmdParams
	var first error
	bad := func(format string, args ...any) {
		if first == nil {
			first = fmt.Errorf(format, args...)
		}
	}
	seen := map[string]bool{}
	for _, p := range params {
		name := strings.ToLower(p.name)
		if seen[name] {
			bad("%s twice", name)
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				bad("%s with a value", name)
			}
			if name[0] == 's' {
				d.serverNoContext = true
			} else {
				d.clientNoContext = true
			}
		case "server_max_window_bits", "client_max_window_bits":
			bits := 0
			if p.hasValue {
				n, err := strconv.Atoi(p.value)
				if err != nil || n < 8 || n > 15 || p.value[0] == '0' {
					bad("%s=%q, not 8 to 15", name, p.value)
				}
				if err == nil && n >= 8 && n <= 15 {
					bits = n
				}
			} else if answer || name[0] == 's' {
				bad("%s without a value", name)
			}
			if name[0] == 's' {
				d.serverBits = bits
			} else {
				d.clientBits, d.clientBitsSeen = bits, true
			}
		default:
			bad("unknown parameter %s", p.name)
		}
	}
	return d, first
}

// fits says why an answer a cannot accept the offer o (RFC 7692 section
// 7.1), or nil: server_no_context_takeover asked for and not granted, a
// server_max_window_bits larger than asked or missing when asked, a
// client_max_window_bits the offer did not allow or larger than it
// allowed. The server may add server_no_context_takeover,
// client_no_context_takeover and server_max_window_bits unasked.
func (o pmdParams) fits(a pmdParams) error {
	switch {
	case o.serverNoContext && !a.serverNoContext:
		return errors.New("server_no_context_takeover was asked for and is not in the answer")
	case o.serverBits != 0 && a.serverBits == 0:
		return fmt.Errorf("server_max_window_bits=%d was asked for and is not in the answer", o.serverBits)
	case o.serverBits != 0 && a.serverBits > o.serverBits:
		return fmt.Errorf("server_max_window_bits=%d is more than the %d asked for", a.serverBits, o.serverBits)
	case a.clientBits != 0 && !o.clientBitsSeen:
		return errors.New("client_max_window_bits answered to an offer without it")
	case a.clientBits != 0 && o.clientBits != 0 && a.clientBits > o.clientBits:
		return fmt.Errorf("client_max_window_bits=%d is more than the %d offered", a.clientBits, o.clientBits)
	}
	return nil
}

// negotiated is what the handshake agreed on, from the client's side.
type negotiated struct {
	answer         string
	serverTakeover bool // the server may compress against its messages before
	serverBits     int
	clientTakeover bool // the client compresses against its messages before
	clientBits     int
}

// checkAnswer checks the server's Sec-WebSocket-Extensions lines against
// the offers and returns what was agreed (nil when the server declined
// them all). autobahn is set when Autobahn's client (autobahn-python's
// protocol.py and compress_deflate.py) fails the handshake on the answer;
// strict lists what RFC 6455 section 9.1 and RFC 7692 section 7.1 do not
// allow in it on top of that: Autobahn's client does not check the answer
// against its offer.
func checkAnswer(lines []string, offers []string) (n *negotiated, autobahn error, strict []string) {
	if len(lines) == 0 {
		return nil, nil, nil
	}
	autobahn = autobahnAnswer(lines)
	answer := strings.Join(lines, ", ")
	exts, err := parseExtensions(answer)
	if err != nil {
		return nil, autobahn, []string{fmt.Sprintf("malformed Sec-WebSocket-Extensions %q: %v", answer, err)}
	}
	if len(exts) == 0 {
		return nil, autobahn, nil
	}
	var ofs []pmdParams
	for _, o := range offers {
		oe, _ := parseExtensions(o)
		for _, e := range oe {
			if d, err := readPMD(e.params, false); err == nil && strings.EqualFold(e.name, pmdName) {
				ofs = append(ofs, d) // an invalid offer cannot be accepted
			}
		}
	}
	switch {
	case !strings.EqualFold(exts[0].name, pmdName) || len(ofs) == 0:
		return nil, autobahn, []string{fmt.Sprintf("the server answered the extension %q, which was not offered", exts[0].name)}
	case len(exts) > 1:
		return nil, autobahn, []string{fmt.Sprintf("the server answered %d extensions: %q", len(exts), answer)}
	}
	a, err := readPMD(exts[0].params, true)
	if err != nil {
		strict = append(strict, fmt.Sprintf("invalid answer %q: %v", answer, err))
		if autobahn != nil {
			return nil, autobahn, strict
		}
		// Autobahn's client takes it: go on with what could be read.
	}
	// The answer must accept one of the offers; the client keeps the
	// promises of the first it fits.
	var o *pmdParams
	var why []string
	for i := range ofs {
		if err := ofs[i].fits(a); err != nil {
			why = append(why, err.Error())
		} else if o == nil {
			o = &ofs[i]
		}
	}
	if o == nil {
		if err == nil {
			strict = append(strict, fmt.Sprintf("the answer %q accepts none of the offers %q: %s", answer, offers, strings.Join(why, "; ")))
		}
		o = &pmdParams{}
	}
	n = &negotiated{
		answer:         answer,
		serverTakeover: !a.serverNoContext,
		serverBits:     cmp0(a.serverBits, 15),
		// client_no_context_takeover in an offer is a promise (RFC
		// 7692 section 7.1.1.2), kept even if the answer leaves it out.
		clientTakeover: !a.clientNoContext && !o.clientNoContext,
		clientBits:     cmp0(min(cmp0(a.clientBits, 15), cmp0(o.clientBits, 15)), 15),
	}
	return n, autobahn, strict
}

// cmp0 is v, or def when v is 0.
func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// autobahnAnswer checks the answer as Autobahn's client does, and returns
// why it fails the handshake, or nil: more than one
// Sec-WebSocket-Extensions line, an extension other than
// permessage-deflate or more than one of it, a parameter unknown or
// repeated, a no_context_takeover with a value, a window size that is not
// an integer from 9 to 15 (zlib has no 8).
func autobahnAnswer(lines []string) error {
	if len(lines) > 1 {
		return errors.New("HTTP Sec-WebSocket-Extensions header appears more than once in opening handshake reply")
	}
	pmd := false
	for e := range strings.SplitSeq(lines[0], ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		parts := strings.Split(e, ";")
		name := strings.ToLower(strings.TrimSpace(parts[0]))
		if name != pmdName {
			return fmt.Errorf("server wants to use extension %q we did not request", name)
		}
		if pmd {
			return errors.New("multiple occurrence of a permessage-compress extension")
		}
		pmd = true
		seen := map[string]bool{}
		for _, p := range parts[1:] {
			kv := strings.Split(p, "=")
			key := strings.ToLower(strings.TrimSpace(kv[0]))
			if seen[key] {
				return fmt.Errorf("multiple occurrence of extension parameter %q", key)
			}
			seen[key] = true
			hasValue := len(kv) > 1
			val := strings.Trim(strings.TrimSpace(strings.Join(kv[1:], "=")), `"`)
			switch key {
			case "client_no_context_takeover", "server_no_context_takeover":
				if hasValue {
					return fmt.Errorf("illegal extension parameter value %q for parameter %q", val, key)
				}
			case "client_max_window_bits", "server_max_window_bits":
				if n, err := strconv.Atoi(val); !hasValue || err != nil || n < 9 || n > 15 {
					return fmt.Errorf("illegal extension parameter value %q for parameter %q", val, key)
				}
			default:
				return fmt.Errorf("illegal extension parameter %q", key)
			}
		}
	}
	return nil
}

// flateWriter is what compress/flate's and klauspost's writers share.
type flateWriter interface {
	io.Writer
	Flush() error
	Reset(io.Writer)
}

// deflater compresses the client's messages as agreed: with its window,
// against the messages before or each on its own.
type deflater struct {
	bits     int
	takeover bool
	w        flateWriter
	buf      bytes.Buffer
}

// compress returns p compressed as the body of one message (RFC 7692
// section 7.2.1): a sync flush ends it, and its 00 00 ff ff is taken off.
// With the full window it compresses at compress/flate's default level,
// as Autobahn's zlib does; smaller windows take klauspost's windowed
// encoder, which the standard library lacks.
func (z *deflater) compress(p []byte) []byte {
	z.buf.Reset()
	switch {
	case z.w == nil && z.bits == 15:
		z.w, _ = flate.NewWriter(&z.buf, flate.DefaultCompression)
	case z.w == nil:
		z.w, _ = kflate.NewWriterWindow(&z.buf, 1<<z.bits)
	case !z.takeover:
		z.w.Reset(&z.buf)
	}
	z.w.Write(p)
	z.w.Flush()
	b := z.buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		panic("conformance: a sync flush that does not end with 00 00 ff ff")
	}
	return bytes.Clone(b[:len(b)-4])
}

// deflateAlone is p compressed on its own with the full window.
func deflateAlone(p []byte) []byte {
	return (&deflater{bits: 15}).compress(p)
}

// deflateFinal is p compressed on its own in a stream that ends with a
// block whose BFINAL is set (RFC 7692 section 7.2.3.3), as a sender
// without a sync flush makes it: Close ends the stream with an empty
// stored block, whose 00 00 ff ff is taken off.
func deflateFinal(p []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(p)
	w.Close()
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		panic("conformance: a final block that does not end with 00 00 ff ff")
	}
	return b[:len(b)-4]
}
