#!/usr/bin/env bash
# A real Apache Kafka broker (single node, KRaft) on 127.0.0.1, from Maven Central jars.
#
#   kafka.sh fetch            copy the broker jars into the cache (mvn), once
#   kafka.sh start            format storage once, start in the background, wait until ready
#   kafka.sh stop             controlled shutdown by pid (SIGTERM, then SIGKILL after 40 s)
#   kafka.sh status           running or not, exit 0 / 3
#   kafka.sh classpath        print the classpath (for Kafka's own perf tools)
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
secure_dir="$state_dir/secure"
users_dir="$secure_dir/users"
scram_mechanisms=(SCRAM-SHA-256 SCRAM-SHA-512)

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

security_mode() {
  local recorded=plaintext wanted
  [[ -f "$state_dir/security" ]] && recorded="$(cat "$state_dir/security")"
  wanted="${KAFKA_SECURITY:-$recorded}"
  [[ "$wanted" == plaintext || "$wanted" == sasl_ssl ]] \
    || die "KAFKA_SECURITY: expected plaintext or sasl_ssl, got '$wanted'"
  if [[ "$wanted" != "$recorded" && -f "$state_dir/data/meta.properties" ]]; then
    die "$state_dir holds a $recorded broker; it cannot become $wanted (use another KAFKA_STATE_DIR)"
  fi
  echo "$wanted"
}

