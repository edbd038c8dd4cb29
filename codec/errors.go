package codec

import (
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// This file writes the message of a bad_payload error: what a person
// writing a client needs to fix the payload, in the words of the codec the
// client speaks (docs/protocol.md lists them), never Go's type names. The
// decoder's own error stays on the server: WithErrorHandler and the
// message's span get it.
//
// It runs only when a payload has failed to decode, so it may allocate; it
// never panics, whatever the payload, and its work is bounded by the
// payload's size.

// decodeError marks a payload that did not decode: err is the decoder's
// error, msg what the client is told.
type decodeError struct {
	err error
	msg string
}

func (e decodeError) Error() string { return e.err.Error() }

// payloadMessage explains why data, the payload of event in codec c, did
// not decode into a value of type t with error err.
func payloadMessage(c envelopeCodec, event string, data []byte, t reflect.Type, err error) string {
	var m string
	if _, ok := c.(msgpackCodec); ok {
		m = msgpackMessage(data, t)
	} else {
		m = jsonMessage(err, t)
	}
	if m == "" {
		return fmt.Sprintf("payload of %q does not match the expected shape", event)
	}
	return fmt.Sprintf("payload of %q%s", event, m)
}

// mismatch says what the value at path (the payload itself when path is
// "") must be: " must be a number, not a string" or ": field "a.b" must
// be ...". want and got are nouns with their article ("a number"); an
// empty want means the Go type says nothing a client could act on.
func mismatch(path, want, got string) string {
	where := ""
	if path != "" {
		where = fmt.Sprintf(": field %q", path)
	}
	if want == "" || got == "" || want == got {
		if where == "" {
			return "" // the generic message
		}
		return where + " does not match the expected shape"
	}
	return fmt.Sprintf("%s must be %s, not %s", where, want, got)
}

// keyMismatch is mismatch for a key of the map at path.
func keyMismatch(path, want, got string) string {
	if path != "" {
		path = fmt.Sprintf(": field %q:", path)
	} else {
		path = ":"
	}
	if want == "" {
		return path + " a key does not match the expected shape"
	}
	return fmt.Sprintf("%s each key must be %s, not %s", path, want, got)
}

// Values as the error messages name them.
const (
	aNumber  = "a number"
	aString  = "a string"
	aBoolean = "a boolean"
	anArray  = "an array"
	anObject = "an object" // JSON
	aMap     = "a map"     // MessagePack
	anInt    = "an integer"
	aBinary  = "binary data"
	anExt    = "an extension value"
	aTime    = "a timestamp"
)

// words is how a codec names what a Go type takes.
type words struct {
	self      []reflect.Type // interfaces of types that decode themselves
	time      string         // for time.Time, unless it decodes itself
	binary    bool           // encoding.BinaryUnmarshaler decodes binary data
	integer   string         // for Go's integer types
	float32   string
	float64   string
	bytes     string // for []byte
	byteArray string // for [N]byte
	object    string // for maps and structs
}

var (
	jsonWords = words{
		self:    []reflect.Type{jsonUnmarshaler},
		integer: aNumber, float32: aNumber, float64: aNumber,
		bytes:     aString, // base64
		byteArray: anArray,
		object:    anObject,
	}
	msgpackWords = words{
		self:    []reflect.Type{msgpackCustom, msgpackUnmarshaler},
		time:    aTime,
		binary:  true,
		integer: anInt, float32: "an integer or a 32-bit float", float64: aNumber,
		bytes:     aBinary,
		byteArray: aBinary,
		object:    aMap,
	}
)

// want names what the codec decodes into t, or "" when t decodes itself
// or takes anything.
func (w *words) want(t reflect.Type) string {
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer && !implements(t, w.self...) {
		t = t.Elem()
	}
	switch {
	case implements(t, w.self...):
		return ""
	case t == timeType && w.time != "":
		return w.time
	case w.binary && implements(t, binaryUnmarshaler):
		return aBinary
	case implements(t, textUnmarshaler):
		return aString
	}
	switch t.Kind() {
	case reflect.Bool:
		return aBoolean
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return w.integer
	case reflect.Float32:
		return w.float32
	case reflect.Float64:
		return w.float64
	case reflect.String:
		return aString
	case reflect.Slice, reflect.Array:
		switch {
		case t.Elem().Kind() != reflect.Uint8:
			return anArray
		case t.Kind() == reflect.Slice:
			return w.bytes
		}
		return w.byteArray
	case reflect.Map, reflect.Struct:
		return w.object
	}
	return ""
}

var (
	textUnmarshaler    = reflect.TypeFor[encoding.TextUnmarshaler]()
	binaryUnmarshaler  = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	jsonUnmarshaler    = reflect.TypeFor[json.Unmarshaler]()
	msgpackUnmarshaler = reflect.TypeFor[msgpack.Unmarshaler]()
	msgpackCustom      = reflect.TypeFor[msgpack.CustomDecoder]()
	timeType           = reflect.TypeFor[time.Time]()
)

// implements reports whether t or *t implements one of the interfaces.
func implements(t reflect.Type, ifaces ...reflect.Type) bool {
	for _, i := range ifaces {
		if t.Implements(i) || t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- JSON

// jsonMessage explains an error of encoding/json decoding into a t: the
// tail of the message after "payload of %q", or "" for the generic
// message.
func jsonMessage(err error, t reflect.Type) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var be base64.CorruptInputError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf(" is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		te2 := *te
		te2.Field = jsonPath(t, te.Field)
		return jsonTypeMessage(&te2)
	case errors.As(err, &be):
		return " has a string that is not valid base64"
	case errors.As(err, new(*time.ParseError)):
		return " has a time that is not in RFC 3339 format"
	}
	return ""
}

// jsonTypeMessage explains a value of the wrong kind. te.Value names the
// JSON value ("string", "number 1.5", ...), te.Type the Go type at
// te.Field, a dotted path of JSON names (without indices or map keys).
func jsonTypeMessage(te *json.UnmarshalTypeError) string {
	want := jsonWords.want(te.Type)
	num, isNum := strings.CutPrefix(te.Value, "number ")
	if !isNum {
		var got string
		switch te.Value {
		case "string":
			got = aString
		case "number":
			got = aNumber
		case "bool":
			got = aBoolean
		case "array":
			got = anArray
		case "object":
			got = anObject
		}
		return mismatch(te.Field, want, got)
	}
	// A number that does not fit the Go number type, or a map key that
	// is not a number at all.
	t := te.Type
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	f, perr := strconv.ParseFloat(num, 64)
	var rerr *strconv.NumError
	if perr != nil && !(errors.As(perr, &rerr) && rerr.Err == strconv.ErrRange) {
		// Not a number: te.Field is a map whose keys must be numbers.
		return keyMismatch(te.Field, "a whole number", strconv.Quote(num))
	}
	if t == nil || want != aNumber {
		return mismatch(te.Field, want, aNumber)
	}
	// encoding/json parses integers with strconv: digits it could not
	// parse are out of range.
	digits := !strings.ContainsAny(num, ".eE")
	switch lo, hi, isInt := numberRange(t); {
	case isInt && !digits && f != math.Trunc(f):
		return mismatch(te.Field, "a whole number", num)
	case isInt && !digits && f >= lo && f <= hi:
		// 1e2 for an int: encoding/json takes integers in digits only.
		return mismatch(te.Field, "a whole number written without a fraction or exponent", num)
	case isInt:
		return mismatch(te.Field, fmt.Sprintf("a whole number from %s to %s", fmtBound(lo, t), fmtBound(hi, t)), num)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return mismatch(te.Field, fmt.Sprintf("a number from %s to %s", fmtBound(lo, t), fmtBound(hi, t)), num)
	}
	return mismatch(te.Field, "", "")
}

// jsonPath rewrites the path of an UnmarshalTypeError, in values of type
// t, without the Go names encoding/json puts in it for embedded structs
// ("meta.note" for the note field of an embedded meta). A path it cannot
// follow is returned as it is.
func jsonPath(t reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	var out []string
	for seg := range strings.SplitSeq(field, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return field
		}
		f, embedded, ok := jsonField(t, seg)
		if !ok {
			return field
		}
		if !embedded {
			out = append(out, seg)
		}
		t = f
	}
	return strings.Join(out, ".")
}

// jsonField finds the field of struct type t that encoding/json names seg
// in a path: a field of that JSON name, or an untagged embedded struct of
// that Go name.
func jsonField(t reflect.Type, seg string) (ft reflect.Type, embedded, ok bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "" && f.Name == seg:
			return f.Type, true, true
		case name == seg || name == "" && f.IsExported() && f.Name == seg:
			return f.Type, false, true
		}
	}
	return nil, false, false
}

