package otelsetup

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

// clearEnv unsets, for the test, every variable Init reads.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
	} {
		t.Setenv(k, "")
	}
}

// TestInitInstallsNothing: without exporters, the global providers and
// propagator are left as they are.
func TestInitInstallsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"nothing set", nil},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "stdout",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
		{"endpoint but none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tp, mp, prop := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
			shutdown, err := Init(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !identical(otel.GetTracerProvider(), tp) || !identical(otel.GetMeterProvider(), mp) ||
				!identical(otel.GetTextMapPropagator(), prop) {
				t.Error("Init installed a provider or a propagator")
			}
			if err := shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// identical reports whether a and b are the same value: the same pointer,
// or the same slice (a composite propagator is one).
func identical(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return false
	}
	switch va.Kind() {
	case reflect.Slice:
		return va.Pointer() == vb.Pointer() && va.Len() == vb.Len()
	case reflect.Map, reflect.Func:
		return va.Pointer() == vb.Pointer()
	}
	return a == b
}

// TestInitRefuses: unknown exporters and the gRPC protocol are errors.
func TestInitRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"unknown traces exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}},
		{"unknown metrics exporter", map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{"grpc for traces", map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if _, err := Init(t.Context()); err == nil {
				t.Fatal("Init succeeded")
			}
		})
	}
}

// TestInitExports installs OTLP (to a local HTTP server) and stdout, and
// checks that a span and a metric reach both when shutdown flushes them.
func TestInitExports(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")]++
		mu.Unlock()
	}))
	defer srv.Close()

	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL) // traces: otlp, implied by the endpoint
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp, console")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
	var out bytes.Buffer
	Stdout = &out
	defer func() { Stdout = nil }()

	shutdown, err := Init(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("otelsetup_test").Start(context.Background(), "test span")
	span.End()
	counter, err := otel.Meter("otelsetup_test").Int64Counter("test.counter")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{
		"POST /v1/traces application/x-protobuf",
		"POST /v1/metrics application/x-protobuf",
	} {
		if got[want] == 0 {
			t.Errorf("the OTLP server did not get %q; got %v", want, got)
		}
	}
	if !strings.Contains(out.String(), `"test.counter"`) {
		t.Errorf("stdout has no test.counter:\n%s", out.String())
	}
	if strings.Contains(out.String(), "test span") {
		t.Errorf("stdout has the span, but traces go to OTLP only:\n%s", out.String())
	}
	if tc := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(tc, ","), "traceparent") {
		t.Errorf("propagator fields %v, want traceparent", tc)
	}
}
