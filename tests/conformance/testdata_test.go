package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// dataset is one of the files Autobahn's 12.x and 13.x cut their messages
// from (case12_x_x.py's WS_COMPRESSION_TESTDATA, in its order). Their
// contents are not ours to ship (a scanned photograph, a published paper,
// a Gutenberg e-book), so the cases send data generated here, of the same
// kind, length and compressibility, made the same for every run. With
// $AUTOBAHN_TESTDATA set to Autobahn's testdata folder, the real files are
// used instead.
type dataset struct {
	file   string // the file's name in Autobahn's testdata
	desc   string
	binary bool // sent as binary messages; else as text, cut by characters
	size   int  // the file's length in bytes
	gen    func(size int) []byte
	once   sync.Once
	data   []byte
	runes  []int // for text, the offset of each character and, last, len(data)
}

var datasets = []*dataset{
	{file: "data1.json", desc: "JSON, an Autobahn report index", size: 194056, gen: genJSON},
	{file: "lena512.bmp", desc: "a 512x512 grey bitmap", binary: true, size: 263222, gen: genBitmap},
	{file: "pg2229.txt", desc: "German verse (Goethe's Faust I in Autobahn's)", binary: true, size: 222218, gen: genVerse},
	{file: "data1.html", desc: "HTML, an Autobahn report page", size: 263647, gen: genHTML},
	{file: "10.1.1.105.5439.pdf", desc: "a PDF, mostly compressed streams", binary: true, size: 1042328, gen: genPDF},
}

// load returns the data and, for text, where its characters start.
func (d *dataset) load() ([]byte, []int) {
	d.once.Do(func() {
		if dir := os.Getenv("AUTOBAHN_TESTDATA"); dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, d.file))
			if err != nil {
				panic(err)
			}
			d.data = b
		} else {
			d.data = d.gen(d.size)
		}
		if !d.binary {
			if !utf8.Valid(d.data) {
				panic("conformance: text data set " + d.file + " is not UTF-8")
			}
			for i := range string(d.data) {
				d.runes = append(d.runes, i)
			}
			d.runes = append(d.runes, len(d.data))
		}
	})
	return d.data, d.runes
}

// messages cuts messages of n units (bytes, or characters for text) from
// the data set one after the other, going round at its end, as
// case12_x_x.py's sendOne does.
type messages struct {
	data  []byte
	runes []int
	ptr   int
}

func (d *dataset) messages() *messages {
	b, r := d.load()
	return &messages{data: b, runes: r}
}

func (m *messages) next(n int) []byte {
	units := len(m.data)
	at := func(i int) int { return i }
	if m.runes != nil {
		units = len(m.runes) - 1
		at = func(i int) int { return m.runes[i] }
	}
	from, to := m.ptr, (m.ptr+n)%units
	m.ptr = to
	if to > from {
		return m.data[at(from):at(to)]
	}
	out := append([]byte{}, m.data[at(from):]...)
	return append(out, m.data[:at(to)]...)
}

// The generators: deterministic, the length asked for, and about as
// compressible as the file they stand for.

func genJSON(size int) []byte {
	r := rand.New(rand.NewPCG(12, 1))
	verdicts := []string{"OK", "OK", "OK", "OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"}
	var b strings.Builder
	b.WriteString("{\n")
	for a := 0; b.Len() < size; a++ {
		agent := fmt.Sprintf("AutobahnPython/0.%d.%d", a/10, a%10)
		fmt.Fprintf(&b, "   %q: {\n", agent)
		for c := 0; c < 300 && b.Len() < size; c++ {
			id := fmt.Sprintf("%d.%d.%d", c/60+1, c/10%6+1, c%10+1)
			fmt.Fprintf(&b, "      %q: {\n         \"behavior\": %q,\n         \"behaviorClose\": %q,\n"+
				"         \"duration\": %d,\n         \"remoteCloseCode\": %d,\n         \"reportfile\": %q\n      },\n",
				id, verdicts[r.IntN(len(verdicts))], verdicts[r.IntN(4)], r.IntN(50)+1, 1000+r.IntN(12),
				strings.NewReplacer("/", "_", ".", "_").Replace(strings.ToLower(agent))+"_case_"+strings.ReplaceAll(id, ".", "_")+".json")
		}
		b.WriteString("   },\n")
	}
	return []byte(b.String()[:size])
}