// numberRange returns the range of a Go number type, and whether it holds
// integers only.
func numberRange(t reflect.Type) (lo, hi float64, isInt bool) {
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1) - 1, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return 0, math.Ldexp(1, bits) - 1, true
	case reflect.Float32:
		return -math.MaxFloat32, math.MaxFloat32, false
	}
	return -math.MaxFloat64, math.MaxFloat64, false
}

// fmtBound writes a bound of numberRange: exactly for integers, to two
// digits for floats.
func fmtBound(b float64, t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(b, 'g', 2, 64)
	case reflect.Int64, reflect.Int:
		if b > 0 && t.Bits() == 64 {
			return strconv.FormatInt(math.MaxInt64, 10) // b is 2^63, rounded
		}
	case reflect.Uint64, reflect.Uint, reflect.Uintptr:
		if b > 0 && t.Bits() == 64 {
			return strconv.FormatUint(math.MaxUint64, 10)
		}
	}
	return strconv.FormatFloat(b, 'f', 0, 64)
}

// --------------------------------------------------------- MessagePack

// maxLocateDepth bounds how deep msgpackMessage looks for the value that
// failed; a deeper one is reported at this depth.
const maxLocateDepth = 64

// msgpackMessage explains why data does not decode into a t: the tail of
// the message after "payload of %q", or "" for the generic message.
// vmihailenco/msgpack says neither where the failure is nor, in words a
// client knows, what was wrong, so this walks the payload beside t to the
// first value that does not decode into its Go type, and names that
// value's path, what the type takes and what the value is.
func msgpackMessage(data []byte, t reflect.Type) string {
	if end, err := mpSkip(data, 0, 0); err != nil || end != len(data) {
		return " is not valid MessagePack"
	}
	l := locator{dec: msgpackDecoders.Get().(*msgpackDecoder), shapes: make(map[reflect.Type]*shape),
		fields: make(map[reflect.Type]map[string]reflect.Type)}
	found := l.locate(data, t, 0)
	l.dec.r.Reset(nil)
	if len(data) <= maxKeptBuf {
		msgpackDecoders.Put(l.dec)
	}
	if !found {
		return ""
	}
	want, got := msgpackWords.want(l.t), msgpackGot(l.v)
	if l.key {
		return keyMismatch(l.pathString(), want, got)
	}
	if at := l.shapeOf(l.t).elem; at.Kind() == reflect.Array && isArray(l.v[0]) {
		// The library takes no more elements than a Go array holds.
		n, _ := mpArrayHeader(l.v)
		want = fmt.Sprintf("an array of at most %d elements", at.Len())
		got = fmt.Sprintf("an array of %d", n)
	}
	return mismatch(l.pathString(), want, got)
}

