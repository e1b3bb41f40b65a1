#!/usr/bin/env bash
# A real Apache Kafka broker (single node, KRaft) on 127.0.0.1, from Maven Central jars.
#
#   kafka.sh fetch            copy the broker jars into the cache (mvn), once
#   kafka.sh start            format storage once, start in the background, wait until ready
#   kafka.sh stop             controlled shutdown by pid (SIGTERM, then SIGKILL after 40 s)
#   kafka.sh status           running or not, exit 0 / 3
#   kafka.sh classpath        print the classpath (for Kafka's own perf tools)
#   kafka.sh cluster up|down|status|bootstrap|start N|stop N|kill N
#                             the local three-node cluster (cluster.sh says more)
#
# Secured (KAFKA_SECURITY=sasl_ssl; the state directory remembers it once formatted):
#   kafka.sh start            as above, with a generated CA and broker key, one SASL_SSL
#                             listener (SCRAM-SHA-256/512), ACLs enforced, SCRAM users
#                             broker + admin (super users), cityops and KAFKA_SCRAM_USERS
#   kafka.sh env [USER]       print `export CITYOPS_KAFKA_...` lines for USER (default cityops)
#   kafka.sh user USER        create USER on the running broker (its password: generated once)
#   kafka.sh rotate USER      give USER a new password on the running broker
#
# Environment (all optional):
#   KAFKA_PORT               client port, default 9092
#   KAFKA_CONTROLLER_PORT    controller port, default KAFKA_PORT + 1
#   KAFKA_STATE_DIR          data, log and pid files, default ~/.local/state/cityops/kafka-$KAFKA_PORT
#   CITYOPS_CACHE_DIR        jar cache, default ~/.cache/cityops (outside the work tree, reused)
#   KAFKA_HEAP               JVM heap, default 512m
#   KAFKA_READY_TIMEOUT      seconds to wait for the broker, default 90
#   KAFKA_SECURITY           plaintext (default) or sasl_ssl; fixed when storage is formatted
#   KAFKA_SCRAM_USERS        more SCRAM users created at format time (sasl_ssl), e.g. unit names
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
state_dir="${KAFKA_STATE_DIR:-$HOME/.local/state/cityops/kafka-$port}"
cache_dir="${CITYOPS_CACHE_DIR:-$HOME/.cache/cityops}"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
libs="$cache_dir/kafka/$version/libs"
heap="${KAFKA_HEAP:-512m}"
ready_timeout="${KAFKA_READY_TIMEOUT:-90}"
pid_file="$state_dir/kafka.pid"
log_file="$state_dir/server.log"

die() { echo "kafka.sh: $*" >&2; exit 1; }

require_java() {
  command -v java >/dev/null 2>&1 || die "Java 17+ is required (no 'java' on PATH; e.g. apt-get install openjdk-17-jre-headless)"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1)"
  [[ "$major" =~ ^[0-9]+$ ]] || die "could not read the Java version from 'java -version'"
  (( major >= 17 )) || die "Java 17+ is required, found Java $major"
}

fetch() {
  if [[ -f "$libs/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven is required to fetch the Kafka jars (no 'mvn' on PATH; e.g. apt-get install maven)"
  echo "kafka.sh: fetching Apache Kafka $version jars into $libs" >&2
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >&2 \
    || die "mvn could not fetch the Kafka jars (see the output above)"
  compgen -G "$libs/kafka_2.13-*.jar" >/dev/null || die "the fetched jars hold no kafka_2.13 broker jar"
  touch "$libs/.complete"
}

running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

probe() {
  python3 "$here/kafka_probe.py" "$@"
}

# The secured mode (KAFKA_SECURITY=sasl_ssl): its functions live beside this script.
# shellcheck source=secure.sh
source "$here/secure.sh"
# The three-node cluster: its functions live beside this script too.
# shellcheck source=cluster.sh
source "$here/cluster.sh"

start() {
  require_java
  if pid="$(running_pid)"; then
    echo "kafka.sh: already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if probe metadata "127.0.0.1:$port" --timeout 1 >/dev/null 2>&1; then
    die "port $port already answers as a Kafka broker that this script did not start (set KAFKA_PORT)"
  fi
  local mode format_args=()
  mode="$(security_mode)"
  fetch
  mkdir -p "$state_dir/data"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@LOG_DIR@|$state_dir/data|g" "$here/server.properties" > "$state_dir/server.properties"
  [[ "$mode" == plaintext ]] || secure_prepare  # sets format_args
  if [[ ! -f "$state_dir/cluster.id" ]]; then
    # Like Kafka's Uuid.randomUuid: never an id that starts with "-" (1 in 64 would, and
    # the format tool's option parser takes it for an option).
    python3 -c 'import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
    pass
print(cid)' > "$state_dir/cluster.id"
  fi
  local jvm=(java "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:TieredStopAtLevel=1
             -Djava.awt.headless=true "-Dkafka.logs.dir=$state_dir"
             "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$libs/*")
  # -g: formatting an already formatted directory is a no-op, so this runs every start.
  "${jvm[@]}" kafka.tools.StorageTool format -g --standalone --cluster-id="$(cat "$state_dir/cluster.id")" \
      -c "$state_dir/server.properties" "${format_args[@]}" >"$state_dir/format.log" 2>&1 \
    || die "formatting storage failed: $(tail -5 "$state_dir/format.log")"
  # The format log lists every SCRAM user's salted keys.
  [[ "$mode" == plaintext ]] || chmod 600 "$state_dir/format.log"
  local started=$SECONDS
  nohup "${jvm[@]}" kafka.Kafka "$state_dir/server.properties" >"$state_dir/stdout.log" 2>&1 &
  echo $! > "$pid_file"
  local ready probe_args
  mapfile -t probe_args < <(probe_security_args "$mode")
  if ! ready="$(probe ready "127.0.0.1:$port" --timeout "$ready_timeout" "${probe_args[@]}" 2>&1)"; then
    echo "kafka.sh: broker did not become ready: $ready" >&2
    tail -20 "$log_file" "$state_dir/stdout.log" >&2 2>/dev/null || true
    stop || true
    exit 1
  fi
  echo "kafka.sh: Apache Kafka $version ready on 127.0.0.1:$port after $((SECONDS - started))s (pid $(cat "$pid_file"), log $log_file)"
  if [[ "$mode" == sasl_ssl ]]; then
    echo "kafka.sh: SASL_SSL with ACLs; connect as the pipeline with: eval \"\$(KAFKA_STATE_DIR=$state_dir $0 env)\""
  fi
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka.sh: not running"
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 80); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pid_file"; echo "kafka.sh: stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  echo "kafka.sh: no controlled shutdown after 40 s, killing pid $pid" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "kafka.sh: running (pid $pid) on 127.0.0.1:$port, state in $state_dir"
    return 0
  fi
  echo "kafka.sh: not running (port $port)"
  return 3
}

case "${1:-}" in
  fetch) require_java; fetch; echo "$libs" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  classpath) fetch; echo "$libs/*" ;;
  cluster) shift; cluster_command "$@" ;;
  env) print_env "${2:-}" ;;
  user) [[ -n "${2:-}" ]] || die "usage: $0 user USER"; set_user "$2" no ;;
  rotate) [[ -n "${2:-}" ]] || die "usage: $0 rotate USER"; set_user "$2" yes ;;
  *) echo "usage: $0 {fetch|start|stop|status|classpath|cluster|env|user|rotate}" >&2; exit 2 ;;
esac
