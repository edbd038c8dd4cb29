package wsraw

import (
	"strconv"
	"strings"
	"time"
)

// Payload kinds, for Payload: what the bench sends in its messages.
const (
	PayloadPattern = ""     // Pattern: printable ASCII with a short period, not realistic to compress
	PayloadJSON    = "json" // JSON: a chat room's history as a client would get it
	PayloadText    = "text" // Text: prose from a vocabulary of a few hundred words
)

// StampField is where JSON leaves room for the load generator's stamp: the
// value of its first key, "id", which starts at StampOffset.
const (
	StampField  = `{"id":"`
	StampOffset = len(StampField)
)

// Payload returns n bytes of the given kind (see the Payload constants),
// the same on every call.
func Payload(kind string, n int) []byte {
	switch kind {
	case PayloadJSON:
		return JSON(n)
	case PayloadText:
		return Text(n)
	}
	return Pattern(n)
}

// words is the vocabulary of JSON's and Text's prose: everyday English,
// the few hundred words most chat messages are made of.
var words = strings.Fields(`
the of and to a in is it you that he was for on are with as I his they be at
one have this from or had by hot word but what some we can out other were all
there when up use your how said an each she which do their time if will way
about many then them write would like so these her long make thing see him
two has look more day could go come did number sound no most people my over
know water than call first who may down side been now find any new work part
take get place made live where after back little only round man year came
show every good me give our under name very through just form sentence great
think say help low line differ turn cause much mean before move right boy old
too same tell does set three want air well also play small end put home read
hand port large spell add even land here must big high such follow act why
ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should
country found answer school grow study still learn plant cover food sun four
between state keep eye never last let thought city tree cross farm hard start
might story saw far sea draw left late run don't while press close night real
life few north open seem together next white children begin got walk example
ease paper group always music those both mark often letter until mile river
car feet care second book carry took science eat room friend began idea fish
mountain stop once base hear horse cut sure watch color face wood main enough
plain girl usual young ready above ever red list though feel talk bird soon
body dog family direct pose leave song measure door product black short
numeral class wind question happen complete ship area half rock order fire
south problem piece told knew pass since top whole king space heard best hour
better true during hundred five remember step early hold west ground interest
reach fast verb sing listen six table travel less morning ten simple several
vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine
certain fly fall lead cry dark machine note wait plan figure star box noun
field rest correct able pound done beauty drive stood contain front teach week
final gave green oh quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel
full force blue object decide surface deep moon island foot system busy test
record boat common gold possible plane stead dry wonder laugh thousand ago ran
check game shape equate miss brought heat snow tire bring yes distant fill
east paint language among`)

// users are the members who speak in JSON's history.
var users = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"}

// rng is a small deterministic generator (a 64-bit LCG), so that payloads
// are the same on every run and every machine.
type rng uint64

func (r *rng) next(n int) int {
	*r = *r*6364136223846793005 + 1442695040888963407
	return int(uint64(*r>>33) % uint64(n))
}

// word returns a word of the vocabulary, the first ones (the most common)
// far more often than the last, roughly as in English (Zipf's law).
func (r *rng) word() string {
	u := float64(r.next(1<<20)) / (1 << 20)
	return words[int(u*u*u*float64(len(words)))]
}

// sentence appends a sentence of a few words to b.
func (r *rng) sentence(b []byte, minWords, maxWords int) []byte {
	k := minWords + r.next(maxWords-minWords+1)
	for i := range k {
		w := r.word()
		if i == 0 {
			b = append(b, strings.ToUpper(w[:1])+w[1:]...)
		} else {
			b = append(b, ' ')
			b = append(b, w...)
		}
	}
	switch r.next(6) {
	case 0:
		return append(b, '?')
	case 1:
		return append(b, '!')
	}
	return append(b, '.')
}

// JSONMin is the shortest JSON makes.
const JSONMin = 512

