package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
BenchmarkHTTP/tcp/impl=raw-2         	   3000	     100 ns/op	     50 cpu-ns/op	    5178 B/op	      62 allocs/op
BenchmarkHTTP/tcp/impl=anylisten-2   	   3000	     100 ns/op	     50 cpu-ns/op	    5265 B/op	      61 allocs/op
BenchmarkListenAll/impl=raw-2        	   3000	     100 ns/op
BenchmarkListenAll/impl=all2-2	   3000	     125 ns/op
BenchmarkHTTP/tcp/impl=raw-2         	   3000	     200 ns/op	     60 cpu-ns/op
BenchmarkHTTP/tcp/impl=anylisten-2   	   3000	     100 ns/op	     30 cpu-ns/op
BenchmarkHTTP/tcp/impl=raw-2         	   3000	     100 ns/op	     50 cpu-ns/op
BenchmarkHTTP/tcp/impl=anylisten-2   	   3000	     200 ns/op	     75 cpu-ns/op
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := "HTTP/tcp/anylisten:                      1.00x (0.50-2.00) raw throughput; CPU per op 1.00x (0.50-1.50) raw (3 rounds)\n" +
		"ListenAll/all2:                          0.80x (0.80-0.80) raw throughput (1 rounds)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