// locator finds the first value of a well-formed payload that does not
// decode into its Go type. Containers whose Go type the library decodes
// field by field or element by element (structs, maps, slices, arrays)
// are walked; every other value is decoded on its own, once, so the work
// is about that of decoding the payload.
type locator struct {
	dec    *msgpackDecoder
	shapes map[reflect.Type]*shape
	fields map[reflect.Type]map[string]reflect.Type // of structs, by name

	path []string     // from the root to the failing value, reversed
	v    []byte       // the failing value
	t    reflect.Type // its Go type
	key  bool         // the value is a key of the map at path
}

// shape is how the locator takes the values of a Go type.
type shape struct {
	elem reflect.Type  // the type without its pointers
	walk reflect.Kind  // Struct, Map, Slice or Array when walked; else Invalid
	val  reflect.Value // a new value of the type itself, to decode into
}

func (l *locator) shapeOf(t reflect.Type) *shape {
	if sh, ok := l.shapes[t]; ok {
		return sh
	}
	sh := &shape{elem: t, val: reflect.New(t)}
	custom := func(t reflect.Type) bool {
		return t == timeType || implements(t, msgpackCustom, msgpackUnmarshaler, binaryUnmarshaler, textUnmarshaler)
	}
	for sh.elem.Kind() == reflect.Pointer && !custom(sh.elem) {
		sh.elem = sh.elem.Elem()
	}
	switch k := sh.elem.Kind(); {
	case custom(sh.elem):
	case k == reflect.Struct, k == reflect.Map:
		sh.walk = k
	case (k == reflect.Slice || k == reflect.Array) && sh.elem.Elem().Kind() != reflect.Uint8:
		sh.walk = k
	}
	l.shapes[t] = sh
	return sh
}

