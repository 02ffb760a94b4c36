# shellcheck shell=bash disable=SC2154  # $root, $state, $cache come from scripts/services
# InfluxDB 1.6.7 from Debian's `influxdb` package (sourced by scripts/services).
#   ports: KINFLUX_INFLUX_PORT (8086), KINFLUX_INFLUX_RPC_PORT (8088)
#   status: KINFLUX_INFLUX_URL, KINFLUX_INFLUXD_BIN

influxdb_port=${KINFLUX_INFLUX_PORT:-8086}
influxdb_rpc_port=${KINFLUX_INFLUX_RPC_PORT:-8088}

influxdb_install() {
  if command -v influxd >/dev/null 2>&1; then return; fi
  say "installing Debian's influxdb package"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q influxdb >/dev/null
  # The package may start its own server through init scripts; ours runs from our config.
  as_root service influxdb stop >/dev/null 2>&1 || true
}

influxdb_ping() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$influxdb_port/ping")" = 204 ]
}

influxdb_start() {
  local dir="$state/influxdb"
  if pid_alive influxdb influxd && influxdb_ping; then return; fi
  influxd1_config "$dir" "$influxdb_rpc_port" "$influxdb_port"
  say "starting influxd on 127.0.0.1:$influxdb_port"
  nohup influxd -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 </dev/null &
  echo $! >"$state/influxdb.pid"
  wait_until "InfluxDB /ping" 60 "$dir/influxd.log" influxdb_ping
}

influxdb_stop() {
  stop_one influxdb influxd
}

influxdb_status() {
  echo "KINFLUX_INFLUX_URL=http://127.0.0.1:$influxdb_port"
  echo "KINFLUX_INFLUXD_BIN=$(command -v influxd || echo influxd)"
  pid_alive influxdb influxd && influxdb_ping
}
