#!/usr/bin/env bash
# make-examples.sh regenerates the example inputs of sgvet from a local AWS emulator.
#
# It starts moto_server on a free loopback port, builds an example estate with the aws CLI,
# and writes what the CLI prints:
#
#   examples/security-groups.json            aws ec2 describe-security-groups       (us-east-1)
#   examples/security-groups-eu-west-1.json  aws ec2 describe-security-groups       (eu-west-1)
#   examples/security-group-rules.json       aws ec2 describe-security-group-rules  (us-east-1)
#   examples/network-interfaces.json         aws ec2 describe-network-interfaces    (us-east-1)
#   examples/prefix-lists.json               aws ec2 describe-managed-prefix-lists  (us-east-1)
#   examples/blocklist.netset                a small FireHOL-format blocklist (written here)
#
# Then it resets the emulator, builds a tiny estate and writes the fixtures of
# collector/testdata/aws-cli/ (describe-*.json and EXPECTED.md, whose ids it fills in).
# invalid-json.json and invalid-cidr.json there are hand-written and left alone.
#
# Needs: moto_server (moto 5.x), the aws CLI, python3, curl. Run from anywhere:
#
#   bash scripts/make-examples.sh
#
# moto makes new random ids on every run, so each run rewrites the outputs with new ids.
# All traffic goes to 127.0.0.1; the credentials are moto's dummy ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXAMPLES=$ROOT/examples
FIXTURES=$ROOT/collector/testdata/aws-cli
mkdir -p "$EXAMPLES" "$FIXTURES"

for tool in moto_server aws python3 curl; do
	command -v "$tool" >/dev/null || { echo "make-examples: $tool not found" >&2; exit 1; }
done

# Keep the CLI away from any real account, profile or proxy.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_PAGER="" NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL AWS_CA_BUNDLE 2>/dev/null || true

