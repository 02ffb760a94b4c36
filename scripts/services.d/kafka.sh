# shellcheck shell=bash disable=SC2154  # $root, $state, $cache come from scripts/services
# Apache Kafka 4.1.1 in KRaft mode, from Maven Central's jars, run with Java 17 (sourced by
# scripts/services).
#
# Install: a small pom under $cache/kafka-4.1.1, `mvn dependency:copy-dependencies` of
# kafka_2.13, kafka-tools and log4j (the broker logs nothing without it) into libs/, the
# classpath of the broker and of scripts/kafka-java. Shared by every clone.
#
# One node by default; KINFLUX_KAFKA_NODES=3 runs three nodes instead (each broker and
# controller, replication factor 3 and min.insync.replicas 2 for new topics), node N on the
# ports below plus (N-1) * KINFLUX_KAFKA_NODE_PORT_STEP (10).
#
# Listeners on 127.0.0.1, each port its own variable (defaults follow KINFLUX_KAFKA_PORT):
#   PLAINTEXT       KINFLUX_KAFKA_PORT                 9092
#   CONTROLLER      KINFLUX_KAFKA_CONTROLLER_PORT      +1  (KRaft quorum, not for clients)
#   SSL             KINFLUX_KAFKA_SSL_PORT             +2  server certificate only
#   MTLS (SSL)      KINFLUX_KAFKA_MTLS_PORT            +3  client certificate required
#   SASL_PLAINTEXT  KINFLUX_KAFKA_SASL_PLAINTEXT_PORT  +4  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
#   SASL_SSL        KINFLUX_KAFKA_SASL_SSL_PORT        +5  the same mechanisms over TLS
#   OAUTH           KINFLUX_KAFKA_OAUTH_PORT           +6  SASL_PLAINTEXT, OAUTHBEARER only
# and the OAuth server of the OAUTH listener, KINFLUX_OAUTH_PORT (+8; +7 is tansu's 9099):
# scripts/oauth-server, a client-credentials token endpoint and a JWKS, started before the
# broker (which reads the JWKS at start). The broker checks each token's RS256 signature
# against that JWKS, its issuer (the server's URL) and its audience ("kafka"), with Kafka's
# OAuthBearerValidatorCallbackHandler; a session lasts until the token expires, so clients
# re-authenticate (KIP-368) or reconnect. OAuth client: KINFLUX_OAUTH_CLIENT_ID (kinflux) /
# KINFLUX_OAUTH_CLIENT_SECRET (kinflux-oauth-secret); the clients ID-short (tokens of 8 s)
# and ID-foreign (tokens for another audience) share the secret, for tests.
# Certificates come from a CA generated under $state/kafka/pki (SAN 127.0.0.1, localhost).
# SASL user: KINFLUX_KAFKA_SASL_USERNAME (kinflux) / KINFLUX_KAFKA_SASL_PASSWORD
# (kinflux-secret): SCRAM credentials are written when the storage is formatted, PLAIN
# users come from the listeners' JAAS settings. Heap per JVM: KINFLUX_KAFKA_HEAP (512m).
#
# status: KINFLUX_KAFKA_BROKERS, KINFLUX_KAFKA_HOME, KINFLUX_KAFKA_SSL_BROKERS,
# KINFLUX_KAFKA_MTLS_BROKERS, KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS,
# KINFLUX_KAFKA_SASL_SSL_BROKERS, KINFLUX_KAFKA_CA_FILE, KINFLUX_KAFKA_CLIENT_CERT,
# KINFLUX_KAFKA_CLIENT_KEY, KINFLUX_KAFKA_SASL_USERNAME, KINFLUX_KAFKA_SASL_PASSWORD,
# KINFLUX_KAFKA_OAUTH_BROKERS, KINFLUX_OAUTH_TOKEN_URL, KINFLUX_OAUTH_JWKS_URL,
# KINFLUX_OAUTH_CLIENT_ID, KINFLUX_OAUTH_CLIENT_SECRET, and KINFLUX_KAFKA_CLUSTER_BROKERS in
# three-node mode.

