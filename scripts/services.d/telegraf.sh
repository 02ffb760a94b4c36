# shellcheck shell=bash disable=SC2154  # $state, $cache and the helpers come from scripts/services
# Telegraf, a peer for benches/peers and the mappings side-by-side test (sourced by
# scripts/services). Install-only: nothing runs, `start` just builds it.
#   version: KINFLUX_TELEGRAF_VERSION (v1.37.2; 1.35.4, 1.36.0 and 1.36.1 carry a replace
#            directive in go.mod, so `go install ...@version` refuses them)
#   status: KINFLUX_TELEGRAF_BIN (printed once built)
#
# Built from the Go module proxy with only the plugins the peers need (a full Telegraf takes
# several times as long to build and is ~250 MB). Not in the default service list: enable it
# by naming it (`scripts/services install telegraf`).

telegraf_version=${KINFLUX_TELEGRAF_VERSION:-v1.37.2}
telegraf_home="$cache/telegraf-${telegraf_version#v}"
telegraf_bin="$telegraf_home/telegraf"
telegraf_tags="custom,inputs.kafka_consumer,outputs.influxdb,outputs.influxdb_v2,parsers.influx,parsers.avro,parsers.json_v2"

telegraf_install() {
  [ -x "$telegraf_bin" ] && return 0
  command -v go >/dev/null 2>&1 || die "telegraf is built with Go (go install); install Go first"
  say "building Telegraf $telegraf_version from the Go module proxy (a few minutes)"
  local tmp="$telegraf_home.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp" "$cache"
  # GOBIN puts the binary in a directory of its own; the module cache stays Go's default.
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install -tags "$telegraf_tags" \
    "github.com/influxdata/telegraf/cmd/telegraf@$telegraf_version" \
    >"$cache/telegraf-build.log" 2>&1 || {
    tail -n 30 "$cache/telegraf-build.log" >&2
    die "building telegraf $telegraf_version failed; log: $cache/telegraf-build.log"
  }
  rm -rf "$telegraf_home"
  mv "$tmp" "$telegraf_home"
}

telegraf_start() { telegraf_install; }

telegraf_stop() { :; }

telegraf_status() {
  [ -x "$telegraf_bin" ] || return 1
  echo "KINFLUX_TELEGRAF_BIN=$telegraf_bin"
}
