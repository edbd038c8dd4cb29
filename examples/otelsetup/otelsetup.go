package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options configures Init. A zero field takes its default; for the
// exporters, that is what the environment says.
type Options struct {
	// TracesExporter names the span exporters as OTEL_TRACES_EXPORTER
	// does: otlp, stdout (or console), none, or a comma-separated list.
	// Defaults to $OTEL_TRACES_EXPORTER; when that is unset too, to otlp
	// if an OTLP endpoint is set for traces, and to none otherwise.
	TracesExporter string
	// MetricsExporter names the metric exporters as OTEL_METRICS_EXPORTER
	// does: those of TracesExporter, and prometheus. Defaults to
	// $OTEL_METRICS_EXPORTER, and then as TracesExporter does.
	MetricsExporter string
	// Stdout is where the stdout exporters write. Defaults to os.Stdout.
	Stdout io.Writer
	// Registry is the Prometheus registry that the prometheus exporter
	// registers with and MetricsHandler serves; give the program's own to
	// serve its metrics and Shockwave's on one page. Defaults to a new
	// registry holding the Go runtime and process collectors as well
	// (go_*, process_*), so that every Init has one of its own.
	Registry *prometheus.Registry
}

// Telemetry is what Init installed. Its methods may be called from any
// goroutine.
type Telemetry struct {
	metrics http.Handler // nil without the prometheus exporter

	mu    sync.Mutex
	stops []func(context.Context) error // mu guards stops
}

// MetricsHandler returns the handler that serves the metrics in
// Prometheus' text format when the prometheus exporter is on, and nil
// when it is off. Each request collects the metrics afresh. Mount it for
// GET, at /metrics by convention, where only the scraper can reach it
// (see the package doc).
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// Shutdown flushes what the exporters still hold and stops the providers
// Init installed, within ctx. Call it after the runtime's Shutdown, whose
// sessions end their spans as they close. Later calls do nothing and
// return nil. The stopped providers stay installed and export nothing
// more; MetricsHandler then serves no OpenTelemetry metrics.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	stops := t.stops
	t.stops = nil
	t.mu.Unlock()
	var errs []error
	for _, stop := range stops {
		errs = append(errs, stop(ctx))
	}
	return errors.Join(errs...)
}

// Init reads opts and the environment, and installs globally the tracer
// provider, the meter provider and the W3C TraceContext and Baggage
// propagators, for the signals that have an exporter; nil opts means
// every default. With nothing to install, it returns a Telemetry whose
// Shutdown does nothing. On error, nothing is left installed.
//
// Making an exporter does not reach its collector, so ctx only bounds
// what the OTLP exporters do when they are made.
func Init(ctx context.Context, opts *Options) (*Telemetry, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	t := &Telemetry{}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return t, nil
	}
	traces, err := exporters(o.TracesExporter, "TracesExporter", "TRACES")
	if err != nil {
		return nil, err
	}
	metrics, err := exporters(o.MetricsExporter, "MetricsExporter", "METRICS")
	if err != nil {
		return nil, err
	}
	if len(traces) == 0 && len(metrics) == 0 {
		return t, nil
	}
	res := resource.Default() // with OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES

	var tp *sdktrace.TracerProvider
	if len(traces) > 0 {
		if tp, err = tracerProvider(ctx, traces, res, o.Stdout); err != nil {
			return nil, err
		}
		t.stops = append(t.stops, tp.Shutdown)
	}
	var mp *sdkmetric.MeterProvider
	if len(metrics) > 0 {
		if mp, t.metrics, err = meterProvider(ctx, metrics, res, &o); err != nil {
			return nil, errors.Join(err, t.Shutdown(ctx))
		}
		t.stops = append(t.stops, mp.Shutdown)
	}

	// Everything is made: install it.
	if tp != nil {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{}))
	}
	if mp != nil {
		otel.SetMeterProvider(mp)
	}
	return t, nil
}

