// Command chart redraws the benchmark chart (and, with -md, the generated
// part of the report) from the raw results the matrix saved, without
// running anything:
//
//	go run ./tests/bench/cmd/chart -json docs/benchmarks.json -svg docs/benchmarks.svg
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/shockwave-go/shockwave/tests/bench/internal/report"
)

func main() {
	in := flag.String("json", "docs/benchmarks.json", "results written by tests/bench/cmd/matrix")
	svg := flag.String("svg", "docs/benchmarks.svg", "chart to write")
	md := flag.String("md", "", "also rewrite the generated part of this Markdown report")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("chart: ")

	b, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var m report.Matrix
	if err := json.Unmarshal(b, &m); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*svg, m.Chart(), 0o644); err != nil {
		log.Fatal(err)
	}
	if *md != "" {
		if err := report.UpdateMarkdown(*md, m.Markdown(filepath.Base(*svg))); err != nil {
			log.Fatal(err)
		}
	}
}