kafka_version=4.1.1
kafka_log4j_version=2.25.3
kafka_home="$cache/kafka-$kafka_version"
kafka_nodes=${KINFLUX_KAFKA_NODES:-1}
kafka_port=${KINFLUX_KAFKA_PORT:-9092}
kafka_controller_port=${KINFLUX_KAFKA_CONTROLLER_PORT:-$((kafka_port + 1))}
kafka_ssl_port=${KINFLUX_KAFKA_SSL_PORT:-$((kafka_port + 2))}
kafka_mtls_port=${KINFLUX_KAFKA_MTLS_PORT:-$((kafka_port + 3))}
kafka_sasl_plaintext_port=${KINFLUX_KAFKA_SASL_PLAINTEXT_PORT:-$((kafka_port + 4))}
kafka_sasl_ssl_port=${KINFLUX_KAFKA_SASL_SSL_PORT:-$((kafka_port + 5))}
kafka_oauth_port=${KINFLUX_KAFKA_OAUTH_PORT:-$((kafka_port + 6))}
oauth_port=${KINFLUX_OAUTH_PORT:-$((kafka_port + 8))}
oauth_url="http://127.0.0.1:$oauth_port"
oauth_client_id=${KINFLUX_OAUTH_CLIENT_ID:-kinflux}
oauth_client_secret=${KINFLUX_OAUTH_CLIENT_SECRET:-kinflux-oauth-secret}
kafka_node_step=${KINFLUX_KAFKA_NODE_PORT_STEP:-10}
kafka_user=${KINFLUX_KAFKA_SASL_USERNAME:-kinflux}
kafka_password=${KINFLUX_KAFKA_SASL_PASSWORD:-kinflux-secret}
kafka_heap=${KINFLUX_KAFKA_HEAP:-512m}
kafka_pki="$state/kafka/pki"
kafka_jvm=("-Xmx$kafka_heap" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)
# Kafka 4 fetches no OAuth URL that this system property does not list.
kafka_broker_jvm=("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=$oauth_url/jwks,$oauth_url/token")

# --- install ---------------------------------------------------------------------------

# The jars every Kafka classpath needs; a libs/ folder without one of them is unusable.
kafka_key_jars() {
  echo "kafka_2.13-$kafka_version.jar kafka-tools-$kafka_version.jar" \
    "kafka-clients-$kafka_version.jar kafka-server-$kafka_version.jar" \
    "kafka-raft-$kafka_version.jar kafka-metadata-$kafka_version.jar" \
    "log4j-api-$kafka_log4j_version.jar log4j-core-$kafka_log4j_version.jar" \
    "log4j-slf4j-impl-$kafka_log4j_version.jar"
}

# libs/.complete lists what the last successful copy produced; every jar must be there.
kafka_libs_complete() {
  local libs=$1 jar
  [ -f "$libs/.complete" ] || return 1
  while IFS= read -r jar; do
    [ -f "$libs/$jar" ] || return 1
  done <"$libs/.complete"
  for jar in $(kafka_key_jars); do
    [ -f "$libs/$jar" ] || return 1
  done
}

kafka_write_pom() {
  cat >"$1" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by kinflux's scripts/services: the classpath of Apache Kafka $kafka_version. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kinflux</groupId>
  <artifactId>kafka-classpath</artifactId>
  <version>$kafka_version</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$kafka_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$kafka_version</version>
    </dependency>
    <!-- Kafka's POMs leave logging out. The slf4j 1.7 binding: Kafka pulls in slf4j-api
         1.7, which ignores the slf4j2 provider. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$kafka_log4j_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$kafka_log4j_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$kafka_log4j_version</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
POM
}

