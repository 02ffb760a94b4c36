# shellcheck shell=bash disable=SC2154  # $state, $cache and the helpers come from scripts/services
# InfluxDB OSS 2.7, built from the Go module proxy (sourced by scripts/services).
#   ports: KINFLUX_INFLUX2_PORT (8087)
#   version: KINFLUX_INFLUX2_VERSION (v2.7.12)
#   status: KINFLUX_INFLUX2_URL, KINFLUX_INFLUX2_TOKEN, KINFLUX_INFLUX2_ORG,
#           KINFLUX_INFLUX2_BUCKET (printed only while it runs)
#
# Set up through POST /api/v2/setup with org and bucket `kinflux` and a token generated once
# and kept beside the data, so a restart reuses it.

influxdb2_version=${KINFLUX_INFLUX2_VERSION:-v2.7.12}
influxdb2_port=${KINFLUX_INFLUX2_PORT:-8087}
influxdb2_dir="$state/influxdb2"
influxdb2_bin="$cache/influxdb2-$influxdb2_version/bin/influxd"
influxdb2_org=kinflux
influxdb2_bucket=kinflux

# influx_go_build NAME MODULE VERSION VERSION_LDFLAGS TAGS: build MODULE@VERSION's
# ./cmd/influxd into $cache/NAME-VERSION/bin/influxd. Shared with influxdb1x.sh.
#
# The module carries replace directives, which only apply in the main module, so the build
# runs in a writable copy of the downloaded module. influxd links flux's Rust libflux through
# influxdata's pkg-config wrapper, which runs `cargo build --release` on the flux sources in
# $GOCACHE/pkgconfig: rustup is pointed at the installed stable toolchain instead of the one
# flux pins, and lints are capped so that a newer rustc's warnings do not fail an old flux
# (flux-core denies warnings). RUSTFLAGS cannot cap them: the wrapper passes --target, and
# then RUSTFLAGS skips host crates, flux-core among them as a build dependency of flux. A
# rustc wrapper caps them on every crate and hands over to $RUSTC_WRAPPER (sccache) if set.
influx_go_build() {
  local name=$1 module=$2 version=$3 ldflags=$4 tags=$5
  local home="$cache/$name-$version"
  local bin="$home/bin/influxd" src="$home/src" log="$home/build.log"
  [ -x "$bin" ] && return 0
  command -v go >/dev/null 2>&1 || die "$name needs Go to build influxd"
  command -v cargo >/dev/null 2>&1 || die "$name needs cargo to build flux's libflux"
  mkdir -p "$home/bin"
  # One build per version at a time, across clones: a second one waits, then finds the binary.
  local lock
  exec {lock}>"$home/build.lock"
  flock "$lock"
  if [ -x "$bin" ]; then
    exec {lock}>&-
    return 0
  fi
  say "building $name $version from the Go module proxy (libflux and influxd: about ten minutes on two cores); log: $log"
  local started=$SECONDS
  (
    set -euo pipefail
    # A Go build cache of its own (2 GB, with libflux's cargo build in pkgconfig/): it goes
    # once influxd is linked, and stays after a failure so that a retry resumes.
    export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOCACHE="$home/go-build"
    cat >"$home/bin/rustc-cap-lints" <<'SH'
#!/bin/sh
# cargo runs WRAPPER RUSTC ARGS...; a crate's compile, not a probe, gets its lints capped.
case " $* " in *" --crate-name "*) set -- "$@" --cap-lints=warn ;; esac
exec ${KINFLUX_INNER_RUSTC_WRAPPER:+"$KINFLUX_INNER_RUSTC_WRAPPER"} "$@"
SH
    chmod +x "$home/bin/rustc-cap-lints"
    export KINFLUX_INNER_RUSTC_WRAPPER=${RUSTC_WRAPPER:-} RUSTC_WRAPPER="$home/bin/rustc-cap-lints"
    export RUSTUP_TOOLCHAIN=stable
    local dir
    dir=$(cd "$home" && go mod download -json "$module@$version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || { echo "go mod download gave no directory for $module@$version"; exit 1; }
    rm -rf "$src.tmp"
    cp -r "$dir" "$src.tmp"
    chmod -R u+w "$src.tmp"
    rm -rf "$src"
    mv "$src.tmp" "$src"
    cd "$src"
    # The wrapper at the version the module pins, as its own scripts/pkg-config.sh builds it.
    go build -o "$home/bin/pkg-config" github.com/influxdata/pkg-config
    PKG_CONFIG="$home/bin/pkg-config" go build -tags "$tags" -ldflags "$ldflags" \
      -o "$bin.tmp" ./cmd/influxd
    mv "$bin.tmp" "$bin"
  ) >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    die "building $name $version failed; full log: $log"
  }
  # The copied sources and the build cache only served the build.
  rm -rf "$src" "$home/go-build"
  exec {lock}>&-
  say "built $name $version in $((SECONDS - started))s: $bin ($(du -h "$bin" | cut -f1))"
}

