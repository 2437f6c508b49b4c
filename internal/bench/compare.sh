#!/usr/bin/env bash
# Compares anylisten with the raw standard library on this machine: runs
# the benchmarks ROUNDS times (default 10), raw and anylisten next to each
# other in every round, and prints per case the median ratio of
# anylisten's throughput to raw's with its spread, and the same for CPU
# time per operation (whole process, getrusage). Then benchstat's verdict,
# if benchstat can be had.
#
#   internal/bench/compare.sh                    # every case, 10 rounds of 1 s
#   ROUNDS=20 BENCHTIME=2s BENCH='^BenchmarkHTTP$' internal/bench/compare.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rounds=${ROUNDS:-10}
benchtime=${BENCHTIME:-1s}
bench=${BENCH:-'^Benchmark(HTTP|HTTPNoKeepAlive|Accept|ListenAll|CopyFile|PacketEcho)$'}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go test -c -o "$work/anylisten.test" .
out=results-$(date +%Y%m%d-%H%M%S).txt
{
  echo "# $(go version), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
  for i in $(seq "$rounds"); do
    echo "round $i of $rounds" >&2
    "$work/anylisten.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.benchmem
  done
} > "$work/$out"
cp "$work/$out" "${RESULTS_DIR:-/tmp}/$out"

go run ./internal/bench/ratio < "$work/$out"
echo "raw results: ${RESULTS_DIR:-/tmp}/$out"
# benchstat's verdict per case (p-values over the rounds), raw against
# anylisten; it comes from the Go module proxy.
go run golang.org/x/perf/cmd/benchstat@latest -col /impl "$work/$out" || true
