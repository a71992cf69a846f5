# Sourced by the benchmark scripts: starting one fieldsync server on a free loopback port.

# start_fieldsync LOG SERVE-ARGS…: runs `fieldsync serve --listen 127.0.0.1:0 SERVE-ARGS…` in the
# background (FIELDSYNC_BIN, else the release build), its output in LOG, and returns once it
# listens, with its pid in `server_pid` and its address in `server_addr`; exits with the log
# if it stops or does not listen within 60 s.
start_fieldsync() {
  local log="$1"
  shift
  NO_COLOR=1 "${FIELDSYNC_BIN:-${CARGO_TARGET_DIR:-target}/release/fieldsync}" serve \
    --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 3000); do
    server_addr="$(grep -o 'addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)"
    [ -z "$server_addr" ] || return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.02
  done
  echo "server did not start; log:" >&2
  cat "$log" >&2
  exit 1
}