influxdb2_install() {
  influx_go_build influxdb2 github.com/influxdata/influxdb/v2 "$influxdb2_version" \
    "-X main.version=$influxdb2_version -X main.commit=module-proxy" \
    sqlite_foreign_keys,sqlite_json
}

influxdb2_url() { echo "http://127.0.0.1:$influxdb2_port"; }

influxdb2_ready() {
  curl -sf "$(influxdb2_url)/health" | grep -q '"status": *"pass"'
}

influxdb2_running() {
  pid_alive influxdb2 "$influxdb2_bin" && influxdb2_ready
}

# influxdb2_setup: onboard a fresh server; a set-up one keeps the token saved at its setup.
influxdb2_setup() {
  local tokenfile="$influxdb2_dir/token" allowed
  allowed=$(curl -sf "$(influxdb2_url)/api/v2/setup") || die "GET /api/v2/setup failed"
  if echo "$allowed" | grep -q '"allowed": *false'; then
    [ -s "$tokenfile" ] || die "InfluxDB 2 in $influxdb2_dir is set up but its token is lost; remove that directory"
    return 0
  fi
  local token
  token="kinflux-$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')"
  local body
  body=$(printf '{"username":"kinflux","password":"kinflux-password","org":"%s","bucket":"%s","token":"%s"}' \
    "$influxdb2_org" "$influxdb2_bucket" "$token")
  # The token goes through stdin, not the command line; the answer repeats it and is not kept.
  local answer code
  answer=$(echo "$body" | curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data @- "$(influxdb2_url)/api/v2/setup")
  code=${answer##*$'\n'}
  [ "$code" = 201 ] || die "POST /api/v2/setup answered $code: $(echo "${answer%$'\n'*}" | head -c 300)"
  (umask 077 && echo "$token" >"$tokenfile")
  say "influxdb2: set up org $influxdb2_org, bucket $influxdb2_bucket"
}

influxdb2_start() {
  if influxdb2_running; then
    influxdb2_setup
    return 0
  fi
  [ -x "$influxdb2_bin" ] || die "influxdb2 is not built; run scripts/services install influxdb2"
  mkdir -p "$influxdb2_dir/engine"
  say "starting InfluxDB $influxdb2_version on 127.0.0.1:$influxdb2_port"
  # The working directory holds no config file, so only these flags apply.
  (
    cd "$influxdb2_dir" || exit 1
    nohup "$influxdb2_bin" \
      --http-bind-address "127.0.0.1:$influxdb2_port" \
      --bolt-path "$influxdb2_dir/influxd.bolt" \
      --sqlite-path "$influxdb2_dir/influxd.sqlite" \
      --engine-path "$influxdb2_dir/engine" \
      --reporting-disabled \
      --log-level warn >"$influxdb2_dir/influxd.log" 2>&1 &
    echo $! >"$state/influxdb2.pid"
  )
  wait_until "InfluxDB 2 /health" 60 "$influxdb2_dir/influxd.log" influxdb2_ready
  influxdb2_setup
}

influxdb2_stop() {
  stop_one influxdb2 "$influxdb2_bin"
}

influxdb2_status() {
  influxdb2_running && [ -s "$influxdb2_dir/token" ] || return 1
  echo "KINFLUX_INFLUX2_URL=$(influxdb2_url)"
  echo "KINFLUX_INFLUX2_TOKEN=$(cat "$influxdb2_dir/token")"
  echo "KINFLUX_INFLUX2_ORG=$influxdb2_org"
  echo "KINFLUX_INFLUX2_BUCKET=$influxdb2_bucket"
}