# The users created at format time: the broker's own, the admin (both super users), the
# pipeline, and whatever KAFKA_SCRAM_USERS names (space- or comma-separated).
scram_users() {
  local name
  for name in broker admin cityops ${KAFKA_SCRAM_USERS//,/ }; do
    [[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "SCRAM user name '$name': use letters, digits, . _ -"
    echo "$name"
  done
}

new_password() {
  python3 -c 'import secrets; print(secrets.token_urlsafe(24))'
}

password_of() {
  local file="$users_dir/$1.password"
  if [[ ! -s "$file" ]]; then
    (umask 077 && mkdir -p "$users_dir" && new_password > "$file")
  fi
  cat "$file"
}

# A CA and the broker's key and certificate (CN=broker, for 127.0.0.1 and localhost), made
# once with openssl into the state directory; the broker reads them as PEM.
ensure_tls() {
  [[ -f "$secure_dir/broker.keystore.pem" ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl is required for KAFKA_SECURITY=sasl_ssl (e.g. apt-get install openssl)"
  (
    umask 077 && mkdir -p "$secure_dir" && cd "$secure_dir"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=cityops local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out ca.pem
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out broker.key
    openssl req -new -key broker.key -subj "/CN=broker" -out broker.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      "authorityKeyIdentifier=keyid,issuer" "subjectKeyIdentifier=hash" > broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -sha256 -extfile broker.ext -out broker.pem
    cat broker.key broker.pem ca.pem > broker.keystore.pem
    chmod 644 ca.pem
  ) >"$state_dir/tls.log" 2>&1 || die "creating the CA and broker certificate failed: $(tail -5 "$state_dir/tls.log")"
}

# server.properties with the secured overlay's keys replacing the plain ones.
secure_properties() {
  local overlay
  overlay="$(sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@SECURE_DIR@|$secure_dir|g" -e "s|@BROKER_PASSWORD@|$(password_of broker)|g" \
      "$here/server-sasl_ssl.properties")"
  (umask 077 && {
    awk -F= 'NR == FNR { if ($0 !~ /^[[:space:]]*(#|$)/) replaced[$1] = 1; next } !($1 in replaced)' \
      <(echo "$overlay") "$state_dir/server.properties.plain"
    echo
    echo "$overlay"
  } > "$state_dir/server.properties")
  rm -f "$state_dir/server.properties.plain"
}

# --add-scram for every user, only when storage is not formatted yet (the passwords would
# otherwise show in the process list at every start for nothing).
scram_format_args() {
  [[ -f "$state_dir/data/meta.properties" ]] && return 0
  local name mechanism
  for name in $(scram_users); do
    for mechanism in "${scram_mechanisms[@]}"; do
      echo "--add-scram=$mechanism=[name=$name,password=$(password_of "$name")]"
    done
  done
}

probe_security_args() {
  [[ "$1" == sasl_ssl ]] || return 0
  printf '%s\n' --cafile "$secure_dir/ca.pem" --user admin --password-file "$users_dir/admin.password"
}

start() {
  require_java
  if pid="$(running_pid)"; then
    echo "kafka.sh: already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if probe metadata "127.0.0.1:$port" --timeout 1 >/dev/null 2>&1; then
    die "port $port already answers as a Kafka broker that this script did not start (set KAFKA_PORT)"
  fi
  local mode
  mode="$(security_mode)"
  fetch
  mkdir -p "$state_dir/data"
  local properties="$state_dir/server.properties"
  [[ "$mode" == plaintext ]] || properties+=".plain"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@LOG_DIR@|$state_dir/data|g" "$here/server.properties" > "$properties"
  local format_args=()
  if [[ "$mode" == sasl_ssl ]]; then
    ensure_tls
    secure_properties
    mapfile -t format_args < <(scram_format_args)
    echo sasl_ssl > "$state_dir/security"
  fi
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

require_secure() {
  [[ "$(cat "$state_dir/security" 2>/dev/null)" == sasl_ssl ]] \
    || die "$state_dir holds no secured broker (start one with KAFKA_SECURITY=sasl_ssl)"
}

print_env() {
  local user="${1:-cityops}"
  require_secure
  [[ -s "$users_dir/$user.password" ]] || die "no user $user in $state_dir (create it: $0 user $user)"
  printf 'export %s=%q\n' \
    CITYOPS_KAFKA_BOOTSTRAP_SERVERS "127.0.0.1:$port" \
    CITYOPS_KAFKA_SECURITY_PROTOCOL SASL_SSL \
    CITYOPS_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
    CITYOPS_KAFKA_USERNAME "$user" \
    CITYOPS_KAFKA_PASSWORD_FILE "$users_dir/$user.password" \
    CITYOPS_KAFKA_SSL_CAFILE "$secure_dir/ca.pem"
}

# Create a SCRAM user on the running broker, or give it a new password (rotate), as admin
# through the admin API (kafka_users.py: the password never shows on a command line). The
# password file changes only once the broker took the new password.
set_user() {
  local user="$1" rotate="$2"
  require_secure
  running_pid >/dev/null || die "not running: start the broker first"
  [[ "$user" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "SCRAM user name '$user': use letters, digits, . _ -"
  [[ "$user" != broker ]] || die "the broker's own password is fixed in its configuration"
  local file="$users_dir/$user.password"
  if [[ "$rotate" == yes || ! -s "$file" ]]; then
    (umask 077 && mkdir -p "$users_dir" && new_password > "$file.new")
  else
    (umask 077 && cp "$file" "$file.new")
  fi
  if ! python3 "$here/kafka_users.py" "127.0.0.1:$port" --cafile "$secure_dir/ca.pem" \
      --admin admin --admin-password-file "$users_dir/admin.password" \
      --user "$user" --password-file "$file.new"; then
    rm -f "$file.new"
    die "the broker did not take the password of $user (the old one still holds)"
  fi
  mv "$file.new" "$file"
  echo "kafka.sh: user $user is set; its password is in $file"
}

case "${1:-}" in
  fetch) require_java; fetch; echo "$libs" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  classpath) fetch; echo "$libs/*" ;;
  env) print_env "${2:-}" ;;
  user) [[ -n "${2:-}" ]] || die "usage: $0 user USER"; set_user "$2" no ;;
  rotate) [[ -n "${2:-}" ]] || die "usage: $0 rotate USER"; set_user "$2" yes ;;
  *) echo "usage: $0 {fetch|start|stop|status|classpath|env|user|rotate}" >&2; exit 2 ;;
esac