# ---------------------------------------------------------------------------------------
# moto_server: start on a free port, stop by pid on exit.
WORK=$(mktemp -d)
MOTO_PID=""
cleanup() {
	if [[ -n $MOTO_PID ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
		kill "$MOTO_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$MOTO_PID" 2>/dev/null && kill -9 "$MOTO_PID" 2>/dev/null
		wait "$MOTO_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

moto_server -H 127.0.0.1 -p 0 >"$WORK/moto.out" 2>"$WORK/moto.err" &
MOTO_PID=$!
PORT=""
for _ in $(seq 300); do
	PORT=$(sed -n 's|.*Running on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$WORK/moto.err" | head -n1)
	[[ -n $PORT ]] && break
	kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.err" >&2; echo "make-examples: moto_server exited" >&2; exit 1; }
	sleep 0.1
done
[[ -n $PORT ]] || { echo "make-examples: moto_server printed no port" >&2; exit 1; }
ENDPOINT=http://127.0.0.1:$PORT
for _ in $(seq 100); do
	curl -fsS -o /dev/null "$ENDPOINT/moto-api/" && break
	sleep 0.1
done
curl -fsS -o /dev/null "$ENDPOINT/moto-api/"
echo "make-examples: moto_server pid $MOTO_PID on $ENDPOINT" >&2

# ---------------------------------------------------------------------------------------
# Helpers.

REGION=us-east-1
ec2() { aws --endpoint-url "$ENDPOINT" --region "$REGION" --output json ec2 "$@"; }
ec2text() { aws --endpoint-url "$ENDPOINT" --region "$REGION" --output text ec2 "$@"; }

# json_str checks that a string needs no JSON escaping (no quote, backslash or control).
json_str() {
	if [[ $1 == *'"'* || $1 == *'\'* || $1 =~ [[:cntrl:]] ]]; then
		echo "make-examples: cannot use $1 in JSON" >&2; exit 1
	fi
	printf '%s' "$1"
}

# perm PROTO FROM TO TARGET [DESCRIPTION] prints one IpPermission. TARGET is an IPv4 or
# IPv6 CIDR, a security group id (sg-...) or a prefix list id (pl-...). For protocol -1
# FROM and TO are ignored.
perm() {
	local proto=$1 from=$2 to=$3 target=$4 desc=${5-} d="" ports="" t
	[[ -n $desc ]] && d=",\"Description\":\"$(json_str "$desc")\""
	[[ $proto != -1 ]] && ports=",\"FromPort\":$from,\"ToPort\":$to"
	case $target in
	sg-*) t="\"UserIdGroupPairs\":[{\"GroupId\":\"$target\"$d}]" ;;
	pl-*) t="\"PrefixListIds\":[{\"PrefixListId\":\"$target\"$d}]" ;;
	*:*) t="\"Ipv6Ranges\":[{\"CidrIpv6\":\"$target\"$d}]" ;;
	*) t="\"IpRanges\":[{\"CidrIp\":\"$target\"$d}]" ;;
	esac
	printf '{"IpProtocol":"%s"%s,%s}' "$proto" "$ports" "$t"
}

# allow ingress|egress GROUP_ID PERM... adds the permissions in one call.
allow() {
	local dir=$1 id=$2; shift 2
	local IFS=,
	ec2 "authorize-security-group-$dir" --group-id "$id" --ip-permissions "[$*]" >/dev/null
}

# sg VPC NAME DESCRIPTION [ENV] creates a group and prints its id.
sg() {
	local tags="{Key=Name,Value=$2}"
	[[ -n ${4-} ]] && tags+=",{Key=Environment,Value=$4}"
	ec2text create-security-group --vpc-id "$1" --group-name "$2" --description "$3" \
		--tag-specifications "ResourceType=security-group,Tags=[$tags]" --query GroupId
}

# default_sg VPC prints the id of the VPC's default group.
default_sg() {
	ec2text describe-security-groups --filters "Name=vpc-id,Values=$1" Name=group-name,Values=default \
		--query 'SecurityGroups[0].GroupId'
}

# vpc CIDR NAME creates a VPC and prints its id.
vpc() {
	ec2text create-vpc --cidr-block "$1" --tag-specifications "ResourceType=vpc,Tags=[{Key=Name,Value=$2}]" \
		--query Vpc.VpcId
}

default_vpc() { ec2text describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId'; }

# subnet VPC CIDR AZ prints a new subnet's id.
subnet() {
	ec2text create-subnet --vpc-id "$1" --cidr-block "$2" --availability-zone "$3" --query Subnet.SubnetId
}

# eni SUBNET DESCRIPTION GROUP_ID... creates a network interface using the groups.
eni() {
	local sub=$1 desc=$2; shift 2
	ec2 create-network-interface --subnet-id "$sub" --description "$desc" --groups "$@" >/dev/null
}

# public_eni SUBNET DESCRIPTION GROUP_ID... creates a network interface using the groups,
# with an Elastic IP: reachable from the internet.
public_eni() {
	local sub=$1 desc=$2 id alloc; shift 2
	id=$(ec2text create-network-interface --subnet-id "$sub" --description "$desc" --groups "$@" \
		--query NetworkInterface.NetworkInterfaceId)
	alloc=$(ec2text allocate-address --domain vpc --query AllocationId)
	ec2 associate-address --allocation-id "$alloc" --network-interface-id "$id" >/dev/null
}

aws_list() { # NAME prints the id of the AWS-managed prefix list of that name
	ec2text describe-managed-prefix-lists --filters "Name=prefix-list-name,Values=$1" \
		--query 'PrefixLists[0].PrefixListId'
}

# ---------------------------------------------------------------------------------------
# The example estate, us-east-1: the default VPC, "prod" and "staging".
#
# Addresses are illustrative. Public ones are globally routable, outside every IANA
# special-purpose range. 94.73.144.9, 185.50.196.126 and 85.25.199.246 are single entries
# of the FireHOL level 1 list and 41.71.171.50 lies in its 41.71.171.0/24; they stand for
# "known bad" addresses. 81.2.69.142, 24.48.0.1, 73.162.0.x and 86.12.x.x are fictional
# home IPs.
REGION=us-east-1
echo "make-examples: building the example estate in $REGION" >&2

DEF_VPC=$(default_vpc)
PROD=$(vpc 10.10.0.0/16 prod)
STAGING=$(vpc 10.20.0.0/16 staging)
S3=$(aws_list com.amazonaws.us-east-1.s3)

OFFICES=$(ec2text create-managed-prefix-list --prefix-list-name corp-offices --address-family IPv4 \
	--max-entries 10 --query PrefixList.PrefixListId \
	--tag-specifications 'ResourceType=prefix-list,Tags=[{Key=Name,Value=corp-offices}]' \
	--entries Cidr=195.99.96.0/27,Description="London office" \
	Cidr=38.101.149.0/27,Description="New York office" \
	Cidr=109.144.32.9/32,Description="VPN concentrator")

# prod
PROD_DEFAULT=$(default_sg "$PROD")
WEB_ALB=$(sg "$PROD" web-alb "Public load balancer" prod)
WEB_APP=$(sg "$PROD" web-app "Application servers behind the ALB" prod)
BASTION=$(sg "$PROD" bastion "SSH bastion" prod)
DB_PG=$(sg "$PROD" db-postgres "PostgreSQL (RDS)" prod)
DB_MYSQL=$(sg "$PROD" db-mysql "Legacy MySQL" prod)
REDIS=$(sg "$PROD" cache-redis "ElastiCache Redis" prod)
MONGO=$(sg "$PROD" mongo "MongoDB replica set" prod)
WINJUMP=$(sg "$PROD" windows-jump "Windows jump host" prod)
PARTNER=$(sg "$PROD" partner-api "Partner API on 8443" prod)
MONITOR=$(sg "$PROD" monitoring "Node exporter and ping" prod)
VENDOR=$(sg "$PROD" vendor-access "Third-party vendor access" prod)
OFFICE=$(sg "$PROD" office-access "Office ranges via prefix list" prod)
EGRESS=$(sg "$PROD" egress-restricted "Restricted outbound" prod)
ALLOW_ALL=$(sg "$PROD" legacy-allow-all "DO NOT USE - old migration group" prod)
APIGW=$(sg "$PROD" api-partners "Partner callbacks" prod)
IPV6=$(sg "$PROD" ipv6-clients "IPv6 customer access" prod)
INTERNAL=$(sg "$PROD" internal-only "Internal networks only" prod)
BATCH=$(sg "$PROD" batch-workers "Batch workers, no inbound" prod)
CI=$(sg "$PROD" ci-runners "CI runners" prod)
MINIO=$(sg "$PROD" minio "Object storage console" prod)
SFTP=$(sg "$PROD" sftp "Supplier SFTP drop" prod)
K8S=$(sg "$PROD" k8s-nodes "Kubernetes worker nodes" prod)
WEBHOOKS=$(sg "$PROD" payment-webhooks "Payment provider webhook senders" prod)

allow ingress "$PROD_DEFAULT" \
	"$(perm -1 -1 -1 "$PROD_DEFAULT")" \
	"$(perm tcp 22 22 81.2.69.142/32 "John's home")" \
	"$(perm tcp 3389 3389 86.12.44.19/32)"
allow ingress "$WEB_ALB" \
	"$(perm tcp 80 80 0.0.0.0/0)" "$(perm tcp 80 80 ::/0)" \
	"$(perm tcp 443 443 0.0.0.0/0 "HTTPS from anywhere")" "$(perm tcp 443 443 ::/0 "HTTPS from anywhere")"
allow ingress "$WEB_APP" \
	"$(perm tcp 8080 8080 "$WEB_ALB" "from ALB")" \
	"$(perm tcp 22 22 "$BASTION" "from bastion")"
allow ingress "$BASTION" \
	"$(perm tcp 22 22 0.0.0.0/0)" "$(perm tcp 22 22 ::/0)" \
	"$(perm tcp 22 22 73.162.0.45/32 "home IP alice")" \
	"$(perm tcp 22 22 77.68.21.5/32 "hotel wifi conference")"
allow ingress "$DB_PG" \
	"$(perm tcp 5432 5432 "$WEB_APP" "app servers")" \
	"$(perm tcp 5432 5432 0.0.0.0/0 "temp debug")" \
	"$(perm tcp 5432 5432 10.10.0.0/16 "prod VPC")"
allow ingress "$DB_MYSQL" \
	"$(perm tcp 3306 3306 0.0.0.0/0)" \
	"$(perm tcp 3306 3306 172.16.5.0/24 "old datacenter VPN")"
allow ingress "$REDIS" \
	"$(perm tcp 6379 6379 0.0.0.0/0 "test")" "$(perm tcp 6379 6379 ::/0 "test")" \
	"$(perm tcp 6379 6379 "$WEB_APP")"
allow ingress "$MONGO" \
	"$(perm tcp 27017 27017 0.0.0.0/0)" \
	"$(perm tcp 27017 27017 24.48.0.1/32 "contractor Acme - bob (exp 2025-06-30)")"
allow ingress "$WINJUMP" \
	"$(perm tcp 3389 3389 0.0.0.0/0 "RDP")" "$(perm tcp 3389 3389 ::/0)" \
	"$(perm tcp 3389 3389 82.132.216.17/32 "vendor support until 2025-12-31")"
allow ingress "$PARTNER" \
	"$(perm tcp 8443 8443 0.0.0.0/0)" \
	"$(perm tcp 443 443 151.101.0.0/16 "CDN origin pull")"
allow ingress "$MONITOR" \
	"$(perm icmp 8 -1 0.0.0.0/0 "ping from anywhere")" \
	"$(perm tcp 9100 9100 10.10.0.0/16)" \
	"$(perm udp 161 161 100.64.12.0/24 "carrier NAT collectors")"
allow ingress "$VENDOR" \
	"$(perm tcp 22 22 94.73.144.9/32 "expires=2026-01-15 temp access")" \
	"$(perm tcp 443 443 185.50.196.126/32 "vendor support until 2025-12-31")" \
	"$(perm tcp 22 22 2a02:8010:6a2f::17/128 "contractor Acme - bob (exp 2025-06-30)")"
allow ingress "$OFFICE" \
	"$(perm tcp 443 443 "$OFFICES" "offices")" \
	"$(perm tcp 22 22 "$OFFICES" "offices")" \
	"$(perm tcp 22 22 81.2.69.160/28 "branch office")"
allow ingress "$ALLOW_ALL" "$(perm -1 -1 -1 0.0.0.0/0)" "$(perm -1 -1 -1 ::/0)"
allow ingress "$APIGW" \
	"$(perm tcp 443 443 198.144.120.0/24 "partner NAT range")" \
	"$(perm tcp 443 443 198.144.120.77/32 "partner NAT primary")"
allow ingress "$IPV6" \
	"$(perm tcp 443 443 2a01:4f8:c17:1b2a::/64 "IPv6 customer net")" \
	"$(perm tcp 443 443 ::/0)"
allow ingress "$INTERNAL" \
	"$(perm tcp 443 443 192.168.10.0/24 "home lab")" \
	"$(perm tcp 443 443 172.16.0.0/12)" \
	"$(perm tcp 8080 8080 100.64.0.0/10 "carrier-grade NAT")" \
	"$(perm tcp 80 80 169.254.169.254/32 "metadata")" \
	"$(perm tcp 80 80 fe80::/10 "link-local")" \
	"$(perm -1 -1 -1 10.0.0.0/8)"
allow ingress "$CI" \
	"$(perm tcp 22 22 140.82.112.0/20 "CI provider range")" \
	"$(perm tcp 443 443 140.82.112.0/20)"
allow ingress "$MINIO" \
	"$(perm tcp 9000 9000 0.0.0.0/0 "temp debug")" \
	"$(perm tcp 9001 9001 10.10.0.0/16)"
allow ingress "$SFTP" \
	"$(perm tcp 22 22 62.31.4.0/29 "Leeds office")" \
	"$(perm tcp 22 22 41.71.171.50/32 "supplier upload")"
allow ingress "$K8S" \
	"$(perm tcp 30000 32767 10.20.0.0/16)" \
	"$(perm -1 -1 -1 "$K8S" "node to node")"
# One rule per published sender address: 56 of AWS's default quota of 60 inbound rules.
hooks=()
for net in 3.18.12 3.130.192; do
	for i in $(seq 10 37); do hooks+=("$(perm tcp 443 443 "$net.$i/32" "payment provider webhooks")"); done
done
allow ingress "$WEBHOOKS" "${hooks[@]}"

# egress-restricted: replace the default all-traffic egress.
ec2 revoke-security-group-egress --group-id "$EGRESS" --ip-permissions "[$(perm -1 -1 -1 0.0.0.0/0)]" >/dev/null
allow egress "$EGRESS" \
	"$(perm tcp 443 443 "$S3" "S3 gateway endpoint")" \
	"$(perm tcp 443 443 85.25.199.246/32 "telemetry endpoint")" \
	"$(perm udp 53 53 10.10.0.2/32 "VPC resolver")"
allow egress "$BATCH" "$(perm tcp 443 443 "$S3")"

# staging
STAGING_DEFAULT=$(default_sg "$STAGING")
STG_WEB=$(sg "$STAGING" staging-web "Staging web" staging)
STG_DB=$(sg "$STAGING" staging-db "Staging database" staging)
STG_DEBUG=$(sg "$STAGING" staging-debug "temp debug" staging)
STG_VPN=$(sg "$STAGING" staging-vpn "OpenVPN and IPsec" staging)
STG_JENKINS=$(sg "$STAGING" staging-jenkins "Jenkins" staging)

allow ingress "$STAGING_DEFAULT" "$(perm -1 -1 -1 "$STAGING_DEFAULT")"
allow ingress "$STG_WEB" \
	"$(perm tcp 80 80 0.0.0.0/0)" "$(perm tcp 443 443 0.0.0.0/0)" \
	"$(perm tcp 22 22 86.12.77.201/32 "test")"
allow ingress "$STG_DB" \
	"$(perm tcp 5432 5432 "$STG_WEB")" \
	"$(perm tcp 5432 5432 73.162.0.88/32)"
allow ingress "$STG_DEBUG" "$(perm tcp 0 65535 24.48.0.1/32 "temp debug")"
allow ingress "$STG_VPN" \
	"$(perm udp 1194 1194 0.0.0.0/0)" "$(perm udp 500 500 0.0.0.0/0)" "$(perm udp 4500 4500 0.0.0.0/0)"
allow ingress "$STG_JENKINS" \
	"$(perm tcp 8080 8080 140.82.112.0/20 "CI provider webhooks")" \
	"$(perm tcp 8080 8080 81.2.69.142/32 "John's home")"

# the default VPC
DEF_DEFAULT=$(default_sg "$DEF_VPC")
LW1=$(sg "$DEF_VPC" launch-wizard-1 "launch-wizard-1 created 2024-03-02T10:11:12.000Z")
LW2=$(sg "$DEF_VPC" launch-wizard-2 "launch-wizard-2 created 2024-09-17T16:40:05.000Z")
RDSLW=$(sg "$DEF_VPC" rds-launch-wizard "Created by RDS management console")
allow ingress "$DEF_DEFAULT" "$(perm -1 -1 -1 "$DEF_DEFAULT")"
allow ingress "$LW1" "$(perm tcp 22 22 0.0.0.0/0)"
allow ingress "$LW2" "$(perm tcp 22 22 0.0.0.0/0)" "$(perm tcp 80 80 0.0.0.0/0)"
allow ingress "$RDSLW" "$(perm tcp 3306 3306 73.162.0.45/32 "home IP alice")"

# Network interfaces: which groups are attached.
PROD_A=$(subnet "$PROD" 10.10.1.0/24 us-east-1a)
PROD_B=$(subnet "$PROD" 10.10.2.0/24 us-east-1b)
STG_A=$(subnet "$STAGING" 10.20.1.0/24 us-east-1a)
DEF_A=$(ec2text describe-subnets --filters "Name=vpc-id,Values=$DEF_VPC" Name=availability-zone,Values=us-east-1a \
	--query 'Subnets[0].SubnetId')

# The internet-facing load balancer, the bastion, the jump host, the partner API, the proxy,
# the SFTP server and the launch-wizard instance in the default VPC have public addresses;
# the rest, databases included, are private.
public_eni "$PROD_A" "ELB app/prod-alb/50dc6c495c0c9188" "$WEB_ALB"
public_eni "$PROD_B" "ELB app/prod-alb/50dc6c495c0c9188" "$WEB_ALB"
eni "$PROD_A" "prod-web-1 eth0" "$WEB_APP" "$MONITOR" "$OFFICE"
eni "$PROD_B" "prod-web-2 eth0" "$WEB_APP" "$MONITOR"
public_eni "$PROD_A" "bastion eth0" "$BASTION" "$MONITOR"
eni "$PROD_A" "RDSNetworkInterface" "$DB_PG"
eni "$PROD_B" "ElastiCache cache-prod-001" "$REDIS"
public_eni "$PROD_A" "windows-jump eth0" "$WINJUMP"
public_eni "$PROD_B" "partner-api eth0" "$PARTNER" "$APIGW" "$WEBHOOKS"
public_eni "$PROD_A" "egress proxy eth0" "$EGRESS"
eni "$PROD_B" "legacy-box eth0" "$PROD_DEFAULT"
eni "$PROD_A" "k8s node ip-10-10-1-50" "$K8S" "$BATCH"
eni "$PROD_B" "ci-runner eth0" "$CI"
public_eni "$PROD_A" "sftp eth0" "$SFTP"
eni "$STG_A" "staging-web eth0" "$STG_WEB" "$STG_JENKINS"
eni "$DEF_A" "test instance eth0" "$DEF_DEFAULT"
public_eni "$DEF_A" "launch-wizard instance eth0" "$LW1"

ec2 describe-security-groups >"$EXAMPLES/security-groups.json"
ec2 describe-security-group-rules >"$EXAMPLES/security-group-rules.json"
# moto gives Elastic IPs random addresses, loopback ones among them: the file shows
# illustrative public ones, 54.160.10.1 onwards, in the order of the interfaces.
ec2 describe-network-interfaces | python3 -c '
import json, sys
doc = json.load(sys.stdin)
n = 0
for eni in doc["NetworkInterfaces"]:
    a = eni.get("Association")
    if a:
        n += 1
        a["PublicIp"] = "54.160.10.%d" % n
        a["PublicDnsName"] = "ec2-54-160-10-%d.compute-1.amazonaws.com" % n
json.dump(doc, sys.stdout, indent=4)
print()
' >"$EXAMPLES/network-interfaces.json"
ec2 describe-managed-prefix-lists >"$EXAMPLES/prefix-lists.json"

# eu-west-1: the default VPC and "eu-prod".
REGION=eu-west-1
echo "make-examples: building the example estate in $REGION" >&2
EU_DEF_VPC=$(default_vpc)
EU_PROD=$(vpc 10.30.0.0/16 eu-prod)
EU_S3=$(aws_list com.amazonaws.eu-west-1.s3)
EU_DEFAULT=$(default_sg "$EU_PROD")
EU_WEB=$(sg "$EU_PROD" eu-web "EU web" prod)
EU_BASTION=$(sg "$EU_PROD" eu-bastion "EU bastion" prod)
EU_DB=$(sg "$EU_PROD" eu-db "EU database" prod)
EU_EGRESS=$(sg "$EU_PROD" eu-egress "EU restricted outbound" prod)
allow ingress "$EU_DEFAULT" "$(perm -1 -1 -1 "$EU_DEFAULT")"
allow ingress "$EU_WEB" "$(perm tcp 443 443 0.0.0.0/0)" "$(perm tcp 443 443 ::/0)"
allow ingress "$EU_BASTION" \
	"$(perm tcp 22 22 81.2.69.142/32 "John's home")" \
	"$(perm tcp 22 22 0.0.0.0/0)"
allow ingress "$EU_DB" \
	"$(perm tcp 5432 5432 "$EU_WEB")" \
	"$(perm tcp 5432 5432 94.73.144.9/32 "vendor support")"
ec2 revoke-security-group-egress --group-id "$EU_EGRESS" --ip-permissions "[$(perm -1 -1 -1 0.0.0.0/0)]" >/dev/null
allow egress "$EU_EGRESS" \
	"$(perm tcp 443 443 85.25.199.246/32 "telemetry endpoint")" \
	"$(perm tcp 443 443 "$EU_S3")"
: "$EU_DEF_VPC"
ec2 describe-security-groups >"$EXAMPLES/security-groups-eu-west-1.json"

# The blocklist: the known-bad addresses used above, and a few more FireHOL level 1 entries.
cat >"$EXAMPLES/blocklist.netset" <<'EOF'
#
# sgvet-example
#
# ipv4 hash:net ipset
#
# A small example blocklist for sgvet, in the FireHOL netset
# format. Its entries are copied from the FireHOL level 1 list
# (firehol_level1, version 704 of Fri Nov 13 2015); they are
# illustrative, not a current list of bad addresses.
#
# Maintainer      : sgvet examples
# Maintainer URL  : https://github.com/sgvet/sgvet
# List source URL : http://iplists.firehol.org/?ipset=firehol_level1
# Source File Date: Fri Nov 13 17:17:05 UTC 2015
#
# Category        : attacks
# Version         : 1
#
# This File Date  : Fri Nov 13 17:18:59 UTC 2015
# Update Frequency: never
# Aggregation     : none
# Entries         : 8 subnets, 4613 unique IPs
#
# Generated by sgvet's scripts/make-examples.sh
#
1.10.16.0/20
5.8.62.0/24
41.71.171.0/24
43.251.159.9
60.21.214.66
85.25.199.246
94.73.144.9
185.50.196.126
EOF

# ---------------------------------------------------------------------------------------
# The tiny estate of collector/testdata/aws-cli: the default VPC of us-east-1 with its
# default group, "web" and "db", and one network interface using "web".
curl -fsS -o /dev/null -X POST "$ENDPOINT/moto-api/reset"
REGION=us-east-1
echo "make-examples: building the tiny estate in $REGION" >&2
T_VPC=$(default_vpc)
T_DEFAULT=$(default_sg "$T_VPC")
T_OFFICE=$(ec2text create-managed-prefix-list --prefix-list-name office --address-family IPv4 \
	--max-entries 5 --query PrefixList.PrefixListId \
	--entries Cidr=1.1.1.0/30,Description=office Cidr=9.9.9.9/32)
T_WEB=$(ec2text create-security-group --vpc-id "$T_VPC" --group-name web --description "web servers" --query GroupId)
T_DB=$(ec2text create-security-group --vpc-id "$T_VPC" --group-name db --description "database" --query GroupId)
allow ingress "$T_WEB" \
	"$(perm tcp 22 22 8.8.8.8/32 contractor)" \
	"$(perm tcp 22 22 2606:4700::1111/128)" \
	"$(perm tcp 443 443 0.0.0.0/0)" \
	"$(perm tcp 80 80 ::/0)" \
	"$(perm -1 -1 -1 10.0.0.0/8)"
ec2 authorize-security-group-ingress --group-id "$T_DB" --ip-permissions \
	"[{\"IpProtocol\":\"tcp\",\"FromPort\":5432,\"ToPort\":5432,\"UserIdGroupPairs\":[{\"GroupId\":\"$T_WEB\"}],\"PrefixListIds\":[{\"PrefixListId\":\"$T_OFFICE\"}]}]" >/dev/null
T_SUBNET=$(ec2text describe-subnets --filters "Name=vpc-id,Values=$T_VPC" Name=availability-zone,Values=us-east-1a \
	--query 'Subnets[0].SubnetId')
T_ENI=$(ec2text create-network-interface --subnet-id "$T_SUBNET" --description "web-1 eth0" --groups "$T_WEB" \
	--query NetworkInterface.NetworkInterfaceId)

ec2 describe-security-groups >"$FIXTURES/describe-security-groups.json"
ec2 describe-security-group-rules >"$FIXTURES/describe-security-group-rules.json"
ec2 describe-network-interfaces >"$FIXTURES/describe-network-interfaces.json"
ec2 describe-managed-prefix-lists >"$FIXTURES/describe-managed-prefix-lists.json"
ec2 get-managed-prefix-list-entries --prefix-list-id "$T_OFFICE" >"$FIXTURES/get-managed-prefix-list-entries.json"

# EXPECTED.md: the facts tests assert, with this run's ids.
python3 - "$FIXTURES" "$T_VPC" "$T_WEB" "$T_DB" "$T_DEFAULT" "$T_OFFICE" "$T_ENI" <<'PY'
import json, sys, os

fixtures, vpc, web, db, default, office, eni = sys.argv[1:]
load = lambda n: json.load(open(os.path.join(fixtures, n)))
groups = load("describe-security-groups.json")["SecurityGroups"]
rules = load("describe-security-group-rules.json")["SecurityGroupRules"]
owner = groups[0]["OwnerId"]
names = {web: "web", db: "db", default: "default"}
assert sorted(g["GroupId"] for g in groups) == sorted(names), "unexpected groups"


def ports(proto, lo, hi):
    if proto == "-1":
        return "all"
    return str(lo) if lo == hi else f"{lo}-{hi}"


def target(r):
    for k in ("CidrIpv4", "CidrIpv6", "PrefixListId"):
        if k in r:
            return r[k]
    return r["ReferencedGroupInfo"]["GroupId"]


def find(group, egress, proto, port, tgt):
    hits = [r["SecurityGroupRuleId"] for r in rules if r["GroupId"] == group and r["IsEgress"] == egress
            and r["IpProtocol"] == proto and ports(proto, r.get("FromPort"), r.get("ToPort")) == port
            and target(r) == tgt]
    assert len(hits) == 1, (group, egress, proto, port, tgt, hits)
    return hits[0]


def synth(group, egress, proto, port, tgt):
    p = {"-1": "all"}.get(proto, proto)
    return f"{group}:{'egress' if egress else 'ingress'}:{p}:{port}:{tgt}"


# (kind, value, rules) for every public source found in the files, in sgvet's order.
public_rules = {
    ("world", "0.0.0.0/0"): [(web, False, "tcp", "443", "0.0.0.0/0"), (web, True, "-1", "all", "0.0.0.0/0"),
                              (db, True, "-1", "all", "0.0.0.0/0"), (default, True, "-1", "all", "0.0.0.0/0")],
    ("world", "::/0"): [(web, False, "tcp", "80", "::/0")],
    ("address", "8.8.8.8"): [(web, False, "tcp", "22", "8.8.8.8/32")],
    ("address", "2606:4700::1111"): [(web, False, "tcp", "22", "2606:4700::1111/128")],
}
pl_rule = find(db, False, "tcp", "5432", office)

out = []
w = out.append
w("# Expected facts for the aws-cli fixtures")
w("")
w("Written by `scripts/make-examples.sh` (do not edit by hand; rerun the script, which also")
w("rewrites every id below). The describe-*.json and get-managed-prefix-list-entries.json files")
w("are what aws-cli v1 printed (`--output json`) from moto_server; `invalid-json.json` and")
w("`invalid-cidr.json` are hand-written.")
w("")
w("## The tiny estate")
w("")
w(f"Account `{owner}`, region `us-east-1`, one VPC `{vpc}` (moto's default VPC, 172.31.0.0/16).")
w("")
w("| group | id | attached |")
w("|---|---|---|")
w(f"| web | `{web}` | yes (network interface `{eni}`) |")
w(f"| db | `{db}` | no |")
w(f"| default | `{default}` | no |")
w("")
w(f"Customer-managed prefix list `{office}` (name `office`, owner `{owner}`): entries")
w("`1.1.1.0/30` (description `office`) and `9.9.9.9/32` (no description).")
w("describe-managed-prefix-lists.json also lists moto's AWS-managed lists (OwnerId `AWS`).")
w("")
w("### Rules (describe-security-group-rules.json)")
w("")
w("sgvet's id for a rule read from describe-security-groups.json is")
w("`group:direction:protocol:ports:target` (the synthetic id in the last column).")
w("")
w("| rule id | group | direction | protocol | ports | target | description | synthetic id |")
w("|---|---|---|---|---|---|---|---|")
order = {web: 0, db: 1, default: 2}
for r in sorted(rules, key=lambda r: (order[r["GroupId"]], r["IsEgress"], r.get("FromPort", 0), target(r))):
    proto = r["IpProtocol"]
    port = ports(proto, r.get("FromPort"), r.get("ToPort"))
    tgt = target(r)
    w(f"| `{r['SecurityGroupRuleId']}` | {names[r['GroupId']]} | {'egress' if r['IsEgress'] else 'ingress'} "
      f"| {'all' if proto == '-1' else proto} | {port} | `{tgt}` | {r.get('Description', '')} "
      f"| `{synth(r['GroupId'], r['IsEgress'], proto, port, tgt)}` |")
w("")
w(f"That is {len(rules)} rules: web 6 (5 ingress, 1 egress), db 3 (2 ingress, 1 egress), default 1 (egress).")
w("moto gives the default group no self-referencing ingress rule (real AWS does) and prints no")
w("`GroupOwnerId` in describe-security-group-rules (real AWS does).")
w("")
w("### Public sources")
w("")
w("From the files (describe-security-groups.json or describe-security-group-rules.json, with or")
w("without describe-network-interfaces.json), with the default max_hosts_per_cidr of 256, the")
w("public sources are exactly these four, in this order. Rule ids are those of")
w("describe-security-group-rules.json; from describe-security-groups.json they are the synthetic")
w("ids of the table above.")
w("")
w("| kind | value | rules |")
w("|---|---|---|")
for (kind, value), refs in public_rules.items():
    ids = sorted(find(*ref) for ref in refs)
    w(f"| {kind} | `{value}` | {', '.join(f'`{i}`' for i in ids)} |")
w("")
w("Not public: `10.0.0.0/8` (Private-Use), the reference to `web`, and the prefix list rule")
w(f"`{pl_rule}`, which files cannot expand (its entries are not in the files; sgvet marks it")
w("unresolved).")
w("")
w("Collected from the API (moto with this estate), the prefix list rule is expanded into its entries,")
w("so these five addresses are public sources as well, each referenced by that one rule:")
w("")
w("| kind | value | rules | entry description |")
w("|---|---|---|---|")
for a in ("1.1.1.0", "1.1.1.1", "1.1.1.2", "1.1.1.3"):
    w(f"| address | `{a}` | `{pl_rule}` | office |")
w(f"| address | `9.9.9.9` | `{pl_rule}` | |")
w("")
w("giving, in sgvet's order: world `0.0.0.0/0`, world `::/0`, then the addresses `1.1.1.0`,")
w("`1.1.1.1`, `1.1.1.2`, `1.1.1.3`, `8.8.8.8`, `9.9.9.9`, `2606:4700::1111`. There is no source of")
w("kind prefix (no public prefix of more than 256 addresses). Only us-east-1 holds this estate; in")
w("any other region moto shows just the default VPC's default group with its 0.0.0.0/0 egress.")
w("")
open(os.path.join(fixtures, "EXPECTED.md"), "w").write("\n".join(out) + "\n")
PY
# The hand-written files (the positions were checked with Go's encoding/json).
cat >>"$FIXTURES/EXPECTED.md" <<'EOF'
## Hand-written files

`invalid-json.json` is a describe-security-groups file whose line 7
(`"OwnerId": "123456789012"`) lacks its trailing comma. Go's `json.Unmarshal` fails with a
`*json.SyntaxError`: `invalid character '"' after object key:value pair`, `Offset` 208. Byte 208
(1-based; index 207) is the `"` that opens `"VpcId"` on line 8, so the error is at
**line 8, column 13** (lines 1 to 7 take 195 bytes with their newlines; 208 - 195 = 13).
sgvet reports `invalid-json.json:8:13: invalid character '"' after object key:value pair`.

`invalid-cidr.json` is valid describe-security-groups JSON: one group `sg-0a1b2c3d4e5f60718`
(`web`, VPC `vpc-0f1e2d3c4b5a69788`, owner `123456789012`) with ingress tcp 22 from
`8.8.8.8/32` (description `contractor`), `300.1.2.3/32` (description `typo`) and
`81.2.69.142/32` (no description), ingress tcp 443 from `0.0.0.0/0`, and the default egress
(all traffic to `0.0.0.0/0`). It parses; the one invalid rule is
`sg-0a1b2c3d4e5f60718:ingress:tcp:22:300.1.2.3/32`, kept with its text `300.1.2.3/32` and the
reason `netip.ParsePrefix("300.1.2.3/32"): ParseAddr("300.1.2.3"): IPv4 field has value >255`.
Its public sources are: world `0.0.0.0/0` (the tcp 443 rule and the egress rule), address
`8.8.8.8`, address `81.2.69.142`.
EOF

for f in "$EXAMPLES"/*.json "$FIXTURES"/describe-*.json "$FIXTURES"/get-*.json; do
	python3 -m json.tool "$f" >/dev/null || { echo "make-examples: $f is not valid JSON" >&2; exit 1; }
done
echo "make-examples: wrote $EXAMPLES and $FIXTURES" >&2
