# shellcheck shell=bash disable=SC2154  # $state, $cache and the helpers come from scripts/services
# Kafka Connect (standalone worker), a peer for benches/peers (sourced by scripts/services).
# Install-only: nothing runs, `start` just fetches it; benches/peers starts its own workers.
#   version: KINFLUX_CONNECT_VERSION (4.1.1, the Kafka of scripts/services.d/kafka.sh)
#            KINFLUX_CONNECT_APICURIO_VERSION (2.6.13.Final: the Maven mirror lacks the parent pom
#            of 3.0.9; the 2.x client speaks to the 3.0.9 registry through its v2 API)
#            KINFLUX_CONNECT_INFLUX_SINK_VERSION (1.0.5)
#   status: KINFLUX_CONNECT_HOME (printed once fetched): libs/ is the worker's classpath,
#           plugins/ its plugin.path (apicurio-converter/, and influxdb-sink/ when the
#           sink could be fetched)
#
# Everything comes from Maven Central through Maven: org.apache.kafka:connect-runtime and
# its dependencies, Apicurio's Kafka Connect converter (io.apicurio:
# apicurio-registry-utils-converter; Confluent's Avro converter is not on Maven Central) and
# the InfluxDB 1.x sink io.github.willena:connect-influxdb-sink, a jar with its dependencies.
# Not in the default service list: enable it by naming it.

connect_version=${KINFLUX_CONNECT_VERSION:-4.1.1}
connect_apicurio_version=${KINFLUX_CONNECT_APICURIO_VERSION:-2.6.13.Final}
connect_sink_version=${KINFLUX_CONNECT_INFLUX_SINK_VERSION:-1.0.5}
connect_home="$cache/kafka-connect-$connect_version"

# connect_fetch_deps DIR EXCLUDE_GROUPS DEP...: Maven copy-dependencies of the DEPs
# (group:artifact:version) into DIR, through a throwaway pom.
connect_fetch_deps() {
  local dir=$1 exclude=$2; shift 2
  local repo="$cache/m2" work dep deps="" g a v
  work=$(mktemp -d)
  for dep in "$@"; do
    IFS=: read -r g a v <<<"$dep"
    deps+="<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
  done
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>kinflux.peers</groupId><artifactId>fetch</artifactId><version>0</version>
<dependencies>$deps</dependencies></project>
POM
  mkdir -p "$repo" "$dir"
  (cd "$work" && mvn -q -B -Dmaven.repo.local="$repo" dependency:copy-dependencies \
    -DincludeScope=runtime -DexcludeGroupIds="$exclude" -DoutputDirectory="$dir") \
    >>"$cache/kafka-connect-fetch.log" 2>&1
  local rc=$?
  rm -rf "$work"
  return $rc
}

kafka-connect_install() {
  [ -f "$connect_home/libs/connect-runtime-$connect_version.jar" ] &&
    [ -d "$connect_home/plugins/apicurio-converter" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "kafka-connect is fetched with Maven (mvn)"
  say "fetching Kafka Connect $connect_version, Apicurio's converter and the InfluxDB sink from Maven Central"
  local tmp="$connect_home.tmp"
  rm -rf "$tmp"
  : >"$cache/kafka-connect-fetch.log"
  connect_fetch_deps "$tmp/libs" "" \
    "org.apache.kafka:connect-runtime:$connect_version" \
    "org.apache.logging.log4j:log4j-slf4j-impl:2.25.3" \
    "org.apache.logging.log4j:log4j-core:2.25.3" || {
    tail -n 30 "$cache/kafka-connect-fetch.log" >&2
    die "fetching connect-runtime $connect_version failed; log: $cache/kafka-connect-fetch.log"
  }
  # The worker already has Kafka's own jars: the plugin keeps only what it adds.
  connect_fetch_deps "$tmp/plugins/apicurio-converter" org.apache.kafka \
    "io.apicurio:apicurio-registry-utils-converter:$connect_apicurio_version" || {
    tail -n 30 "$cache/kafka-connect-fetch.log" >&2
    die "fetching apicurio-registry-utils-converter failed; log: $cache/kafka-connect-fetch.log"
  }
  # The sink is optional: a Maven mirror that does not serve it leaves Connect without it.
  if ! connect_fetch_deps "$tmp/plugins/influxdb-sink" org.apache.kafka \
    "io.github.willena:connect-influxdb-sink:$connect_sink_version"; then
    say "warning: io.github.willena:connect-influxdb-sink:$connect_sink_version could not be fetched; see $cache/kafka-connect-fetch.log"
    rm -rf "$tmp/plugins/influxdb-sink"
  fi
  rm -rf "$connect_home"
  mv "$tmp" "$connect_home"
}

kafka-connect_start() { kafka-connect_install; }

kafka-connect_stop() { :; }

kafka-connect_status() {
  [ -f "$connect_home/libs/connect-runtime-$connect_version.jar" ] || return 1
  echo "KINFLUX_CONNECT_HOME=$connect_home"
}
