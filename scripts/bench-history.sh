#!/usr/bin/env bash
# Measures what recording an unchanged run costs in the history file of --state: a run of
# 300,000 rules with 300,000 verdicts is recorded into a new file, then the same estate
# again, as sgvet audit records it (Prepare, then Commit once the report is written).
# Prints, for that second run, the bytes it added to the file (bytes-added/op, after a
# checkpoint of the write-ahead log) and the time of Prepare and of Commit in milliseconds.
#
#   bash scripts/bench-history.sh [COUNT]
#
# COUNT (default 3) is how many times the measure is taken, each on a new file.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
go test -run '^$' -bench '^BenchmarkHistoryGrowth$' -benchtime 1x -count "$count" ./report/