func genHTML(size int) []byte {
	r := rand.New(rand.NewPCG(12, 4))
	words := strings.Fields("Send compressed messages each of payload size auto-fragment to octets Use default permessage-deflate offer " +
		"Receive echo'ed messages with payload as sent Timeout case after secs Expectation Description Result Case Pass Fail")
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n   <head>\n      <meta charset=\"utf-8\" />\n      <title>Autobahn — Testsuite Report</title>\n   </head>\n   <body>\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "      <tr class=\"case\">\n         <td class=\"case_id\"><a href=\"#case_%d\">Case %d.%d</a></td>\n         <td class=\"case_ok\">", i, i/18+1, i%18+1)
		for range 6 + r.IntN(10) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		if i%97 == 0 {
			b.WriteString("κόσμε – ")
		}
		fmt.Fprintf(&b, "</td>\n         <td class=\"case_duration\">%d ms</td>\n      </tr>\n", r.IntN(900)+2)
	}
	return cutUTF8(b.String(), size)
}

// cutUTF8 returns s cut to size bytes, the cut moved back to a character's
// start and the rest padded with spaces.
func cutUTF8(s string, size int) []byte {
	s = s[:size]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return []byte(s + strings.Repeat(" ", size-len(s)))
}

func genVerse(size int) []byte {
	r := rand.New(rand.NewPCG(12, 3))
	words := strings.Fields("der die das und ich nicht du ein zu ist es mit sich mir dich so was den in ihr auf wie mich " +
		"Herz Geist Welt Natur Himmel Erde Nacht Teufel Gott Liebe Schöne Mädchen Tränen Höhle Glück Brust Sinn " +
		"Blut Leben Seele Wissen Schatz Geld Wein Feuer Mond Sterne ewig heilig selig stürmen träumen fühlen " +
		"möchte würde könnte hätte süße böse schön früh Flügel Gärten Lüfte Frühling Zauberei Bücher Kräfte")
	speakers := []string{"FAUST", "MEPHISTOPHELES", "MARGARETE", "WAGNER", "MARTHE", "CHOR DER ENGEL"}
	var b strings.Builder
	for b.Len() < size {
		fmt.Fprintf(&b, "\n%s:\n", speakers[r.IntN(len(speakers))])
		for range 2 + r.IntN(8) {
			n := 4 + r.IntN(6)
			for j := range n {
				w := words[r.IntN(len(words))]
				if j == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				b.WriteString(w)
				if j < n-1 {
					b.WriteByte(' ')
				}
			}
			b.WriteString([]string{",", ".", "!", ";", "?"}[r.IntN(5)] + "\n")
		}
	}
	return []byte(b.String()[:size]) // sent as binary: a cut character does not matter
}

func genBitmap(size int) []byte {
	const w, h, hdr = 512, 512, 14 + 40 + 1024
	b := make([]byte, hdr, size)
	le := func(at int, v uint32) {
		b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	copy(b, "BM")
	le(2, uint32(size))
	le(10, hdr)
	le(14, 40)
	le(18, w)
	le(22, h)
	b[26], b[28] = 1, 8 // one plane, 8 bits a pixel
	le(34, w*h)
	for i := range 256 {
		b[54+4*i], b[55+4*i], b[56+4*i] = byte(i), byte(i), byte(i)
	}
	r := rand.New(rand.NewPCG(12, 2))
	for y := range h {
		for x := range w {
			v := 128 + 60*math.Sin(float64(x)/23)*math.Cos(float64(y)/17) + 40*math.Sin(float64(x+y)/41)
			b = append(b, byte(min(255, max(0, int(v)+r.IntN(25)-12))))
		}
	}
	for len(b) < size {
		b = append(b, 0)
	}
	return b[:size]
}

func genPDF(size int) []byte {
	r := rand.New(rand.NewPCG(12, 5))
	c := rand.NewChaCha8([32]byte{12, 5})
	b := []byte("%PDF-1.2\n")
	for obj := 6; len(b) < size; obj += 2 {
		n := 2000 + r.IntN(30000)
		b = fmt.Appendf(b, "%d 0 obj\n<</Length %d 0 R/Filter /FlateDecode>>\nstream\n", obj, obj+1)
		s := make([]byte, n)
		c.Read(s)
		if obj%3 == 0 { // a page's content, uncompressed
			s = s[:0]
			for len(s) < n {
				s = fmt.Appendf(s, "BT /F1 %d Tf %d %d Td (%x) Tj ET\n", 8+r.IntN(6), r.IntN(500), r.IntN(700), r.Uint32()%4096)
			}
			s = s[:n]
		}
		b = append(b, s...)
		b = fmt.Appendf(b, "\nendstream\nendobj\n%d 0 obj\n%d\nendobj\n", obj+1, n)
		if obj%10 == 0 {
			b = fmt.Appendf(b, "%d 0 obj\n<</Type/Page/MediaBox [0 0 612 792]/Parent 3 0 R/Resources<</ProcSet[/PDF /Text]/Font<</F1 9 0 R>>>>>>\nendobj\n", obj+100)
		}
	}
	return b[:size]
}
