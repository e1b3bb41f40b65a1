# The secured single node, sourced by kafka.sh (KAFKA_SECURITY=sasl_ssl): a CA and the
# broker's certificate made with openssl, SCRAM users with generated passwords, the
# server-sasl_ssl.properties overlay, and the commands env, user and rotate. Everything
# secret stays in the state directory ($state_dir/secure, mode 0700), never in the tree.
# Uses kafka.sh's variables (here, port, controller_port, state_dir) and die/running_pid.

secure_dir="$state_dir/secure"
users_dir="$secure_dir/users"
scram_mechanisms=(SCRAM-SHA-256 SCRAM-SHA-512)

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
  local overlay plain="$state_dir/server.properties.plain"
  overlay="$(sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@SECURE_DIR@|$secure_dir|g" -e "s|@BROKER_PASSWORD@|$(password_of broker)|g" \
      "$here/server-sasl_ssl.properties")"
  mv "$state_dir/server.properties" "$plain"
  (umask 077 && {
    awk -F= 'NR == FNR { if ($0 !~ /^[[:space:]]*(#|$)/) replaced[$1] = 1; next } !($1 in replaced)' \
      <(echo "$overlay") "$plain"
    echo
    echo "$overlay"
  } > "$state_dir/server.properties")
  rm -f "$plain"
}

# Before formatting and starting: TLS material, the merged configuration, and (first
# start only) the SCRAM users for the format tool, in the caller's format_args.
secure_prepare() {
  scram_users >/dev/null  # a bad name stops here, not silently inside a substitution
  ensure_tls
  secure_properties
  mapfile -t format_args < <(scram_format_args)
  echo sasl_ssl > "$state_dir/security"
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