kafka_install_packages() {
  local missing=()
  # A JDK: the tests run single-file Java programs (java X.java needs jdk.compiler).
  java --list-modules 2>/dev/null | grep -q '^jdk.compiler' || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
}

kafka_install() {
  kafka_install_packages
  local libs="$kafka_home/libs"
  if ! kafka_libs_complete "$libs"; then
    mkdir -p "$kafka_home"
    # Clones may install at the same time; one copies, the others wait and find it done.
    exec {kafka_lock}>"$kafka_home/.install.lock"
    flock "$kafka_lock"
    if ! kafka_libs_complete "$libs"; then kafka_copy_jars "$libs"; fi
    flock -u "$kafka_lock"
    exec {kafka_lock}>&-
  fi
}

kafka_copy_jars() {
  local libs=$1 tmp="$kafka_home/libs.tmp.$$" log="$kafka_home/install.log" jar
  say "downloading Apache Kafka $kafka_version's jars from Maven Central into $libs"
  kafka_write_pom "$kafka_home/pom.xml"
  rm -rf "$tmp"
  if ! mvn -q -B -f "$kafka_home/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (log: $log)"
  fi
  for jar in $(kafka_key_jars); do
    [ -f "$tmp/$jar" ] || die "Maven's copy has no $jar (log: $log)"
  done
  (cd "$tmp" && ls -- *.jar) >"$tmp/.complete"
  if [ -d "$libs" ]; then
    # A running broker may have these jars open: never rewrite one in place. When the old
    # folder already holds the same jars, only the marker is new.
    local same=true
    while IFS= read -r jar; do
      cmp -s "$tmp/$jar" "$libs/$jar" || { same=false; break; }
    done <"$tmp/.complete"
    if $same; then
      cp "$tmp/.complete" "$libs/.complete"
      rm -rf "$tmp"
      return
    fi
    mv "$libs" "$libs.old.$$"
    mv "$tmp" "$libs"
    rm -rf "$libs.old.$$"
  else
    mv "$tmp" "$libs"
  fi
  say "$(wc -l <"$libs/.complete") jars in $libs"
}

# --- certificates ----------------------------------------------------------------------

