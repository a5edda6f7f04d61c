#!/usr/bin/env bash
# Times collection of an Organization: sgvet groups --org against a shell loop of the aws
# CLI's describe-security-group-rules over the same accounts and regions, and measures
# sgvet's peak memory on 100,000 rules.
#
#   bash scripts/bench-org.sh [RULES]
#
# Default: 20,000 ingress rules. The script starts a moto_server of its own on loopback,
# makes the caller the management account of an Organization with 2 member accounts
# (aws organizations create-organization and create-account), and seeds RULES ingress rules
# spread evenly over the 3 accounts x 3 regions (us-east-1, eu-west-1, ap-southeast-2), in
# groups of up to 50 rules each (one /32 per rule, one authorize call per group; moto, like
# EC2, allows 60 rules a direction in a VPC group), through the role "audit" in each member
# (moto accepts any role), with boto3. Each group also has its default egress rule. Then it
# times, once each:
#
#   1. sgvet groups --org --role-name audit --regions ... --format json;
#   2. for each account (assuming the role in members with aws sts assume-role) and each
#      region, aws ec2 describe-security-group-rules, paginated as the CLI does by default;
#
# and prints both times and their ratio (the goal: sgvet at most half). moto serves one
# request at a time in Python, so its own work bounds both figures; the loop also pays the
# aws CLI's start-up, about a second a call.
#
# Then it seeds more rules, to 100,000 ingress rules in all (about a minute on moto), and
# measures sgvet's peak memory with /usr/bin/time -v (Maximum resident set size) on the same
# sgvet groups --org run (the goal: under 300 MB). For comparison it also measures
# sgvet groups --input of a generated file of 100,000 ingress rules in the aws CLI's
# describe-security-groups format, as scripts/bench-memory.sh does, without moto.
#
# sgvet runs with --no-cloudtrail-lookup: moto has no CloudTrail LookupEvents, and the aws
# CLI loop asks CloudTrail nothing either.
#
# Needs python3 with boto3, curl, moto_server, the aws CLI and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

rules=${1:-20000}
memory_rules=100000
role=audit
regions=(us-east-1 eu-west-1 ap-southeast-2)
region_list=$(IFS=,; echo "${regions[*]}")

. scripts/moto.sh
work=$(mktemp -d)
cleanup() {
  stop_moto
  rm -rf "$work"
}
trap cleanup EXIT

start_moto "$work"

use_moto "$work"

# Every aws call names the endpoint: the CLI ignores AWS_ENDPOINT_URL for some services.
awsm() { aws --endpoint-url "$url" "$@"; }

caller=$(awsm organizations create-organization --query Organization.MasterAccountId --output text)
accounts=("$caller")
for i in 1 2; do
  accounts+=("$(awsm organizations create-account --account-name "member-$i" --email "member-$i@example.com" \
    --query CreateAccountStatus.AccountId --output text)")
done

# seed COUNT FIRST: adds COUNT ingress rules, numbered from FIRST + 1, spread over the
# accounts and regions, and prints how long it took.
seed() {
  echo "seeding $1 ingress rules over ${#accounts[@]} accounts (${accounts[*]}) x ${#regions[@]} regions ($region_list)..."
  local seed_start seed_end
  seed_start=$(date +%s.%N)
  python3 - "$url" "$1" "$2" "$role" "$caller" "$region_list" "${accounts[@]}" <<'PY'
import sys
import boto3
url, rules, n, role, caller, regions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6].split(",")
accounts = sys.argv[7:]
cells = [(a, r) for a in accounts for r in regions]
for c, (account, region) in enumerate(cells):
    kw = dict(endpoint_url=url, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")
    if account != caller:
        creds = boto3.client("sts", **kw).assume_role(
            RoleArn="arn:aws:iam::%s:role/%s" % (account, role), RoleSessionName="seed")["Credentials"]
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    ec2 = boto3.client("ec2", **kw)
    share = rules // len(cells) + (1 if c < rules % len(cells) else 0)
    g = 0
    while share > 0:
        k = min(50, share)
        gid = ec2.create_security_group(GroupName="app-%d-%d-%d" % (c, n, g), Description="bench")["GroupId"]
        ranges = []
        for _ in range(k):
            n += 1
            ranges.append({"CidrIp": "%d.%d.%d.%d/32" % (11 + n // 250**3, n // 250**2 % 250, n // 250 % 250, n % 250 + 1),
                           "Description": "office %d" % n})
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}])
        share -= k
        g += 1
