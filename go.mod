module github.com/shockwave-go/shockwave

go 1.26

require (
	github.com/puzpuzpuz/xsync/v3 v3.5.1
	github.com/vmihailenco/msgpack/v5 v5.4.1
	go.uber.org/goleak v1.3.0
)

require github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