// JSON returns n bytes of JSON (n of at least JSONMin): one object, a chat
// room's latest messages as a server would send them to a client that
// joins:
//
//	{"id":"<40 characters>","type":"history","room":"general","messages":[
//	 {"type":"message","id":4817,"channel":"general","user":{"id":9,
//	  "name":"ivan","role":"member"},"ts":"2026-01-01T00:01:43.707Z",
//	  "text":"...","reactions":[{"emoji":"eyes","count":3}],"mentions":[],
//	  "attachments":[],"thread":null,"edited":false,"deleted":false}, ...]}
//
// The "id" value at StampOffset is 2*StampLen zeros, room for the load
// generator's stamp (in hexadecimal). Compressed on its own with deflate
// at level 1, 1 KiB of it shrinks about 2.8 times, 2.7 with the load
// generator's stamp in it (TestPayloadRatios).
func JSON(n int) []byte {
	n = max(n, JSONMin)
	r := rng(uint64(n))
	b := make([]byte, 0, n)
	b = append(b, StampField...)
	b = append(b, strings.Repeat("0", 2*StampLen)...)
	b = append(b, `","type":"history","room":"general","messages":[`...)
	const end = `]}`
	// The messages, each with its text apart, so that the texts can be
	// made longer or shorter to make n bytes in all.
	type message struct{ pre, text, post []byte }
	var ms []message
	total := len(b) + len(end)
	id, ts := 4817, 1767225703
	speakers := r.next(len(users))
	for {
		var m message
		if len(ms) > 0 {
			m.pre = append(m.pre, ',')
		}
		u := (speakers + r.next(3)) % len(users) // a conversation: three of them
		role := "member"
		if u == 0 {
			role = "moderator"
		}
		m.pre = append(m.pre, `{"type":"message","id":`...)
		m.pre = strconv.AppendInt(m.pre, int64(id), 10)
		m.pre = append(m.pre, `,"channel":"general","user":{"id":`...)
		m.pre = strconv.AppendInt(m.pre, int64(u+1), 10)
		m.pre = append(m.pre, `,"name":"`+users[u]+`","role":"`+role+`"},"ts":"`...)
		m.pre = time.Unix(int64(ts), int64(r.next(1000))*1e6).UTC().AppendFormat(m.pre, "2006-01-02T15:04:05.000Z")
		m.pre = append(m.pre, `","text":"`...)
		m.text = r.sentence(nil, 1, 7)
		m.post = append(m.post, `","reactions":[`...)
		for k := range r.next(3) {
			if k > 0 {
				m.post = append(m.post, ',')
			}
			m.post = append(m.post, `{"emoji":"`+[]string{"+1", "heart", "laugh", "eyes"}[r.next(4)]+`","count":`...)
			m.post = strconv.AppendInt(m.post, int64(1+r.next(5)), 10)
			m.post = append(m.post, '}')
		}
		m.post = append(m.post, `],"mentions":[],"attachments":[],"thread":null,"edited":`...)
		m.post = strconv.AppendBool(m.post, r.next(5) == 0)
		m.post = append(m.post, `,"deleted":false}`...)
		if total+len(m.pre)+len(m.post)+4 > n && len(ms) > 0 {
			break
		}
		ms = append(ms, m)
		total += len(m.pre) + len(m.text) + len(m.post)
		id += 1 + r.next(3)
		ts += 1 + r.next(40)
	}
	// Longer texts, a word at a time, then the last one cut to length.
	for i := 0; total < n; i = (i + 1) % len(ms) {
		w := r.word()
		t := ms[i].text
		ms[i].text = append(append(append(t[:len(t)-1:len(t)-1], ' '), w...), t[len(t)-1])
		total += 1 + len(w)
	}
	for i := len(ms) - 1; total > n && i >= 0; i-- { // JSONMin leaves room for a message
		cut := min(total-n, len(ms[i].text)-1)
		ms[i].text = ms[i].text[:len(ms[i].text)-cut]
		total -= cut
	}
	for _, m := range ms {
		b = append(append(append(b, m.pre...), m.text...), m.post...)
	}
	return append(b, end...)
}

// Text returns n bytes of prose (UTF-8, ASCII in fact): sentences from a
// vocabulary of a few hundred words, in paragraphs. Compressed with
// deflate at level 1, 64 KiB of it shrink about 2.3 times, as English does
// (TestPayloadRatios).
func Text(n int) []byte {
	r := rng(uint64(n) ^ 0x5eed)
	b := make([]byte, 0, n+256)
	for len(b) < n {
		b = r.sentence(b, 4, 22)
		if r.next(8) == 0 {
			b = append(b, "\n\n"...)
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

// StampLen is the length of the load generator's stamp in a room
// message; text payloads carry it in hexadecimal, in twice as many bytes.
const StampLen = 20