PY
  seed_end=$(date +%s.%N)
  printf 'seeded in %.1fs\n' "$(echo "$seed_end - $seed_start" | bc)"
}
seed "$rules" 0

go build -o "$work/sgvet" ./cmd/sgvet
sgvet=$work/sgvet

# The shell loop: each account's credentials (assumed for members), then each region's rules.
aws_loop() {
  local account region creds
  for account in "${accounts[@]}"; do
    if [ "$account" = "$caller" ]; then
      creds=(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test)
    else
      read -r key secret token < <(awsm sts assume-role --role-arn "arn:aws:iam::$account:role/$role" \
        --role-session-name bench --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
      creds=(AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_SESSION_TOKEN="$token")
    fi
    for region in "${regions[@]}"; do
      env "${creds[@]}" aws --endpoint-url "$url" --region "$region" ec2 describe-security-group-rules --output json
    done
  done
}

now() { date +%s.%N; }
start=$(now)
"$sgvet" groups --org --role-name "$role" --regions "$region_list" --no-cloudtrail-lookup --format json --log-level warn >"$work/sgvet.json"
end=$(now)
sgvet_s=$(echo "$end - $start" | bc)
start=$(now)
aws_loop >"$work/aws.json"
end=$(now)
aws_s=$(echo "$end - $start" | bc)

python3 - "$work/sgvet.json" "$work/aws.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
text, at, total, ingress, decoder = open(sys.argv[2]).read(), 0, 0, 0, json.JSONDecoder()
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at == len(text):
        break
    page, at = decoder.raw_decode(text, at)
    total += len(page["SecurityGroupRules"])
    ingress += sum(1 for r in page["SecurityGroupRules"] if not r["IsEgress"])
print("sgvet: %d groups, %d rules, %d public sources; aws CLI: %d rules (%d ingress)"
      % (len(d["groups"]), len(d["rules"]), len(d["public"]), total, ingress))
PY
printf '%-62s %7.2fs\n' "sgvet groups --org --role-name $role --regions (3 x 3)" "$sgvet_s"
printf '%-62s %7.2fs\n' "aws ec2 describe-security-group-rules loop (3 x 3)" "$aws_s"
python3 -c 'import sys; r = float(sys.argv[1]) / float(sys.argv[2]); print("sgvet / aws CLI: %.2f (goal: at most 0.50) %s" % (r, "met" if r <= 0.5 else "NOT met"))' "$sgvet_s" "$aws_s"

# Peak memory of the same collection, at 100,000 ingress rules.
# peak TITLE CMD...: runs CMD under /usr/bin/time -v and prints its peak RSS and wall time.
peak() {
  local title=$1; shift
  /usr/bin/time -v "$@" 2>"$work/time.txt" >/dev/null || { echo "$title failed:"; cat "$work/time.txt"; exit 1; }
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  printf '%s: peak RSS %d MB, %s wall (goal: under 300 MB) %s\n' "$title" $((rss / 1024)) "$wall" \
    "$([ $((rss / 1024)) -lt 300 ] && echo met || echo 'NOT met')"
}
if [ "$rules" -lt "$memory_rules" ]; then seed $((memory_rules - rules)) "$rules"; fi
total=$((rules > memory_rules ? rules : memory_rules))
peak "$total rules, sgvet groups --org (3 x 3) from moto" \
  "$sgvet" groups --org --role-name "$role" --regions "$region_list" --no-cloudtrail-lookup --format json --log-level warn

# And on a generated file (see the header).
python3 - "$memory_rules" "$work/estate.json" <<'PY'
import json, sys
rules, path = int(sys.argv[1]), sys.argv[2]
groups, n = [], 0
for g in range((rules + 99) // 100):
    ranges = []
    for _ in range(min(100, rules - n)):
        n += 1
        ranges.append({"CidrIp": "%d.%d.%d.%d/32" % (11 + n // 250**3, n // 250**2 % 250, n // 250 % 250, n % 250 + 1),
                       "Description": "office %d" % n})
    groups.append({"GroupId": "sg-%08x" % g, "GroupName": "app%d" % g, "VpcId": "vpc-1",
                   "OwnerId": "123456789012", "IpPermissionsEgress": [],
                   "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}]})
with open(path, "w") as f:
    json.dump({"SecurityGroups": groups}, f)
PY
peak "$memory_rules rules, sgvet groups --input of a $(( $(stat -c %s "$work/estate.json") / 1048576 )) MB file" \
  "$sgvet" groups --input "$work/estate.json" --format json