// tracerProvider makes a tracer provider that exports to the named
// exporters. On error, it stops the exporters it made.
func tracerProvider(ctx context.Context, names []string, res *resource.Resource, stdout io.Writer) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	var made []sdktrace.SpanExporter
	for _, name := range names {
		var exp sdktrace.SpanExporter
		var err error
		switch name {
		case "otlp":
			exp, err = otlptracehttp.New(ctx)
			if err == nil {
				opts = append(opts, sdktrace.WithBatcher(exp))
			}
		case "stdout":
			exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout), stdouttrace.WithPrettyPrint())
			if err == nil {
				// A debugging exporter: spans show as they end.
				opts = append(opts, sdktrace.WithSyncer(exp))
			}
		}
		if err != nil {
			for _, e := range made {
				err = errors.Join(err, e.Shutdown(ctx))
			}
			return nil, err
		}
		made = append(made, exp)
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// meterProvider makes a meter provider that exports to the named
// exporters, and the handler of the prometheus exporter's registry if it
// is one of them. On error, it stops the readers it made.
func meterProvider(ctx context.Context, names []string, res *resource.Resource, o *Options) (*sdkmetric.MeterProvider, http.Handler, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	var made []sdkmetric.Reader
	var handler http.Handler
	for _, name := range names {
		var r sdkmetric.Reader
		var err error
		switch name {
		case "otlp":
			var exp sdkmetric.Exporter
			if exp, err = otlpmetrichttp.New(ctx); err == nil {
				r = sdkmetric.NewPeriodicReader(exp)
			}
		case "stdout":
			var exp sdkmetric.Exporter
			if exp, err = stdoutmetric.New(stdoutmetric.WithWriter(o.Stdout), stdoutmetric.WithPrettyPrint()); err == nil {
				r = sdkmetric.NewPeriodicReader(exp)
			}
		case "prometheus":
			reg := o.Registry
			if reg == nil {
				reg = prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(),
					collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			}
			if r, err = otelprom.New(otelprom.WithRegisterer(reg)); err == nil {
				handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			}
		}
		if err != nil {
			for _, r := range made {
				err = errors.Join(err, r.Shutdown(ctx))
			}
			return nil, nil, err
		}
		made = append(made, r)
		opts = append(opts, sdkmetric.WithReader(r))
	}
	return sdkmetric.NewMeterProvider(opts...), handler, nil
}

// exporters returns the exporters that a signal's option (the field of
// Options named field) or, when that is empty, its variable names, without
// duplicates and without "none". Both empty means otlp if an OTLP endpoint
// is set for the signal, and none otherwise.
func exporters(option, field, signal string) ([]string, error) {
	v, from := strings.TrimSpace(option), "Options."+field
	if v == "" {
		from = "OTEL_" + signal + "_EXPORTER"
		v = strings.TrimSpace(os.Getenv(from))
	}
	if v == "" {
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" &&
			os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") == "" {
			return nil, nil
		}
		v = "otlp"
	}
	unknown := func() error {
		want := "otlp, stdout or none"
		if signal == "METRICS" {
			want = "otlp, stdout, prometheus or none"
		}
		return fmt.Errorf("otelsetup: %s=%q: unknown exporter (want %s)", from, v, want)
	}
	var names []string
	for _, name := range strings.Split(v, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch name {
		case "none":
			continue
		case "console":
			name = "stdout"
		case "otlp", "stdout":
		case "prometheus":
			if signal != "METRICS" {
				return nil, unknown()
			}
		default:
			return nil, unknown()
		}
		if name == "otlp" {
			if err := checkProtocol(signal); err != nil {
				return nil, err
			}
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

// checkProtocol refuses an OTLP protocol other than HTTP with protobuf.
func checkProtocol(signal string) error {
	for _, key := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(os.Getenv(key)); v != "" {
			if v != "http/protobuf" {
				return fmt.Errorf("otelsetup: %s=%q: only http/protobuf is supported", key, v)
			}
			return nil
		}
	}
	return nil
}
