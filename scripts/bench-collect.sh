#!/usr/bin/env bash
# Times collection of a large estate: sgvet groups against the aws CLI's
# describe-security-group-rules alone, and against the four aws CLI calls that read what
# sgvet reads (groups, rules, network interfaces, prefix lists), all from the same
# moto_server on loopback. moto serves one request at a time in Python, so its own work
# bounds every figure.
#
#   bash scripts/bench-collect.sh [GROUPS] [RULES_PER_GROUP] [RUNS]
#
# Defaults: 2,000 groups with 4 ingress rules each plus their default egress rule
# (10,000 rules), 5 runs of each command. Needs moto_server and the aws CLI on PATH.
# sgvet runs with --no-cloudtrail-lookup: moto has no CloudTrail LookupEvents, and the aws
# CLI calls ask CloudTrail nothing either.
set -euo pipefail
cd "$(dirname "$0")/.."

groups=${1:-2000}
rules=${2:-4}
runs=${3:-5}

. scripts/moto.sh
work=$(mktemp -d)
cleanup() {
  stop_moto
  rm -rf "$work"
}
trap cleanup EXIT

start_moto "$work"

use_moto "$work"
export AWS_MAX_ATTEMPTS=1

echo "seeding $groups groups with $rules ingress rules each..."
go run ./internal/motoseed -endpoint "$url" -groups "$groups" -rules "$rules"
go build -o "$work/sgvet" ./cmd/sgvet

total=$(aws ec2 describe-security-group-rules --query 'length(SecurityGroupRules)' --output text)
counted=$("$work/sgvet" groups --regions us-east-1 --no-cloudtrail-lookup --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["groups"]), len(d["rules"]), len(d["public"]))')
echo "aws CLI sees $total rules; sgvet sees groups, rules, public sources: $counted"

# time_runs NAME CMD...: runs CMD $runs times, prints each wall time and the median.
time_runs() {
  local name=$1; shift
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '{a[NR]=$1} END {printf "%-45s median %.2fs (min %.2fs, max %.2fs, %d runs)\n", name, a[int((NR+1)/2)], a[1], a[NR], NR}'
}

aws_same_data() {
  aws ec2 describe-security-groups --output json
  aws ec2 describe-security-group-rules --output json
  aws ec2 describe-network-interfaces --output json
  aws ec2 describe-managed-prefix-lists --output json
}

time_runs "sgvet groups --format json" "$work/sgvet" groups --regions us-east-1 --no-cloudtrail-lookup --format json
time_runs "aws ec2 describe-security-group-rules" aws ec2 describe-security-group-rules --output json
time_runs "aws CLI, the same data (4 describe calls)" aws_same_data
