# shellcheck shell=bash disable=SC2154  # $root, $state, $cache come from scripts/services
# tansu 0.6.0, a Kafka-compatible broker with SQLite storage, built with cargo install
# (several minutes). Runs only when KINFLUX_TANSU=1 or when named: the compatibility
# subset of the Kafka tests runs on it. (Sourced by scripts/services.)
#   port: KINFLUX_TANSU_PORT (9099)
#   status: KINFLUX_TANSU_BROKERS, KINFLUX_TANSU_BIN

tansu_version=0.6.0
tansu_port=${KINFLUX_TANSU_PORT:-9099}

tansu_is_right_version() {
  # cargo records the version and the features of what it installed.
  command -v tansu >/dev/null 2>&1 || return 1
  python3 - "$tansu_version" <<'PY' 2>/dev/null
import json, os, sys
want = sys.argv[1]
with open(os.path.expanduser("~/.cargo/.crates2.json")) as f:
    installs = json.load(f)["installs"]
ok = any(k.startswith(f"tansu {want} ") and "libsql" in v.get("features", [])
         for k, v in installs.items())
sys.exit(0 if ok else 1)
PY
}

tansu_install() {
  if tansu_is_right_version; then return; fi
  say "building tansu $tansu_version with SQLite storage (takes several minutes)"
  cargo install tansu --version "$tansu_version" --locked --features libsql --quiet
}

tansu_metadata() {
  timeout 5 tansu topic list --broker "tcp://127.0.0.1:$tansu_port"
}

tansu_start() {
  local dir="$state/tansu"
  if pid_alive tansu tansu && tansu_metadata >/dev/null 2>&1; then return; fi
  mkdir -p "$dir"
  say "starting tansu on 127.0.0.1:$tansu_port (SQLite storage in $dir)"
  # tansu resolves a sqlite:// path against its working directory.
  (
    cd "$dir" || exit 1
    nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$tansu_port" \
      --advertised-listener-url "tcp://127.0.0.1:$tansu_port" \
      --storage-engine "sqlite://tansu.db" >"$dir/tansu.log" 2>&1 </dev/null &
    echo $! >"$state/tansu.pid"
  )
  wait_until "tansu metadata" 60 "$dir/tansu.log" tansu_metadata
}

tansu_stop() {
  stop_one tansu tansu
}

tansu_status() {
  echo "KINFLUX_TANSU_BROKERS=127.0.0.1:$tansu_port"
  echo "KINFLUX_TANSU_BIN=$(command -v tansu || echo tansu)"
  pid_alive tansu tansu && tansu_metadata >/dev/null 2>&1
}
