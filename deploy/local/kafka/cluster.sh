# The local three-node cluster, sourced by kafka.sh (`kafka.sh cluster ...`): three KRaft
# nodes in combined mode (broker + controller, static voters) from the same jars, each
# with its own ports, data, log and pid file under one state directory.
# Uses kafka.sh's variables (here, libs, ready_timeout) and die/require_java/fetch/probe.
#
#   kafka.sh cluster up            format once, start the three nodes, wait until all serve
#   kafka.sh cluster down          controlled shutdown of every node
#   kafka.sh cluster status        each node running or not; exit 0 when all three run
#   kafka.sh cluster bootstrap     print the bootstrap servers (host:port,host:port,...)
#   kafka.sh cluster start N       start node N (1..3) and wait until it serves
#   kafka.sh cluster stop N        controlled shutdown of node N (SIGTERM)
#   kafka.sh cluster kill N        SIGKILL node N (a crash: no controlled shutdown)
#
# Environment (all optional):
#   KAFKA_CLUSTER_PORT        first port, default 9192: node N listens on PORT + 2(N-1) for
#                             clients and on the next port as a controller (6 ports)
#   KAFKA_CLUSTER_STATE_DIR   default ~/.local/state/cityops/kafka-cluster-$KAFKA_CLUSTER_PORT
#   KAFKA_CLUSTER_HEAP        JVM heap per node, default 384m

cluster_nodes=(1 2 3)
cluster_base="${KAFKA_CLUSTER_PORT:-9192}"
cluster_state="${KAFKA_CLUSTER_STATE_DIR:-$HOME/.local/state/cityops/kafka-cluster-$cluster_base}"
cluster_heap="${KAFKA_CLUSTER_HEAP:-384m}"

node_port() { echo $((cluster_base + 2 * ($1 - 1))); }
node_controller_port() { echo $((cluster_base + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$cluster_state/node-$1"; }

cluster_bootstrap() {
  local n out=()
  for n in "${cluster_nodes[@]}"; do out+=("127.0.0.1:$(node_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

check_node() {
  [[ "$1" =~ ^[123]$ ]] || die "cluster: node must be 1, 2 or 3, got '${1:-}'"
}

node_pid() {
  local pid_file
  pid_file="$(node_dir "$1")/kafka.pid"
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

node_jvm() {
  local dir
  dir="$(node_dir "$1")"
  echo java "-Xms$cluster_heap" "-Xmx$cluster_heap" -XX:+UseG1GC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true "-Dkafka.logs.dir=$dir" \
    "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$libs/*"
}

# Write node N's properties and format its storage (a no-op once formatted).
node_prepare() {
  local n="$1" dir voters="" m
  dir="$(node_dir "$n")"
  mkdir -p "$dir/data"
  for m in "${cluster_nodes[@]}"; do
    voters+="${voters:+,}$m@127.0.0.1:$(node_controller_port "$m")"
  done
  sed -e "s|@NODE_ID@|$n|g" -e "s|@PORT@|$(node_port "$n")|g" \
      -e "s|@CONTROLLER_PORT@|$(node_controller_port "$n")|g" -e "s|@VOTERS@|$voters|g" \
      -e "s|@LOG_DIR@|$dir/data|g" "$here/server-cluster.properties" > "$dir/server.properties"
  local jvm
  read -r -a jvm <<<"$(node_jvm "$n")"
  "${jvm[@]}" kafka.tools.StorageTool format -g --cluster-id="$(cat "$cluster_state/cluster.id")" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || die "cluster: formatting node $n failed: $(tail -5 "$dir/format.log")"
}

# Start node N in the background (no wait).
node_launch() {
  local n="$1" dir jvm
  dir="$(node_dir "$n")"
  if node_pid "$n" >/dev/null; then
    return 0
  fi
  if probe metadata "127.0.0.1:$(node_port "$n")" --timeout 1 >/dev/null 2>&1; then
    die "cluster: port $(node_port "$n") already answers as a Kafka broker this script did not start (set KAFKA_CLUSTER_PORT)"
  fi
  node_prepare "$n"
  read -r -a jvm <<<"$(node_jvm "$n")"
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
}

node_wait() {
  local n="$1" out
  if ! out="$(probe ready "127.0.0.1:$(node_port "$n")" --timeout "$ready_timeout" 2>&1)"; then
    echo "cluster: node $n did not become ready: $out" >&2
    tail -20 "$(node_dir "$n")/server.log" "$(node_dir "$n")/stdout.log" >&2 2>/dev/null || true
    return 1
  fi
}

cluster_init() {
  require_java
  fetch
  mkdir -p "$cluster_state"
  if [[ ! -f "$cluster_state/cluster.id" ]]; then
    python3 -c 'import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
    pass
print(cid)' > "$cluster_state/cluster.id"
  fi
}

cluster_up() {
  cluster_init
  local n started=$SECONDS pids=() failed=0
  # Formatting and JVM start-up take seconds each: the three nodes do it side by side.
  for n in "${cluster_nodes[@]}"; do node_launch "$n" & pids+=($!); done
  for n in "${pids[@]}"; do wait "$n" || failed=1; done
  ((failed == 0)) || { cluster_down; exit 1; }
  for n in "${cluster_nodes[@]}"; do
    node_wait "$n" || { cluster_down; exit 1; }
  done
  echo "kafka.sh: 3-node cluster ready on $(cluster_bootstrap) after $((SECONDS - started))s (state in $cluster_state)"
}

node_stop() {
  local n="$1" sig="${2:-TERM}" pid
  if ! pid="$(node_pid "$n")"; then
    rm -f "$(node_dir "$n")/kafka.pid"
    return 0
  fi
  kill -"$sig" "$pid"
  for _ in $(seq 1 80); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$(node_dir "$n")/kafka.pid"; echo "kafka.sh: node $n stopped (pid $pid, SIG$sig)"; return 0; }
    sleep 0.25
  done
  echo "kafka.sh: node $n: no controlled shutdown after 20 s, killing pid $pid" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(node_dir "$n")/kafka.pid"
}

cluster_down() {
  # All at once: a node shutting down alone waits for the others to take its leadership.
  local n pids=()
  for n in "${cluster_nodes[@]}"; do node_stop "$n" & pids+=($!); done
  wait "${pids[@]}"
}

cluster_status() {
  local n pid all=0
  for n in "${cluster_nodes[@]}"; do
    if pid="$(node_pid "$n")"; then
      echo "kafka.sh: node $n running (pid $pid) on 127.0.0.1:$(node_port "$n")"
    else
      echo "kafka.sh: node $n not running (port $(node_port "$n"))"
      all=3
    fi
  done
  return "$all"
}

cluster_command() {
  case "${1:-}" in
    up) cluster_up ;;
    down) cluster_down ;;
    status) cluster_status ;;
    bootstrap) cluster_bootstrap ;;
    start) check_node "${2:-}"; cluster_init; node_launch "$2"; node_wait "$2" && echo "kafka.sh: node $2 ready on 127.0.0.1:$(node_port "$2")" ;;
    stop) check_node "${2:-}"; node_stop "$2" TERM ;;
    kill) check_node "${2:-}"; node_stop "$2" KILL ;;
    *) echo "usage: kafka.sh cluster {up|down|status|bootstrap|start N|stop N|kill N}" >&2; exit 2 ;;
  esac
}