func (l *locator) pathString() string {
	var b strings.Builder
	for i := len(l.path) - 1; i >= 0; i-- {
		p := l.path[i]
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// locate reports whether v, one well-formed value, fails to decode into
// a t, and if so records where.
func (l *locator) locate(v []byte, t reflect.Type, depth int) bool {
	sh := l.shapeOf(t)
	if sh.walk != reflect.Invalid && depth < maxLocateDepth {
		switch {
		case v[0] == 0xc0: // nil: a zero value, or a nil pointer
		case sh.walk == reflect.Struct && isMap(v[0]):
			return l.locateStruct(v, sh.elem, depth)
		case sh.walk == reflect.Map && isMap(v[0]):
			return l.locateMap(v, sh.elem, depth)
		case (sh.walk == reflect.Slice || sh.walk == reflect.Array) && isArray(v[0]):
			if l.locateArray(v, sh.elem, depth) {
				return true
			}
			// An array of the wrong length, say: decode it whole.
		}
	}
	if l.decodes(v, sh) {
		return false
	}
	l.v, l.t = v, t
	return true
}

// decodes reports whether the value v decodes into a value of shape sh.
func (l *locator) decodes(v []byte, sh *shape) bool {
	l.dec.r.Reset(v)
	return l.next(sh)
}

// next decodes the next value of the decoder's input into a value of
// shape sh, and reports whether it could.
func (l *locator) next(sh *shape) bool {
	sh.val.Elem().SetZero()
	return l.dec.dec.Decode(sh.val.Interface()) == nil
}

// locateStruct walks the map v as the struct type t decodes it: by field
// name, skipping the keys that name no field.
func (l *locator) locateStruct(v []byte, t reflect.Type, depth int) bool {
	n, p, _ := mpMapHeader(v, 0)
	fields, ok := l.fields[t]
	if !ok {
		fields = msgpackFields(t)
		l.fields[t] = fields
	}
	for range n {
		kend, _ := mpSkip(v, p, 0)
		end, _ := mpSkip(v, kend, 0)
		// The library reads a field's name as it reads a string: a str,
		// a bin, or nil for "".
		var name string
		l.dec.r.Reset(v[p:kend])
		if err := l.dec.dec.Decode(&name); err != nil {
			l.v, l.t, l.key = v[p:kend], reflect.TypeFor[string](), true
			return true
		}
		if ft, ok := fields[name]; ok && l.locate(v[kend:end], ft, depth+1) {
			l.path = append(l.path, name)
			return true
		}
		p = end
	}
	return false
}

// locateMap walks the entries of the map v, of Go type t.
func (l *locator) locateMap(v []byte, t reflect.Type, depth int) bool {
	n, p, _ := mpMapHeader(v, 0)
	key := l.shapeOf(t.Key())
	for range n {
		kend, _ := mpSkip(v, p, 0)
		end, _ := mpSkip(v, kend, 0)
		if !l.decodes(v[p:kend], key) {
			l.v, l.t, l.key = v[p:kend], t.Key(), true
			return true
		}
		if l.locate(v[kend:end], t.Elem(), depth+1) {
			l.path = append(l.path, mpKeyString(v[p:kend]))
			return true
		}
		p = end
	}
	return false
}

// locateArray walks the elements of the array v, of Go type t.
func (l *locator) locateArray(v []byte, t reflect.Type, depth int) bool {
	n, p := mpArrayHeader(v)
	elem := l.shapeOf(t.Elem())
	if elem.walk == reflect.Invalid {
		// Elements that are not walked are decoded in a row, as the
		// library does: the decoder reads nothing past a value.
		l.dec.r.Reset(v[p:])
		for i := range n {
			start := len(v) - l.dec.r.Len()
			if !l.next(elem) {
				end, _ := mpSkip(v, start, 0)
				l.v, l.t = v[start:end], t.Elem()
				l.path = append(l.path, "["+strconv.Itoa(i)+"]")
				return true
			}
		}
		return false
	}
	for i := range n {
		end, _ := mpSkip(v, p, 0)
		if l.locate(v[p:end], t.Elem(), depth+1) {
			l.path = append(l.path, "["+strconv.Itoa(i)+"]")
			return true
		}
		p = end
	}
	return false
}

// mpKeyString writes a map key of a path: a string as it is, an integer
// or a boolean in brackets, anything else as [?].
func mpKeyString(key []byte) string {
	if s, _, err := mpStr(key, 0); err == nil {
		return string(s)
	}
	var k any
	if decodeMsgpack(key, &k) == nil {
		switch k.(type) {
		case int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool:
			return "[" + fmt.Sprint(k) + "]"
		}
	}
	return "[?]"
}

func isMap(c byte) bool   { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }
func isArray(c byte) bool { return c&0xf0 == 0x90 || c == 0xdc || c == 0xdd }

// mpArrayHeader reads the header of the checked array v: its length and
// the position of its first element.
func mpArrayHeader(v []byte) (n, p int) {
	switch c := v[0]; c {
	case 0xdc:
		return int(binary.BigEndian.Uint16(v[1:])), 3
	case 0xdd:
		return int(binary.BigEndian.Uint32(v[1:])), 5
	default:
		return int(c & 0x0f), 1
	}
}

// msgpackFields returns the types of the fields of struct type t by the
// names the library decodes them from: a field's msgpack tag, else its
// json tag, else its Go name; exported fields only, and the fields of
// embedded structs promoted unless shadowed. Rarer tags (alias, as_array)
// are not followed: a payload that fails through them is reported without
// its path.
func msgpackFields(t reflect.Type) map[string]reflect.Type {
	return addFields(make(map[string]reflect.Type, t.NumField()), t, nil)
}

// addFields adds the fields of struct type t to fields, unless shadowed;
// outer lists the structs that embed t, which it does not enter again.
func addFields(fields map[string]reflect.Type, t reflect.Type, outer []reflect.Type) map[string]reflect.Type {
	outer = append(outer, t)
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("msgpack")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, shadowed := fields[name]; !shadowed {
			fields[name] = f.Type
		}
		et := f.Type
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if f.Anonymous && et.Kind() == reflect.Struct && !strings.Contains(opts, "noinline") && et != timeType &&
			!implements(et, msgpackCustom, msgpackUnmarshaler, binaryUnmarshaler, textUnmarshaler) &&
			!slices.Contains(outer, et) {
			embedded = append(embedded, et)
		}
	}
	// The struct's own fields first: they shadow the embedded ones.
	for _, et := range embedded {
		addFields(fields, et, outer)
	}
	return fields
}

// msgpackGot names the checked MessagePack value v, with its value when
// it is a float.
func msgpackGot(v []byte) string {
	switch c := v[0]; {
	case c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3:
		return anInt
	case c == 0xca:
		f := math.Float32frombits(binary.BigEndian.Uint32(v[1:]))
		return "a 32-bit float (" + strconv.FormatFloat(float64(f), 'g', -1, 32) + ")"
	case c == 0xcb:
		f := math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
		return "a 64-bit float (" + strconv.FormatFloat(f, 'g', -1, 64) + ")"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return aBoolean
	case c&0xe0 == 0xa0 || c >= 0xd9 && c <= 0xdb:
		return aString
	case c >= 0xc4 && c <= 0xc6:
		return aBinary
	case isArray(c):
		return anArray
	case isMap(c):
		return aMap
	case c >= 0xd4 && c <= 0xd8 && int8(v[1]) == -1,
		c >= 0xc7 && c <= 0xc9 && int8(v[1+1<<(c-0xc7)]) == -1:
		return aTime
	}
	return anExt
}
