#!/usr/bin/env bash
# Measures what the history file of --state costs, in two ways.
#
# First, BenchmarkHistoryGrowth: a run of 300,000 rules with 300,000 verdicts is recorded
# into a new file, then the same estate three times more, as sgvet audit records it
# (Prepare, then Commit once the report is written). It prints, for those unchanged runs,
# the bytes each added to the file on average and at most (bytes-added/op, max-bytes-added,
# after a checkpoint of the write-ahead log) and the time of Prepare and of Commit in
# milliseconds.
#
# Then the whole of sgvet audit: an estate of RULES ingress rules, each from its own public
# /32, in groups of 100, as scripts/bench-memory.sh makes it, with a blocklist that lists
# every address, is audited once without --state and three times with the same --state
# file. It prints the wall time of each run, the size of the state file after it, and what
# the unchanged runs cost over the run without a state file.
#
#   bash scripts/bench-history.sh [COUNT [RULES]]
#
# COUNT (default 3) is how many times the benchmark is taken, each on a new file; 0 skips
# it. RULES defaults to 300,000. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
rules=${2:-300000}

if [ "$count" -gt 0 ]; then
  go test -run '^$' -bench '^BenchmarkHistoryGrowth$' -benchtime 3x -count "$count" ./report/
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$rules" "$work" <<'PY'
import json, sys
rules, work = int(sys.argv[1]), sys.argv[2]
addrs = ["%d.%d.%d.%d" % (11 + n // 250**3, n // 250**2 % 250, n // 250 % 250, n % 250 + 1) for n in range(1, rules + 1)]
ranges = [{"CidrIp": a + "/32", "Description": "office %d" % (n + 1)} for n, a in enumerate(addrs)]
groups = [{"GroupId": "sg-%08x" % g, "GroupName": "app%d" % g, "VpcId": "vpc-1", "OwnerId": "123456789012",
           "IpPermissionsEgress": [], "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                                         "IpRanges": ranges[g * 100:(g + 1) * 100]}]}
          for g in range((rules + 99) // 100)]
with open(work + "/estate.json", "w") as f:
    json.dump({"SecurityGroups": groups}, f)
with open(work + "/all.netset", "w") as f:
    f.write("\n".join(addrs) + "\n")
PY

go build -o "$work/sgvet" ./cmd/sgvet

# audit NAME [ARGS...] runs the audit, prints its wall time and, with --state, the state
# file's size, and sets ms to the wall time in milliseconds.
audit() {
  local name=$1 start end
  shift
  start=$(date +%s%N)
  "$work/sgvet" audit --input "$work/estate.json" --blocklist "$work/all.netset" --no-cache --fail-on none \
    --max-input-size 4GiB -f json -o "$work/report.json" "$@"
  end=$(date +%s%N)
  ms=$(((end - start) / 1000000))
  if [ -e "$work/state.db" ]; then
    printf '%s rules, %s: %d ms, state file %d bytes\n' "$rules" "$name" "$ms" "$(stat -c %s "$work/state.db")"
  else
    printf '%s rules, %s: %d ms\n' "$rules" "$name" "$ms"
  fi
}

audit "no --state"
without=$ms
audit "--state, first run" --state "$work/state.db"
audit "--state, second run (unchanged)" --state "$work/state.db"
second=$ms
audit "--state, third run (unchanged)" --state "$work/state.db"
third=$ms
printf 'unchanged runs with --state cost %d ms and %d ms over the run without (%d%% and %d%%)\n' \
  $((second - without)) $((third - without)) $(((second - without) * 100 / without)) $(((third - without) * 100 / without))
