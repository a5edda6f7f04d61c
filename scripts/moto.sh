# Shared by the scripts that run sgvet against moto_server; source it, do not run it.
#
#   start_moto DIR   starts moto_server on a free loopback port, logging to DIR/moto.log,
#                    waits until it answers, and sets moto_pid and url. Variables set in
#                    the caller's environment (MOTO_RECORDER_FILEPATH ...) reach it.
#   stop_moto        stops it by its process id, if it was started.
#   use_moto DIR     points the SDK and the aws CLI at it, with test credentials and no
#                    config or credentials file of this machine's (DIR/no-aws-*).

moto_pid=""
url=""

start_moto() {
  moto_server -H 127.0.0.1 -p 0 >"$1/moto.log" 2>&1 &
  moto_pid=$!
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$1/moto.log" | head -n1 || true)
    if [ -n "$url" ] && curl -fsS "$url/moto-api/" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "moto_server did not start:"
  cat "$1/moto.log"
  return 1
}

stop_moto() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    moto_pid=""
  fi
}

use_moto() {
  export AWS_ENDPOINT_URL=$url AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE="$1/no-aws-config" AWS_SHARED_CREDENTIALS_FILE="$1/no-aws-credentials"
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
