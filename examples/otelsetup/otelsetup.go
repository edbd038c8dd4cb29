// Package otelsetup installs OpenTelemetry exporters for Shockwave's
// examples, as the standard environment variables say:
//
//	OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER   otlp, stdout (or console), none;
//	                                              a comma-separated list is allowed
//	OTEL_EXPORTER_OTLP_ENDPOINT                   e.g. http://localhost:4318 (OTLP over HTTP)
//	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ..._METRICS_ENDPOINT, ..._HEADERS, ..._TIMEOUT
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   the resource
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG  e.g. parentbased_traceidratio, 0.01
//	OTEL_METRIC_EXPORT_INTERVAL                   milliseconds between metric exports
//	OTEL_SDK_DISABLED=true                        installs nothing
//
// An exporter variable that is not set means none, unless an OTLP endpoint
// is set for that signal, which means otlp. With nothing set, Init
// installs nothing: the global providers stay OpenTelemetry's no-op
// defaults, and Shockwave's instrumentation stays off and free.
//
// OTLP goes over HTTP with protobuf (port 4318), not gRPC, to keep the
// examples' dependencies light; OTEL_EXPORTER_OTLP_PROTOCOL=grpc is refused.
// The exporters read the other OTEL_EXPORTER_OTLP_* variables themselves.
//
// Call Init before runtime.New: the runtime looks at the global providers
// once, when it is made.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Stdout is where the stdout exporters write. Tests replace it.
var Stdout io.Writer = os.Stdout

// Init reads the environment and installs the tracer provider, the meter
// provider and the W3C TraceContext and Baggage propagators globally, for
// the signals that have an exporter. It returns a function that flushes
// and stops what it installed; with nothing installed, that function does
// nothing. On error, nothing is left installed.
func Init(ctx context.Context) (shutdown func(context.Context) error, err error) {
	var stops []func(context.Context) error
	shutdown = func(ctx context.Context) error {
		var errs []error
		for _, stop := range stops {
			errs = append(errs, stop(ctx))
		}
		stops = nil
		return errors.Join(errs...)
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return shutdown, nil
	}
	traces, err := exporters("OTEL_TRACES_EXPORTER", "TRACES")
	if err != nil {
		return nil, err
	}
	metrics, err := exporters("OTEL_METRICS_EXPORTER", "METRICS")
	if err != nil {
		return nil, err
	}
	if len(traces) == 0 && len(metrics) == 0 {
		return shutdown, nil
	}
	res := resource.Default() // with OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES

	var tp *sdktrace.TracerProvider
	if len(traces) > 0 {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		for _, name := range traces {
			switch name {
			case "otlp":
				exp, err := otlptracehttp.New(ctx)
				if err != nil {
					return nil, errors.Join(err, shutdown(ctx))
				}
				opts = append(opts, sdktrace.WithBatcher(exp))
			case "stdout":
				exp, err := stdouttrace.New(stdouttrace.WithWriter(Stdout), stdouttrace.WithPrettyPrint())
				if err != nil {
					return nil, errors.Join(err, shutdown(ctx))
				}
				// A debugging exporter: spans show as they end.
				opts = append(opts, sdktrace.WithSyncer(exp))
			}
		}
		tp = sdktrace.NewTracerProvider(opts...)
		stops = append(stops, tp.Shutdown)
	}

	var mp *sdkmetric.MeterProvider
	if len(metrics) > 0 {
		opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		for _, name := range metrics {
			var exp sdkmetric.Exporter
			switch name {
			case "otlp":
				exp, err = otlpmetrichttp.New(ctx)
			case "stdout":
				exp, err = stdoutmetric.New(stdoutmetric.WithWriter(Stdout), stdoutmetric.WithPrettyPrint())
			}
			if err != nil {
				return nil, errors.Join(err, shutdown(ctx))
			}
			opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		}
		mp = sdkmetric.NewMeterProvider(opts...)
		stops = append(stops, mp.Shutdown)
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
	return shutdown, nil
}

// exporters returns the exporters that a signal's variable names, without
// duplicates and without "none". An unset variable means otlp if an OTLP
// endpoint is set for the signal, and none otherwise.
func exporters(key, signal string) ([]string, error) {
	v, set := os.LookupEnv(key)
	v = strings.TrimSpace(v)
	if !set || v == "" {
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" &&
			os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") == "" {
			return nil, nil
		}
		v = "otlp"
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
		default:
			return nil, fmt.Errorf("otelsetup: %s=%q: unknown exporter (want otlp, stdout or none)", key, v)
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

// MustInit is Init for a program's main: it exits on error, and returns a
// function to defer that flushes within 5 s and logs a failure, naming the
// program.
func MustInit(program string) (shutdown func()) {
	stop, err := Init(context.Background())
	if err != nil {
		log.Fatalf("%s: telemetry: %v", program, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			log.Printf("%s: telemetry shutdown: %v", program, err)
		}
	}
}
