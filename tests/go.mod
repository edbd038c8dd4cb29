module github.com/shockwave-go/shockwave/tests

go 1.26

require (
	github.com/lxzan/gws v1.8.9
	github.com/shockwave-go/shockwave v0.0.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.17.9 // indirect
	github.com/puzpuzpuz/xsync/v3 v3.5.1 // indirect
)

replace github.com/shockwave-go/shockwave => ../
