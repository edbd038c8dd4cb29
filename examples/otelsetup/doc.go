// Package otelsetup installs OpenTelemetry for a program built on
// Shockwave, as the standard environment variables say, and serves its
// metrics to Prometheus when they say so. It is the set-up the examples
// use; import it as it is, or copy it.
//
// Call Init before runtime.New, since the runtime looks at the global
// providers once, when it is made, and Shutdown after the runtime's own
// Shutdown, so that the spans and metrics of the last sessions are
// flushed:
//
//	tel, err := otelsetup.Init(ctx, nil) // nil: everything from the environment
//	if err != nil {
//		log.Fatal(err)
//	}
//	rt, err := runtime.New(handler)
//	...
//	mux.Handle("GET /ws", rt)
//	if h := tel.MetricsHandler(); h != nil { // OTEL_METRICS_EXPORTER=prometheus
//		mux.Handle("GET /metrics", h)
//	}
//	...
//	rt.Shutdown(ctx)
//	tel.Shutdown(ctx)
//
// The variables it reads, or leaves the exporters to read:
//
//	OTEL_TRACES_EXPORTER                          otlp, stdout (or console), none
//	OTEL_METRICS_EXPORTER                         otlp, stdout (or console), prometheus, none;
//	                                              either may be a comma-separated list
//	OTEL_EXPORTER_OTLP_ENDPOINT                   e.g. http://localhost:4318 (OTLP over HTTP)
//	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ..._METRICS_ENDPOINT, ..._HEADERS, ..._TIMEOUT
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   the resource
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG  e.g. parentbased_traceidratio, 0.01
//	OTEL_METRIC_EXPORT_INTERVAL                   milliseconds between pushes (otlp, stdout)
//	OTEL_SDK_DISABLED=true                        installs nothing
//
// An exporter variable that is not set means none, unless an OTLP endpoint
// is set for that signal, which means otlp. With nothing set, Init
// installs nothing: the global providers stay OpenTelemetry's no-op
// defaults, and Shockwave's instrumentation stays off and free. The
// fields of Options, where set, take the place of the exporter variables.
//
// OTLP goes over HTTP with protobuf (port 4318), not gRPC, to keep the
// dependencies light; OTEL_EXPORTER_OTLP_PROTOCOL=grpc is refused. The
// OTLP exporters read the other OTEL_EXPORTER_OTLP_* variables themselves.
//
// With prometheus, nothing is pushed: Prometheus scrapes the handler that
// Telemetry.MetricsHandler returns, and the program serves it where it
// chooses (OTEL_EXPORTER_PROMETHEUS_HOST and _PORT, which other SDKs use
// to start a server of their own, are not read). The names follow
// Prometheus' conventions: shockwave.sessions.active is served as
// shockwave_sessions_active, a counter gains _total and a unit a suffix
// (shockwave.handler.duration, in seconds, is
// shockwave_handler_duration_seconds). Whoever reaches the handler
// learns how busy the server is; in production serve it where only the
// scraper can, on a listener of its own or behind authentication. The
// examples serve it beside their pages, for the sake of a demonstration.
package otelsetup
