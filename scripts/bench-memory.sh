#!/usr/bin/env bash
# Measures sgvet's peak memory on a large estate read from a file: RULES ingress rules,
# each from its own public /32, in groups of 100, as aws ec2 describe-security-groups
# prints them. It runs the audit twice with /usr/bin/time -v: once with a blocklist that
# lists nothing in the estate, and once with one that lists every address, so that every
# rule is a finding and the report lists every address.
#
#   bash scripts/bench-memory.sh [RULES]
#
# Default: 1,000,000 rules (a 64 MB input). Needs python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

rules=${1:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$rules" "$work" <<'PY'
import json, sys
rules, work = int(sys.argv[1]), sys.argv[2]
groups, n = [], 0
with open(work + "/all.netset", "w") as listed:
    for g in range((rules + 99) // 100):
        ranges = []
        for _ in range(min(100, rules - n)):
            n += 1
            a = "%d.%d.%d.%d" % (11 + n // 250**3, n // 250**2 % 250, n // 250 % 250, n % 250 + 1)
            ranges.append({"CidrIp": a + "/32", "Description": "office %d" % n})
            listed.write(a + "\n")
        groups.append({"GroupId": "sg-%08x" % g, "GroupName": "app%d" % g, "VpcId": "vpc-1",
                       "OwnerId": "123456789012", "IpPermissionsEgress": [],
                       "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}]})
with open(work + "/estate.json", "w") as f:
    json.dump({"SecurityGroups": groups}, f)
with open(work + "/none.netset", "w") as f:
    f.write("203.0.113.0/24\n")
PY

go build -o "$work/sgvet" ./cmd/sgvet
for list in none all; do
  /usr/bin/time -v "$work/sgvet" audit --input "$work/estate.json" --blocklist "$work/$list.netset" \
    --no-cache --fail-on none --max-input-size 4GiB -f json -o "$work/report.json" 2>"$work/time.txt" || true
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  cpu=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
  printf '%s rules, blocklist %s: peak RSS %d MB, %s wall, %s s user CPU, report %d MB\n' "$rules" "$list" $((rss / 1024)) "$wall" "$cpu" \
    $(( $(stat -c %s "$work/report.json") / 1048576 ))
done
