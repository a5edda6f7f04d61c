#!/usr/bin/env bash
# Times the same audit of ADDRESSES public addresses (each a /32 ingress rule, in groups of
# 100, as aws ec2 describe-security-groups prints them) three ways, with an offline
# blocklist that lists one address in a hundred as the only provider (no rate, no quota):
#
#   1. in one process: sgvet audit;
#   2. as a fleet on SQS: sgvet collect, WORKERS sgvet work --idle-exit processes and
#      sgvet report, timed from the start of collect to the end of report;
#   3. over SQS in one process: sgvet audit --queue-url --results-url.
#
# The queues are on a moto_server of the script's own, on loopback. It prints addresses per
# second for each way, and the SQS calls of 2 and 3 by queue and action, counted from
# moto's request recorder (which keeps each request's X-Amz-Target header, where SQS's JSON
# protocol names the action): SendMessageBatch on the lookups queue must be
# ceil(ADDRESSES / 50 / 10), and deletes are batched likewise. moto answers one request at
# a time in Python, so its own work bounds the SQS figures.
#
#   bash scripts/bench-sqs.sh [ADDRESSES] [WORKERS]
#
# Defaults: 10,000 addresses, 2 workers. Needs python3, curl, moto_server and the aws CLI
# on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

addresses=${1:-10000}
workers=${2:-2}

. scripts/moto.sh
work=$(mktemp -d)
worker_pids=()
cleanup() {
  for pid in "${worker_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_moto
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$addresses" "$work" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
groups = []
with open(work + "/listed.netset", "w") as listed:
    for g in range((n + 99) // 100):
        ranges = []
        for i in range(g * 100, min(n, g * 100 + 100)):
            a = "51.%d.%d.%d" % (15 + i // 62500, i // 250 % 250, i % 250 + 1)
            ranges.append({"CidrIp": a + "/32", "Description": "office %d" % i})
            if i % 100 == 0:
                listed.write(a + "\n")
        groups.append({"GroupId": "sg-%08x" % g, "GroupName": "app%d" % g, "VpcId": "vpc-1",
                       "OwnerId": "123456789012", "IpPermissionsEgress": [],
                       "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}]})
with open(work + "/estate.json", "w") as f:
    json.dump({"SecurityGroups": groups}, f)
PY

# The recorder writes every request it sees to this file, once started.
MOTO_RECORDER_FILEPATH="$work/recording.jsonl" start_moto "$work"

use_moto "$work"

go build -o "$work/sgvet" ./cmd/sgvet
sgvet=$work/sgvet
quiet=(--log-level warn)
vet=(--blocklist "$work/listed.netset" --no-cache "${quiet[@]}")
out=(--format json --fail-on none)

queue() { aws --endpoint-url "$url" sqs create-queue --queue-name "$1" --query QueueUrl --output text; }
recorder() { curl -fsS -X POST "$url/moto-api/recorder/$1" >/dev/null; }
now() { date +%s.%N; }
# rate NAME START END: prints NAME, the seconds from START to END and the addresses a second.
rate() {
  python3 -c 'import sys; s = float(sys.argv[3]) - float(sys.argv[2]); print("%-48s %7.2f s %8.0f addresses/s" % (sys.argv[1], s, int(sys.argv[4]) / s))' "$1" "$2" "$3" "$addresses"
}
# calls TITLE: prints the SQS calls in moto's recording by queue and action, and forgets them.
calls() {
  curl -fsS "$url/moto-api/recorder/download-recording" >"$work/recorded.jsonl"
  recorder reset-recording
  python3 - "$1" "$work/recorded.jsonl" "$addresses" <<'PY'
import base64, collections, json, math, sys
title, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# moto writes each request and the newline after it separately, from several threads:
# two requests may share a line. The file is read as a stream of JSON objects.
text, at, requests = open(path).read(), 0, []
decoder = json.JSONDecoder()
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at == len(text):
        break
    req, at = decoder.raw_decode(text, at)
    requests.append(req)
calls = collections.Counter()
for req in requests:
    headers = {k.lower(): v for k, v in req["headers"].items()}
    target = headers.get("x-amz-target", "")
    if not target.startswith("AmazonSQS."):
        continue
    body = req.get("body") or ""
    if req.get("body_encoded"):
        body = base64.b64decode(body).decode()
    queue = json.loads(body or "{}").get("QueueUrl", "").rsplit("/", 1)[-1]
    calls[queue, target[len("AmazonSQS."):]] += 1
print("SQS calls, %s:" % title)
for (queue, action), count in sorted(calls.items()):
    print("  %-22s %-26s %5d" % (queue, action, count))
messages = math.ceil(n / 50)
print("  expected: %d lookup messages, so ceil(%d / 50 / 10) = %d SendMessageBatch calls on the lookups queue;" % (messages, n, math.ceil(messages / 10)))
print("  a worker deletes what one receive gave it with one DeleteMessageBatch, so at least as many deletes,")
print("  more when concurrent receivers split the messages")
PY
}

echo "$addresses addresses, a blocklist of $(wc -l <"$work/listed.netset") of them, $workers workers; moto_server at $url"

start=$(now)
"$sgvet" audit --input "$work/estate.json" "${vet[@]}" "${out[@]}" -o "$work/in-process.json"
end=$(now)
rate "in one process (sgvet audit)" "$start" "$end"

lookups=$(queue bench-lookups)
results=$(queue bench-results)
recorder start-recording
start=$(now)
"$sgvet" collect "${quiet[@]}" --input "$work/estate.json" --inventory "$work/run.json" --queue-url "$lookups" >/dev/null
collected=$(now)
for _ in $(seq "$workers"); do
  "$sgvet" work "${vet[@]}" --queue-url "$lookups" --results-url "$results" --idle-exit 5s 2>>"$work/workers.log" &
  worker_pids+=($!)
done
"$sgvet" report "${quiet[@]}" --inventory "$work/run.json" --results-url "$results" --wait 30m "${out[@]}" -o "$work/fleet.json"
end=$(now)
for pid in "${worker_pids[@]}"; do wait "$pid" || { echo "a worker failed:"; cat "$work/workers.log"; exit 1; }; done
worker_pids=()
recorder stop-recording
rate "fleet (collect, $workers x work, report)" "$start" "$end"
rate "  of which collect" "$start" "$collected"

# Queues of their own: a worker's last long poll may outlive it on moto's side.
lookups=$(queue bench-audit-lookups)
results=$(queue bench-audit-results)
calls_fleet=$(calls "collect, $workers x work, report")
recorder start-recording
start=$(now)
"$sgvet" audit --input "$work/estate.json" "${vet[@]}" "${out[@]}" -o "$work/over-sqs.json" \
  --queue-url "$lookups" --results-url "$results"
end=$(now)
recorder stop-recording
rate "over SQS in one process (sgvet audit --queue-url)" "$start" "$end"
calls_audit=$(calls "sgvet audit --queue-url")

echo
echo "$calls_fleet"
echo "$calls_audit"
python3 - "$work"/in-process.json "$work"/fleet.json "$work"/over-sqs.json <<'PY'
import json, sys
def findings(path):
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "checked_at"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    doc = json.load(open(path))
    return strip(doc["findings"]), doc["summary"]["addresses_vetted"]
first = findings(sys.argv[1])
same = all(findings(p) == first for p in sys.argv[2:])
print("the three reports have %s findings (%d), and %d addresses vetted" % ("the same" if same else "DIFFERENT", len(first[0]), first[1]))
sys.exit(0 if same else 1)
PY
