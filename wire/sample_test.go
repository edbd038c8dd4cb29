package wire

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// Samples of text for the tests and benchmarks of compression, exported
// to the package's external tests by export_test.go.

var words = strings.Fields(`the of and to in is you that it he was for on are as with his
they at be this have from or one had by word but not what all were we when your can said
there use an each which she do how their if will up other about out many then them these
so some her would make like him into time has look two more write go see number no way could
people my than first water been call who oil its now find long down day did get come made may
part over new sound take only little work know place year live me back give most very after
thing our just name good sentence man think say great where help through much before line
right too mean old any same tell boy follow came want show also around form three small set
put end does another well large must big even such because turn here why ask went men read
need land different home us move try kind hand picture again change off play spell air away
animal house point page letter mother answer found study still learn should world élan naïve
café 日本語 Ωμέγα`)

// proseText returns n bytes of UTF-8 text: common words, and one in six
// rarer ones, made of random letters. Deflate takes 64 KiB of it to about
// 45 % (English prose: 35-40 %), 1 KiB to 60 %.
func proseText(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		if r.IntN(6) == 0 { // a rarer word: letters at random
			for range 3 + r.IntN(7) {
				b = append(b, byte('a'+r.IntN(26)))
			}
		} else {
			b = append(b, words[r.IntN(len(words))]...)
		}
		if r.IntN(12) == 0 {
			b = append(b, '.')
		}
		b = append(b, ' ')
	}
	return cutText(b, n)
}

// chatJSON returns n bytes of chat messages in JSON, as a room broadcasts
// them: deflate takes 1 KiB of it to about 45 %, 64 KiB to 33 %.
func chatJSON(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := []byte{'['}
	for len(b) < n {
		b = fmt.Appendf(b, `{"type":"message","room":"room-%d","user":{"id":%d,"name":"%s"},"text":"%s","ts":%d},`,
			r.IntN(50), r.IntN(100000), words[r.IntN(len(words))], proseText(r.Uint64(), 20+r.IntN(80)), 1712345678000+r.Int64N(1e6))
	}
	return cutText(b, n)
}

// cutText cuts valid UTF-8 text to n bytes at a character boundary, and
// pads it with spaces.
func cutText(b []byte, n int) []byte {
	b = b[:n]
	for i := max(0, n-3); i < n; i++ {
		if !utf8.FullRune(b[i:]) {
			for j := i; j < n; j++ {
				b[j] = ' '
			}
			break
		}
	}
	return b
}
