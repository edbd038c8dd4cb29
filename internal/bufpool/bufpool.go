// Package bufpool keeps byte buffers in size classes so that the hot paths of
// Shockwave borrow memory instead of allocating it.
//
// Buffers are handed out as *[]byte so that returning one to its sync.Pool
// does not allocate. A buffer larger than the biggest class is allocated and
// dropped; a buffer is returned only to the class whose capacity it has, so
// the pools never keep odd sizes (golang/go#23199).
package bufpool

import "sync"

// Size classes, smallest first. Each class is four times the one before.
var classes = [...]int{
	512,
	4 << 10,
	16 << 10,
	64 << 10,
	256 << 10,
	1 << 20,
	4 << 20,
	16 << 20,
}

var pools [len(classes)]sync.Pool

// MaxPooled is the capacity of the largest pooled buffer.
const MaxPooled = 16 << 20

func class(n int) int {
	for i, c := range classes {
		if n <= c {
			return i
		}
	}
	return -1
}

// Cap returns the capacity of the buffer Get(n) returns: the size of n's
// class, or n itself past MaxPooled.
func Cap(n int) int {
	if i := class(n); i >= 0 {
		return classes[i]
	}
	return n
}

// Get returns a buffer whose length is n and whose capacity is that of the
// smallest class holding n bytes. Its contents are undefined.
// It allocates only when the class's pool is empty or n > MaxPooled.
func Get(n int) *[]byte {
	i := class(n)
	if i < 0 {
		b := make([]byte, n)
		return &b
	}
	if v := pools[i].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, classes[i])
	return &b
}

// Put returns bp to its pool. Buffers whose capacity is not exactly a class
// size are dropped. bp must not be used after Put.
func Put(bp *[]byte) {
	if bp == nil {
		return
	}
	c := cap(*bp)
	i := class(c)
	if i < 0 || classes[i] != c {
		return
	}
	*bp = (*bp)[:0]
	pools[i].Put(bp)
}
