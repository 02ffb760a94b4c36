# shellcheck shell=bash disable=SC2154  # $state, $cache and the helpers come from scripts/services
# A current InfluxDB OSS 1.x, built from the Go module proxy (sourced by scripts/services).
#   ports: KINFLUX_INFLUX1X_PORT (8089), KINFLUX_INFLUX1X_RPC_PORT (8090)
#   version: KINFLUX_INFLUX1X_VERSION (v1.13.2)
#   status: KINFLUX_INFLUX1X_URL (printed only while it runs)
#
# Enabled by KINFLUX_INFLUX1X=1: its own libflux build doubles the time of a fresh install.
# The build is influx_go_build from influxdb2.sh.

influxdb1x_version=${KINFLUX_INFLUX1X_VERSION:-v1.13.2}
influxdb1x_port=${KINFLUX_INFLUX1X_PORT:-8089}
influxdb1x_rpc_port=${KINFLUX_INFLUX1X_RPC_PORT:-8090}
influxdb1x_dir="$state/influxdb1x"
influxdb1x_bin="$cache/influxdb1x-$influxdb1x_version/bin/influxd"

influxdb1x_install() {
  # 1.x releases report their version without the leading v.
  influx_go_build influxdb1x github.com/influxdata/influxdb "$influxdb1x_version" \
    "-X main.version=${influxdb1x_version#v} -X main.commit=module-proxy -X main.branch=${influxdb1x_version}" \
    ""
}

influxdb1x_url() { echo "http://127.0.0.1:$influxdb1x_port"; }

influxdb1x_ping() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$(influxdb1x_url)/ping")" = 204 ]
}

influxdb1x_running() {
  pid_alive influxdb1x "$influxdb1x_bin" && influxdb1x_ping
}

influxdb1x_start() {
  influxdb1x_running && return 0
  [ -x "$influxdb1x_bin" ] || die "influxdb1x is not built; run KINFLUX_INFLUX1X=1 scripts/services install influxdb1x"
  local dir="$influxdb1x_dir"
  influxd1_config "$dir" "$influxdb1x_rpc_port" "$influxdb1x_port"
  say "starting InfluxDB $influxdb1x_version on 127.0.0.1:$influxdb1x_port"
  nohup "$influxdb1x_bin" -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
  echo $! >"$state/influxdb1x.pid"
  wait_until "InfluxDB $influxdb1x_version /ping" 60 "$dir/influxd.log" influxdb1x_ping
}

influxdb1x_stop() {
  stop_one influxdb1x "$influxdb1x_bin"
}

influxdb1x_status() {
  influxdb1x_running || return 1
  echo "KINFLUX_INFLUX1X_URL=$(influxdb1x_url)"
}
