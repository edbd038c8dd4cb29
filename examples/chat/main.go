// Command chat is a chat server with its web page: sign-in with a name,
// rooms, presence, history, private messages and a typing indicator, over
// Shockwave's runtime and event envelope. Everything is in memory; there is
// nothing else to start.
//
//	go run ./examples/chat
//
// then open http://localhost:8080 in two browser windows (two profiles, or
// one private window: the sign-in is a cookie, shared by a profile's
// windows). The server is the chatserver package beside this file; this
// command only reads flags, listens and shuts down.
//
// With -nats, the URL of a NATS server with JetStream (nats-server -js),
// several chat processes are one chat: each is a node, whose rooms reach
// the members connected to the others (runtime/natsbroker), and whose
// rooms' history is a JetStream stream that every node reads, so that a
// page recovers what it missed on whichever node it lands. Give them the
// same -cookie-key, so that a sign-in on one holds on the others:
//
//	nats-server -js &
//	go run ./examples/chat -addr :8080 -nats nats://127.0.0.1:4222 -cookie-key $KEY &
//	go run ./examples/chat -addr :8081 -nats nats://127.0.0.1:4222 -cookie-key $KEY
//
// What a node keeps for itself stays its own: its room list (the fixed
// rooms and those with users on it), its bound on rooms
// (chatserver.Config.MaxRooms, counted on the node), and private
// messages, which reach the users connected to the same node; the page
// says so (chatserver.Config.Node). -node names the node, as the page
// shows it; natsbroker makes a random name without it.
//
// Messages of 512 bytes or more go out compressed with permessage-deflate
// (RFC 7692) to the clients that offer it, as every browser does;
// -deflate=false sends everything as it is. See compression for why and
// what it saves.
//
// The sign-in cookies are signed with the key of -cookie-key or
// $SHOCKWAVE_CHAT_KEY (hex, at least 16 bytes; openssl rand -hex 32 makes
// one); without either, with a random key, so that everyone signs in again
// after a restart.
//
// The sign-in cookie is Secure, so that the browser sends it over https
// only, when a request comes over TLS; behind a reverse proxy that
// terminates TLS, start with -secure-cookie, and with -trusted-proxies
// naming the proxy, so that the per-address limits count the clients and
// not the proxy. A trusted proxy's X-Forwarded-Proto: https (or Forwarded:
// proto=https) makes the cookie Secure too, without -secure-cookie; the
// header is ignored from anyone else, and it never makes the cookie less
// secure than the flag and TLS make it.
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see the otelsetup package and docs/observability.md); with none set,
// instrumentation is off. With OTEL_METRICS_EXPORTER=prometheus it serves
// the metrics for Prometheus at GET /metrics, beside the page:
//
//	OTEL_METRICS_EXPORTER=prometheus go run ./examples/chat
//	curl localhost:8080/metrics
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// compression is the chat's permessage-deflate, unless -deflate=false.
// Each message is compressed on its own (wire.CompressionNoContextTakeover),
// so that a message to a room is compressed once for all its members, in
// about 5 µs per KiB whatever the room's size, and an idle connection
// keeps no compressor. Only what reaches the runtime's threshold of 512
// bytes is compressed: most chat lines are shorter, and go out as they
// are. What is longer is mostly text and names, which deflate shrinks
// well: a chat.msg of 1,000 characters of English, 1,120 bytes of JSON,
// takes about 650 on the wire (58 %), and the reply to a join into a
// room of 50 users, whose names are all in its "present", 220 instead of
// 820 (27 %). TestDeflate measures both. A browser compresses every
// message it sends once deflate is agreed, short ones included, which
// the chat inflates in a few µs each.
var compression = runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	rate := flag.Float64("rate", 20, "messages a second each connection may send; a faster client is read more slowly (negative: no limit)")
	maxLength := flag.Int("max-length", 2000, "longest message, in characters")
	history := flag.Int("history", 100, "messages each room keeps, for those who join it and those who come back")
	linger := flag.Duration("linger", 10*time.Minute, "how long a room other than lobby and random keeps its history once empty (0: not at all)")
	grace := flag.Duration("grace", 15*time.Second, "how long a user whose connection dropped still counts as in the room (0: not at all)")
	keyHex := flag.String("cookie-key", "", "key that signs the sign-in cookies, in hex (at least 16 bytes; default $SHOCKWAVE_CHAT_KEY, else random at start, and then sign-ins do not survive a restart)")
	secure := flag.Bool("secure-cookie", false, "make the sign-in cookie Secure on every request: the site is served over https, through a proxy that terminates TLS included (default: Secure only over TLS, or when a trusted proxy says https)")
	proxyList := flag.String("trusted-proxies", "", "comma-separated addresses or prefixes (10.0.0.1, 10.0.0.0/8) of the reverse proxies in front, whose Forwarded, X-Forwarded-For and X-Forwarded-Proto headers count")
	natsURL := flag.String("nats", "", "URL of a NATS server with JetStream (nats-server -js) that chat processes share their rooms through, as one chat (default: none, this process alone)")
	node := flag.String("node", "", "this process's name among those of -nats: letters, digits, - and _ (default random)")
	deflate := flag.Bool("deflate", true, "compress messages of 512 bytes or more (permessage-deflate) for the clients that offer it, as browsers do")
	flag.Parse()
	for _, d := range []*time.Duration{linger, grace} {
		if *d <= 0 {
			*d = -1 // none: the chat's zero is its default
		}
	}

	if *keyHex == "" {
		*keyHex = os.Getenv("SHOCKWAVE_CHAT_KEY")
	}
	var key []byte
	if *keyHex != "" {
		var err error
		if key, err = hex.DecodeString(*keyHex); err != nil {
			log.Fatal("chat: -cookie-key is not hex") // not the error: it would quote the key
		}
	} else if *natsURL != "" {
		log.Print("chat: signing sign-in cookies with a random key: a user signed in on this node is refused by the others, and signs in again after a restart (give every node the same -cookie-key)")
	} else {
		log.Print("chat: signing sign-in cookies with a random key: users sign in again after a restart (see -cookie-key)")
	}

	var opts []runtime.Option
	if *deflate {
		opts = append(opts, compression)
	}
	if *proxyList != "" {
		proxies, err := parsePrefixes(*proxyList)
		if err != nil {
			log.Fatalf("chat: -trusted-proxies: %v", err)
		}
		opts = append(opts, runtime.WithTrustedProxies(proxies...))
	}

	// Before chatserver.New, whose runtime looks at the global providers
	// once.
	tel, err := otelsetup.Init(context.Background(), nil)
	if err != nil {
		log.Fatalf("chat: telemetry: %v", err)
	}

	cfg := chatserver.Config{
		MaxLength: *maxLength, Rate: *rate, History: *history, Linger: *linger, Grace: *grace,
		Key: key, SecureCookie: *secure, Runtime: opts,
	}
	var bs *bus
	if *natsURL != "" {
		if bs, err = joinBus(&cfg, *natsURL, *node, log.Printf); err != nil {
			log.Fatal(err)
		}
		log.Printf("chat: node %s, on NATS at %s", cfg.Node, bs.nc.ConnectedUrlRedacted())
	}
	chat, h, err := newServer(cfg, tel)
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer(*addr, h)

	log.Printf("chat: open http://%s in a browser", serve.BrowseAddr(*addr))
	if tel.MetricsHandler() != nil {
		log.Printf("chat: metrics for Prometheus at http://%s/metrics", serve.BrowseAddr(*addr))
	}
	// In order: the chat's runtime (its rooms unsubscribe as they empty),
	// the Broker and the NATS connection, then telemetry, which flushes
	// the spans of them all.
	shutdown := []func(context.Context) error{chat.Shutdown}
	if bs != nil {
		shutdown = append(shutdown, bs.shutdown)
	}
	if err := serve.Run(srv, append(shutdown, tel.Shutdown)...); err != nil {
		log.Print(err)
	}
}

// newServer makes the chat and the handler to serve: the chat's page,
// sign-in and WebSocket, and GET /metrics beside them when tel has a
// metrics handler. Call it after otelsetup.Init, whose providers the
// chat's runtime takes when it is made.
func newServer(cfg chatserver.Config, tel *otelsetup.Telemetry) (*chatserver.Server, http.Handler, error) {
	chat, err := chatserver.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return chat, serve.WithMetrics(chat, tel.MetricsHandler()), nil
}

// parsePrefixes reads a comma-separated list of prefixes, an address
// standing for itself alone.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if p, err := netip.ParsePrefix(f); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a prefix", f)
		}
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}