# A CA, a broker certificate (SAN 127.0.0.1 and localhost) and a client certificate, all
# RSA with PKCS#8 keys in PEM: Kafka 4.1 reads PEM key stores, and so do librdkafka and
# rustls. Made once per clone.
kafka_make_pki() {
  [ -f "$kafka_pki/client.pem" ] && return 0
  local tmp="$kafka_pki.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  (
    cd "$tmp"
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -subj "/CN=kinflux test CA" -keyout ca.key -out ca.pem \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    kafka_leaf broker "/CN=localhost" "serverAuth,clientAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost"
    kafka_leaf client "/CN=kinflux-client" "clientAuth" ""
    cat broker.key broker.pem ca.pem >broker-keystore.pem
    rm -f ./*.csr
    chmod 600 ./*.key broker-keystore.pem
  ) >"$tmp.log" 2>&1 || {
    cat "$tmp.log" >&2
    die "openssl could not make the test certificates"
  }
  rm -f "$tmp.log"
  rm -rf "$kafka_pki"
  mv "$tmp" "$kafka_pki"
}

# kafka_leaf NAME SUBJECT EXTENDED_KEY_USAGE [EXTRA_EXTENSION]: NAME.key and NAME.pem,
# signed by ca.key, in the current directory.
kafka_leaf() {
  local name=$1 subject=$2 eku=$3 extra=$4
  openssl req -new -newkey rsa:2048 -nodes -subj "$subject" -keyout "$name.key" \
    -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [ -n "$extra" ] && echo "$extra"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -sha256 -days 3650 \
    -set_serial "0x$(openssl rand -hex 8)" -extfile "$name.ext" -out "$name.pem"
  rm -f "$name.ext"
}

# --- nodes -----------------------------------------------------------------------------

# One line per node of the configured mode: NAME DIR ID PORT_OFFSET.
kafka_node_list() {
  local n
  if [ "$kafka_nodes" = 1 ]; then
    echo "kafka $state/kafka/single 1 0"
  else
    for n in $(seq 1 "$kafka_nodes"); do
      echo "kafka-node$n $state/kafka/cluster/node$n $n $(((n - 1) * kafka_node_step))"
    done
  fi
}

# Every node either mode may have started (pid file names), so stop finds them all.
kafka_all_names() {
  echo kafka
  local pidfile
  for pidfile in "$state"/kafka-node*.pid; do
    [ -e "$pidfile" ] && basename "$pidfile" .pid
  done
  return 0
}

kafka_node_dir() {
  case "$1" in
    kafka) echo "$state/kafka/single" ;;
    kafka-node*) echo "$state/kafka/cluster/${1#kafka-}" ;;
  esac
}

# The command line a node runs, and what pid_alive looks for in it.
kafka_pattern() { echo "kafka.Kafka $1/server.properties"; }

# kafka_addresses PORT: the node addresses of one listener, comma-separated.
kafka_addresses() {
  local base=$1 offset out=""
  while read -r _ _ _ offset; do
    out="$out${out:+,}127.0.0.1:$((base + offset))"
  done < <(kafka_node_list)
  echo "$out"
}

kafka_voters() {
  local id offset out=""
  while read -r _ _ id offset; do
    out="$out${out:+,}$id@127.0.0.1:$((kafka_controller_port + offset))"
  done < <(kafka_node_list)
  echo "$out"
}

# kafka_write_config DIR ID OFFSET
kafka_write_config() {
  local dir=$1 id=$2 o=$3 rf=1 min_isr=1 jaas_plain jaas_scram l
  if [ "$kafka_nodes" != 1 ]; then
    rf=$((kafka_nodes < 3 ? kafka_nodes : 3))
    min_isr=$((rf - 1))
  fi
  local p=$((kafka_port + o)) c=$((kafka_controller_port + o)) s=$((kafka_ssl_port + o))
  local m=$((kafka_mtls_port + o)) sp=$((kafka_sasl_plaintext_port + o))
  local ss=$((kafka_sasl_ssl_port + o)) op=$((kafka_oauth_port + o))
  jaas_plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_$kafka_user=\"$kafka_password\";"
  jaas_scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  {
    cat <<PROPS
# Generated by kinflux's scripts/services; rewritten at each start.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(kafka_voters)
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$c,SSL://127.0.0.1:$s,MTLS://127.0.0.1:$m,SASL_PLAINTEXT://127.0.0.1:$sp,SASL_SSL://127.0.0.1:$ss,OAUTH://127.0.0.1:$op
advertised.listeners=PLAINTEXT://127.0.0.1:$p,SSL://127.0.0.1:$s,MTLS://127.0.0.1:$m,SASL_PLAINTEXT://127.0.0.1:$sp,SASL_SSL://127.0.0.1:$ss,OAUTH://127.0.0.1:$op
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,OAUTH:SASL_PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

num.partitions=1
auto.create.topics.enable=true
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
# Tests produce records with fixed, old timestamps: time-based retention would delete
# them mid-test (it looks at record times), so only size limits apply here.
log.retention.ms=-1

ssl.keystore.type=PEM
ssl.keystore.location=$kafka_pki/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$kafka_pki/ca.pem
ssl.client.auth=none
listener.name.mtls.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512

listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
# Kafka 4.1's default validator (DefaultJwtValidator built without a key resolver) only
# checks a token's form, not its signature, audience or issuer: name the broker's own. It
# is looked up without the mechanism prefix, hence listener.name.oauth.sasl.* here.
listener.name.oauth.sasl.oauthbearer.jwt.validator.class=org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator
listener.name.oauth.sasl.oauthbearer.jwks.endpoint.url=$oauth_url/jwks
listener.name.oauth.sasl.oauthbearer.expected.issuer=$oauth_url
listener.name.oauth.sasl.oauthbearer.expected.audience=kafka
PROPS
    for l in sasl_plaintext sasl_ssl; do
      echo "listener.name.$l.plain.sasl.jaas.config=$jaas_plain"
      echo "listener.name.$l.scram-sha-256.sasl.jaas.config=$jaas_scram"
      echo "listener.name.$l.scram-sha-512.sasl.jaas.config=$jaas_scram"
    done
  } >"$dir/server.properties"
}

kafka_write_broker_log4j() {
  cat >"$state/kafka/log4j2.properties" <<'LOG4J'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
LOG4J
}

# Format a node's storage once, with the SCRAM credentials of the SASL user.
kafka_format() {
  local dir=$1 cluster_id=$2
  [ -f "$dir/data/meta.properties" ] && return 0
  if ! KINFLUX_KAFKA_HOME="$kafka_home" KINFLUX_KAFKA_JAVA_OPTS="${kafka_jvm[*]}" \
    "$root/scripts/kafka-java" kafka.tools.StorageTool format \
    --config "$dir/server.properties" --cluster-id "$cluster_id" \
    --add-scram "SCRAM-SHA-256=[name=$kafka_user,password=$kafka_password]" \
    --add-scram "SCRAM-SHA-512=[name=$kafka_user,password=$kafka_password]" \
    >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    die "kafka.tools.StorageTool format failed for $dir"
  fi
}

kafka_cluster_id() {
  local file="$state/kafka/cluster-id.$kafka_nodes"
  if [ ! -f "$file" ]; then
    # A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, never starting
    # with '-' (the storage tool would take it for an option; Kafka's Uuid avoids it too).
    python3 -c '
import base64, os
while True:
    i = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not i.startswith("-"):
        print(i)
        break' >"$file"
  fi
  cat "$file"
}

# Each node answers an ApiVersions request itself on PLAINTEXT (a node killed a moment ago
# stays in the metadata until its session times out), and the metadata lists every node.
kafka_ready() {
  python3 - "$(kafka_addresses "$kafka_port")" <<'PY' 2>/dev/null
import socket, struct, sys
from confluent_kafka.admin import AdminClient
addresses = sys.argv[1].split(",")
client = b"kinflux-services"
# ApiVersions v0: size, api_key 18, api_version 0, correlation id, client id; empty body.
header = struct.pack(">hhih", 18, 0, 7, len(client)) + client
for address in addresses:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.settimeout(2)
        sock.sendall(struct.pack(">i", len(header)) + header)
        answer = b""
        while len(answer) < 10:
            chunk = sock.recv(4096)
            if not chunk:
                sys.exit(f"{address} closed the connection")
            answer += chunk
        _, correlation, error = struct.unpack(">iih", answer[:10])
        if correlation != 7 or error != 0:
            sys.exit(f"{address}: ApiVersions error {error}")
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
if len(admin.list_topics(timeout=2).brokers) < len(addresses):
    sys.exit("not every node is in the metadata yet")
PY
}

# The group coordinator answers: on a new cluster the first FindCoordinator creates
# __consumer_offsets, and until its partitions have leaders it answers
# COORDINATOR_NOT_AVAILABLE. Clients should retry that (librdkafka does); waiting here
# gives every test and the demo a broker whose groups work at once.
kafka_coordinator_ready() {
  python3 - "$(kafka_addresses "$kafka_port")" <<'PY'
import sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
group = "kinflux-services-ready"
admin.describe_consumer_groups([group], request_timeout=5)[group].result(timeout=10)
PY
}

kafka_all_alive() {
  local name dir
  while read -r name dir _ _; do
    pid_alive "$name" "$(kafka_pattern "$dir")" || return 1
  done < <(kafka_node_list)
}

# Nodes of the other mode hold the same ports: stop them first.
kafka_stop_other_mode() {
  local name wanted
  wanted=$(kafka_node_list | cut -d' ' -f1)
  for name in $(kafka_all_names); do
    if ! grep -qx "$name" <<<"$wanted" && [ -f "$state/$name.pid" ]; then
      kafka_stop_names "$name"
    fi
  done
}

kafka_check_nodes() {
  [[ $kafka_nodes =~ ^[1-9]$ ]] || die "KINFLUX_KAFKA_NODES must be a number from 1 to 9"
}

# kafka_ports_free OFFSET: no other process listens on a port this node needs (else the
# readiness check would talk to that process instead).
kafka_ports_free() {
  local port
  for port in "$kafka_port" "$kafka_controller_port" "$kafka_ssl_port" "$kafka_mtls_port" \
    "$kafka_sasl_plaintext_port" "$kafka_sasl_ssl_port" "$kafka_oauth_port"; do
    port=$((port + $1))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is already in use: choose other ports (KINFLUX_KAFKA_PORT, ...)"
    fi
  done
}

# --- the OAuth server of the OAUTH listener ---------------------------------------------

oauth_pattern() { echo "scripts/oauth-server --port $oauth_port"; }

oauth_ready() {
  python3 -c 'import json, sys, urllib.request
keys = json.load(urllib.request.urlopen(sys.argv[1] + "/jwks", timeout=2))["keys"]
sys.exit(0 if keys else 1)' "$oauth_url"
}

oauth_start() {
  if pid_alive kafka-oauth "$(oauth_pattern)" && oauth_ready 2>/dev/null; then return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$oauth_port") 2>/dev/null; then
    die "port $oauth_port is already in use: choose another (KINFLUX_OAUTH_PORT)"
  fi
  mkdir -p "$state/kafka/oauth"
  say "starting the OAuth server of Kafka's OAUTH listener on $oauth_url"
  nohup python3 "$root/scripts/oauth-server" --port "$oauth_port" --state "$state/kafka/oauth" \
    --client-id "$oauth_client_id" --client-secret "$oauth_client_secret" --quiet \
    >"$state/kafka/oauth/server.log" 2>&1 </dev/null &
  echo $! >"$state/kafka-oauth.pid"
  wait_until "the OAuth server" 30 "$state/kafka/oauth/server.log" oauth_ready
}

kafka_start() {
  kafka_check_nodes
  mkdir -p "$state/kafka"
  if kafka_all_alive && kafka_ready; then
    oauth_start
    return
  fi
  kafka_stop_other_mode
  kafka_make_pki
  kafka_write_broker_log4j
  local name dir id offset cluster_id
  # Every port first, so a clash stops the start before anything runs.
  while read -r name dir id offset; do
    pid_alive "$name" "$(kafka_pattern "$dir")" || kafka_ports_free "$offset"
  done < <(kafka_node_list)
  oauth_start
  cluster_id=$(kafka_cluster_id)
  while read -r name dir id offset; do
    pid_alive "$name" "$(kafka_pattern "$dir")" && continue
    kafka_ports_free "$offset"
    mkdir -p "$dir/data"
    kafka_write_config "$dir" "$id" "$offset"
    kafka_format "$dir" "$cluster_id"
    say "starting Apache Kafka $kafka_version node $id on 127.0.0.1:$((kafka_port + offset)) (data in $dir)"
    nohup java "${kafka_jvm[@]}" "${kafka_broker_jvm[@]}" \
      -Dlog4j2.configurationFile="$state/kafka/log4j2.properties" \
      -cp "$kafka_home/libs/*" kafka.Kafka "$dir/server.properties" \
      >"$dir/kafka.log" 2>&1 </dev/null &
    echo $! >"$state/$name.pid"
  done < <(kafka_node_list)
  kafka_wait 120
  wait_until "the Kafka group coordinator" 60 "$(kafka_node_list | head -n 1 | cut -d' ' -f2)/kafka.log" \
    kafka_coordinator_ready
}

# Wait for metadata; fail at once when a node exits (a port in use, a bad config).
kafka_wait() {
  local seconds=$1 deadline=$((SECONDS + $1)) name dir
  until kafka_ready; do
    while read -r name dir _ _; do
      if ! pid_alive "$name" "$(kafka_pattern "$dir")"; then
        say "Kafka $name exited; last lines of $dir/kafka.log:"
        tail -n 20 "$dir/kafka.log" >&2 || true
        kafka_stop
        exit 1
      fi
    done < <(kafka_node_list)
    if [ $SECONDS -ge $deadline ]; then
      say "Kafka did not answer metadata within ${seconds}s; last lines of the logs:"
      while read -r name dir _ _; do tail -n 10 "$dir/kafka.log" >&2 || true; done \
        < <(kafka_node_list)
      kafka_stop
      exit 1
    fi
    sleep 0.3
  done
}

# A process that has not exited (a zombie has: only its parent has not reaped it yet).
kafka_pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Stop nodes together, so that their controlled shutdowns meet a live controller quorum.
kafka_stop_names() {
  local name dir pid pids=()
  for name in "$@"; do
    dir=$(kafka_node_dir "$name")
    if pid_alive "$name" "$(kafka_pattern "$dir")"; then
      pid=$(cat "$state/$name.pid")
      say "stopping $name (pid $pid)"
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$state/$name.pid"
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  # A cluster's last node may wait forever for a controller quorum that is gone.
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while kafka_pid_running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kafka_pid_running "$pid"; then
      say "Kafka pid $pid did not stop within 20s; killing it"
      kill -9 "$pid" 2>/dev/null || true
      while kafka_pid_running "$pid"; do sleep 0.1; done
    fi
  done
}

kafka_stop() {
  # shellcheck disable=SC2046
  kafka_stop_names $(kafka_all_names)
  stop_one kafka-oauth "$(oauth_pattern)"
}

kafka_status() {
  kafka_check_nodes
  echo "KINFLUX_KAFKA_BROKERS=$(kafka_addresses "$kafka_port")"
  echo "KINFLUX_KAFKA_HOME=$kafka_home"
  echo "KINFLUX_KAFKA_SSL_BROKERS=$(kafka_addresses "$kafka_ssl_port")"
  echo "KINFLUX_KAFKA_MTLS_BROKERS=$(kafka_addresses "$kafka_mtls_port")"
  echo "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS=$(kafka_addresses "$kafka_sasl_plaintext_port")"
  echo "KINFLUX_KAFKA_SASL_SSL_BROKERS=$(kafka_addresses "$kafka_sasl_ssl_port")"
  echo "KINFLUX_KAFKA_CA_FILE=$kafka_pki/ca.pem"
  echo "KINFLUX_KAFKA_CLIENT_CERT=$kafka_pki/client.pem"
  echo "KINFLUX_KAFKA_CLIENT_KEY=$kafka_pki/client.key"
  echo "KINFLUX_KAFKA_SASL_USERNAME=$kafka_user"
  echo "KINFLUX_KAFKA_SASL_PASSWORD=$kafka_password"
  echo "KINFLUX_KAFKA_OAUTH_BROKERS=$(kafka_addresses "$kafka_oauth_port")"
  echo "KINFLUX_OAUTH_TOKEN_URL=$oauth_url/token"
  echo "KINFLUX_OAUTH_JWKS_URL=$oauth_url/jwks"
  echo "KINFLUX_OAUTH_CLIENT_ID=$oauth_client_id"
  echo "KINFLUX_OAUTH_CLIENT_SECRET=$oauth_client_secret"
  if [ "$kafka_nodes" != 1 ]; then
    echo "KINFLUX_KAFKA_CLUSTER_BROKERS=$(kafka_addresses "$kafka_port")"
  fi
  kafka_all_alive && kafka_ready && pid_alive kafka-oauth "$(oauth_pattern)"
}
