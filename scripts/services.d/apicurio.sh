# shellcheck shell=bash disable=SC2154  # $state, $cache and the helpers come from scripts/services
# Apicurio Registry 3.x from Maven Central (sourced by scripts/services).
#   ports: KINFLUX_REGISTRY_PORT (8081)
#   version: KINFLUX_APICURIO_VERSION (3.0.9: later releases need Java 21, Debian 12 has 17)
#   status: KINFLUX_REGISTRY_URL, the Confluent-compatible API at .../apis/ccompat/v7
#           (printed only while it runs)
#
# Storage is the default in-memory H2: a restart starts from an empty registry.

apicurio_version=${KINFLUX_APICURIO_VERSION:-3.0.9}
apicurio_port=${KINFLUX_REGISTRY_PORT:-8081}
apicurio_dir="$state/apicurio"
apicurio_home="$cache/apicurio-registry-$apicurio_version"

# apicurio_jar: the jar to run. 3.0 ships a Quarkus legacy jar (NAME-runner.jar beside
# lib/), later releases a fast-jar (quarkus-run.jar) that needs Java 21.
apicurio_jar() {
  local jar
  for jar in "$apicurio_home/quarkus-run.jar" "$apicurio_home"/apicurio-registry-app-*-runner.jar; do
    [ -f "$jar" ] && { echo "$jar"; return 0; }
  done
  return 1
}

apicurio_install() {
  apicurio_jar >/dev/null && return 0
  command -v java >/dev/null 2>&1 || die "apicurio needs Java 17 or later"
  command -v mvn >/dev/null 2>&1 || die "apicurio is fetched with Maven (mvn)"
  say "fetching Apicurio Registry $apicurio_version from Maven Central"
  local repo="$cache/m2" tmp="$apicurio_home.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # dependency:copy, then tar: the Maven archiver misreads the tarball's PAX headers.
  # Run from $repo: without a pom, the plugin leaves a `${project.basedir}` marker tree in
  # the working directory.
  mkdir -p "$repo"
  (cd "$repo" && mvn -q -B -Dmaven.repo.local="$repo" dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$apicurio_version:tar.gz:all" \
    -DoutputDirectory="$tmp") >"$cache/apicurio-fetch.log" 2>&1 || {
    tail -n 30 "$cache/apicurio-fetch.log" >&2
    die "fetching apicurio-registry-app $apicurio_version failed; log: $cache/apicurio-fetch.log"
  }
  tar -xzf "$tmp/apicurio-registry-app-$apicurio_version-all.tar.gz" -C "$tmp"
  rm -f "$tmp/apicurio-registry-app-$apicurio_version-all.tar.gz"
  # 3.3 wraps the application in a top directory, 3.0 does not.
  local jar
  jar=$(find "$tmp" -maxdepth 2 \( -name quarkus-run.jar -o -name 'apicurio-registry-app-*-runner.jar' \) | head -n 1)
  [ -n "$jar" ] || die "no runnable jar in apicurio-registry-app $apicurio_version"
  rm -rf "$apicurio_home"
  mv "$(dirname "$jar")" "$apicurio_home"
  rm -rf "$tmp" "$repo/io/apicurio/apicurio-registry-app"
}

apicurio_url() { echo "http://127.0.0.1:$apicurio_port/apis/ccompat/v7"; }

apicurio_ready() {
  curl -sf "$(apicurio_url)/subjects" >/dev/null
}

# apicurio_settled: ready, or no use waiting since the JVM exited (a wrong Java, a taken port).
apicurio_settled() {
  apicurio_ready || ! pid_alive apicurio "$apicurio_home/"
}

apicurio_running() {
  pid_alive apicurio "$apicurio_home/" && apicurio_ready
}

apicurio_start() {
  apicurio_running && return 0
  local jar
  jar=$(apicurio_jar) || die "apicurio is not fetched; run scripts/services install apicurio"
  mkdir -p "$apicurio_dir"
  say "starting Apicurio Registry $apicurio_version on 127.0.0.1:$apicurio_port"
  # Quarkus's management interface (health, metrics) would take port 9000: it is turned off.
  (
    cd "$apicurio_dir" || exit 1
    nohup java -Xmx512m \
      -Dquarkus.http.host=127.0.0.1 \
      -Dquarkus.http.port="$apicurio_port" \
      -Dquarkus.management.enabled=false \
      -jar "$jar" >"$apicurio_dir/registry.log" 2>&1 &
    echo $! >"$state/apicurio.pid"
  )
  wait_until "Apicurio /apis/ccompat/v7/subjects" 180 "$apicurio_dir/registry.log" apicurio_settled
  apicurio_ready || {
    tail -n 20 "$apicurio_dir/registry.log" >&2
    die "Apicurio Registry exited; log: $apicurio_dir/registry.log"
  }
}

apicurio_stop() {
  stop_one apicurio "$apicurio_home/"
}

apicurio_status() {
  apicurio_running || return 1
  echo "KINFLUX_REGISTRY_URL=$(apicurio_url)"
}
