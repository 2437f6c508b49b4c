// Command ratio reads the output of anylisten's benchmarks, run several
// times with raw and anylisten interleaved (internal/bench/compare.sh does
// that), and prints one line per case with the median ratio of
// anylisten's throughput to raw's, its spread, and the same for CPU time.
//
// A case is a benchmark name whose last element is impl=raw or another
// variant (BenchmarkHTTP/tcp/impl=raw and BenchmarkHTTP/tcp/impl=anylisten;
// BenchmarkListenAll/impl=raw and BenchmarkListenAll/impl=all2). The k-th
// result of each variant is paired with the k-th result of raw, which ran
// next to it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)
var cpuMetric = regexp.MustCompile(`([\d.]+) cpu-ns/op`)

type result struct{ ns, cpu float64 }

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratio:", err)
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) error {
	results := map[string]map[string][]result{} // case -> variant -> results in order
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			continue
		}
		c, variant := name[:i], strings.TrimPrefix(name[i+1:], "impl=")
		ns, _ := strconv.ParseFloat(m[2], 64)
		var cpu float64
		if cm := cpuMetric.FindStringSubmatch(m[3]); cm != nil {
			cpu, _ = strconv.ParseFloat(cm[1], 64)
		}
		if results[c] == nil {
			results[c] = map[string][]result{}
			order = append(order, c)
		}
		results[c][variant] = append(results[c][variant], result{ns, cpu})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, c := range order {
		raw := results[c]["raw"]
		if len(raw) == 0 {
			continue
		}
		var variants []string
		for v := range results[c] {
			if v != "raw" {
				variants = append(variants, v)
			}
		}
		sort.Strings(variants)
		for _, v := range variants {
			got := results[c][v]
			n := min(len(raw), len(got))
			var speed, cpu []float64
			for k := range n {
				speed = append(speed, raw[k].ns/got[k].ns)
				if raw[k].cpu > 0 && got[k].cpu > 0 {
					cpu = append(cpu, got[k].cpu/raw[k].cpu)
				}
			}
			name := strings.TrimPrefix(c, "Benchmark") + "/" + v
			fmt.Fprintf(w, "%-40s %s raw throughput", name+":", summary(speed))
			if len(cpu) > 0 {
				fmt.Fprintf(w, "; CPU per op %s raw", summary(cpu))
			}
			fmt.Fprintf(w, " (%d rounds)\n", n)
		}
	}
	return nil
}

// summary gives the median and the range of xs, like "1.00x (0.95-1.04)".
func summary(xs []float64) string {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("%.2fx (%.2f-%.2f)", med, s[0], s[len(s)-1])
}
