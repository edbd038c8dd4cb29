package otelsetup_test

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

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"

	"github.com/shockwave-go/shockwave/examples/otelsetup"
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

// setEnv sets the test's variables, over clearEnv's.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// globals is the global providers and propagator at one moment.
type globals struct{ tp, mp, prop any }

func current() globals {
	return globals{otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()}
}

// installed says which of the globals changed since g.
func (g globals) installed() (traces, metrics, propagator bool) {
	now := current()
	return !identical(now.tp, g.tp), !identical(now.mp, g.mp), !identical(now.prop, g.prop)
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

// TestInitInstallsNothing: without exporters, the global providers and
// propagator are left as they are, and there is no metrics handler.
func TestInitInstallsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts *otelsetup.Options
	}{
		{"nothing set", nil, nil},
		{"zero options", nil, &otelsetup.Options{}},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, nil},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "stdout",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, nil},
		{"disabled, whatever the options say", map[string]string{"OTEL_SDK_DISABLED": "true"},
			&otelsetup.Options{TracesExporter: "stdout", MetricsExporter: "prometheus"}},
		{"endpoint but none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, nil},
		{"options say none over the variables", map[string]string{"OTEL_TRACES_EXPORTER": "stdout",
			"OTEL_METRICS_EXPORTER": "prometheus"}, &otelsetup.Options{TracesExporter: "none", MetricsExporter: "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			before := current()
			tel, err := otelsetup.Init(t.Context(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if traces, metrics, prop := before.installed(); traces || metrics || prop {
				t.Errorf("Init installed a tracer provider %v, a meter provider %v, a propagator %v", traces, metrics, prop)
			}
			if tel.MetricsHandler() != nil {
				t.Error("a metrics handler without the prometheus exporter")
			}
			if err := tel.Shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// TestInitRefuses: unknown exporters, prometheus for traces and the gRPC
// protocol are errors, which name where the value came from.
func TestInitRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		opts *otelsetup.Options
		want string // in the error
	}{
		{"unknown traces exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, nil,
			`OTEL_TRACES_EXPORTER="zipkin"`},
		{"unknown metrics exporter", map[string]string{"OTEL_METRICS_EXPORTER": "otlp,statsd"}, nil,
			`OTEL_METRICS_EXPORTER="otlp,statsd"`},
		{"prometheus for traces", map[string]string{"OTEL_TRACES_EXPORTER": "prometheus"}, nil,
			"want otlp, stdout or none"},
		{"prometheus for traces in the options", nil, &otelsetup.Options{TracesExporter: "prometheus"},
			`Options.TracesExporter="prometheus"`},
		{"unknown in the options", nil, &otelsetup.Options{MetricsExporter: "jaeger"},
			"want otlp, stdout, prometheus or none"},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, nil, "only http/protobuf"},
		{"grpc for traces", map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, nil, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"grpc for metrics in the options", map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"},
			&otelsetup.Options{MetricsExporter: "prometheus,otlp"}, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			before := current()
			tel, err := otelsetup.Init(t.Context(), tc.opts)
			if err == nil {
				tel.Shutdown(t.Context())
				t.Fatal("Init succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if traces, metrics, prop := before.installed(); traces || metrics || prop {
				t.Error("Init failed, but installed something")
			}
		})
	}
}

// TestInitExports installs OTLP (to a local HTTP server) and stdout, and
// checks that a span and a metric reach both when shutdown flushes them.
func TestInitExports(t *testing.T) {
	otlp := otlpServer(t)
	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, // traces: otlp, implied by the endpoint
		"OTEL_METRICS_EXPORTER":       "otlp, console",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "5000",
	})
	var out bytes.Buffer
	tel, err := otelsetup.Init(t.Context(), &otelsetup.Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	record(t)
	if tel.MetricsHandler() != nil {
		t.Error("a metrics handler without the prometheus exporter")
	}
	shutdown(t, tel)
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}

	for _, want := range []string{
		"POST /v1/traces application/x-protobuf",
		"POST /v1/metrics application/x-protobuf",
	} {
		if otlp.count(want) == 0 {
			t.Errorf("the OTLP server did not get %q", want)
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

// TestInitCombinations: each way of naming the exporters installs what it
// says, and sends a span and a counter where it says: stdout to a buffer,
// OTLP to a local server, Prometheus through the handler, scraped over
// loopback.
func TestInitCombinations(t *testing.T) {
	const counterLine = "test_counter_total{" // the counter as Prometheus names it
	for _, tc := range []struct {
		name string
		env  map[string]string // "OTLP" in a value stands for the test's OTLP server
		opts otelsetup.Options

		traces, metrics bool   // providers installed (the propagator goes with traces)
		handler         bool   // MetricsHandler is not nil
		stdout          string // "span", "metric", "both" or "": what the buffer gets
		otlp            string // likewise for the OTLP server
		scrape          bool   // the handler serves the counter
		goMetrics       bool   // and the Go runtime's
	}{
		{name: "traces to stdout", env: map[string]string{"OTEL_TRACES_EXPORTER": "stdout"},
			traces: true, stdout: "span"},
		{name: "metrics to prometheus", env: map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"},
			metrics: true, handler: true, scrape: true, goMetrics: true},
		{name: "prometheus and stdout, spaced and upper case", env: map[string]string{"OTEL_METRICS_EXPORTER": " Prometheus , stdout,prometheus"},
			metrics: true, handler: true, stdout: "metric", scrape: true, goMetrics: true},
		{name: "prometheus beside an implied otlp for traces", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "OTLP", "OTEL_METRICS_EXPORTER": "prometheus"},
			traces: true, metrics: true, handler: true, otlp: "span", scrape: true, goMetrics: true},
		{name: "otlp for metrics only, by its own endpoint", env: map[string]string{
			"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "OTLP/v1/metrics"},
			metrics: true, otlp: "metric"},
		{name: "everything", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "OTLP",
			"OTEL_TRACES_EXPORTER": "otlp,stdout", "OTEL_METRICS_EXPORTER": "otlp,stdout,prometheus"},
			traces: true, metrics: true, handler: true, stdout: "both", otlp: "both", scrape: true, goMetrics: true},
		{name: "options over the variables", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "stdout"},
			opts:   otelsetup.Options{TracesExporter: "console", MetricsExporter: "prometheus"},
			traces: true, metrics: true, handler: true, stdout: "span", scrape: true, goMetrics: true},
		{name: "the program's registry", env: map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"},
			opts:    otelsetup.Options{Registry: prometheus.NewRegistry()},
			metrics: true, handler: true, scrape: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			otlp := otlpServer(t)
			for k, v := range tc.env {
				tc.env[k] = strings.Replace(v, "OTLP", otlp.url, 1)
			}
			tc.env["OTEL_EXPORTER_OTLP_TIMEOUT"] = "5000"
			setEnv(t, tc.env)
			var out bytes.Buffer
			opts := tc.opts
			opts.Stdout = &out
			before := current()
			tel, err := otelsetup.Init(t.Context(), &opts)
			if err != nil {
				t.Fatal(err)
			}
			traces, metrics, prop := before.installed()
			if traces != tc.traces || metrics != tc.metrics || prop != tc.traces {
				t.Errorf("installed a tracer provider %v, a meter provider %v, a propagator %v; want %v, %v, %v",
					traces, metrics, prop, tc.traces, tc.metrics, tc.traces)
			}
			if h := tel.MetricsHandler(); (h != nil) != tc.handler {
				t.Fatalf("MetricsHandler %v, want one: %v", h, tc.handler)
			}
			record(t)

			if tc.handler {
				page := scrape(t, tel.MetricsHandler())
				if strings.Contains(page, counterLine) != tc.scrape {
					t.Errorf("the scrape has the counter: %v, want %v:\n%s", !tc.scrape, tc.scrape, page)
				}
				if tc.scrape && !strings.Contains(page, "# TYPE test_counter_total counter") {
					t.Errorf("the counter is not typed as a counter:\n%s", page)
				}
				if strings.Contains(page, "go_goroutines ") != tc.goMetrics {
					t.Errorf("the scrape has go_goroutines: %v, want %v", !tc.goMetrics, tc.goMetrics)
				}
				if opts.Registry != nil {
					if mfs, err := opts.Registry.Gather(); err != nil || !hasFamily(mfs, "test_counter_total") {
						t.Errorf("the program's registry does not hold the counter (%v)", err)
					}
				}
			}
			shutdown(t, tel)

			span, metric := strings.Contains(out.String(), `"test span"`), strings.Contains(out.String(), `"test.counter"`)
			if got := what(span, metric); got != tc.stdout {
				t.Errorf("stdout got %q, want %q:\n%s", got, tc.stdout, out.String())
			}
			span = otlp.count("POST /v1/traces application/x-protobuf") > 0
			metric = otlp.count("POST /v1/metrics application/x-protobuf") > 0
			if got := what(span, metric); got != tc.otlp {
				t.Errorf("the OTLP server got %q, want %q", got, tc.otlp)
			}
		})
	}
}

// what names what an exporter got, in TestInitCombinations' words.
func what(span, metric bool) string {
	switch {
	case span && metric:
		return "both"
	case span:
		return "span"
	case metric:
		return "metric"
	}
	return ""
}

// record ends a span and adds 3 to a counter, through the global
// providers.
func record(t *testing.T) {
	t.Helper()
	_, span := otel.Tracer("otelsetup_test").Start(context.Background(), "test span")
	span.End()
	counter, err := otel.Meter("otelsetup_test").Int64Counter("test.counter")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)
}

// shutdown flushes tel, within 10 s.
func shutdown(t *testing.T, tel *otelsetup.Telemetry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// scrape serves h on loopback and GETs it as Prometheus would.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	return string(body)
}

func hasFamily[F interface{ GetName() string }](mfs []F, name string) bool {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

// collector is a local OTLP/HTTP server that counts the requests it gets.
type collector struct {
	url string
	mu  sync.Mutex
	got map[string]int // mu guards got
}

func otlpServer(t *testing.T) *collector {
	c := &collector{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.got[r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")]++
		c.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// count is how many requests of kind ("POST /v1/traces application/x-protobuf")
// the server got.
func (c *collector) count(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[kind]
}
