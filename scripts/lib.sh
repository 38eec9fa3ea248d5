# Shared helpers of scripts/run and scripts/test: make sure what Tern and its
# tests need is installed and running, whatever the machine had before.

# Checked queries (sqlx::query!) build from the committed .sqlx/, never from
# whatever DATABASE_URL the environment has.
export SQLX_OFFLINE=true

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# PostgreSQL on 127.0.0.1:5432 accepting the postgres role without a password.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  local fresh=""
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    log "installing PostgreSQL"
    apt_install postgresql
    fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -n "$fresh" ]; then
    # Local development server: trust connections from loopback only.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 0.5
  done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

# A Debian package providing COMMAND.
ensure_command() {
  local command="$1" package="$2"
  command -v "$command" >/dev/null 2>&1 && return 0
  log "installing $package"
  apt_install "$package"
}

# swaks with STARTTLS (its TLS needs Perl's Net::SSLeay).
ensure_swaks() {
  ensure_command swaks swaks
  perl -MNet::SSLeay -e 1 2>/dev/null && return 0
  log "installing libnet-ssleay-perl (swaks --tls)"
  apt_install libnet-ssleay-perl libio-socket-ssl-perl
}

# rspamd (the spam scanner the inbound tests score with) answering on
# 127.0.0.1:11333. Its first start compiles its rules (a minute or two).
ensure_rspamd() {
  ensure_command rspamd rspamd
  if curl -sf -m 2 http://127.0.0.1:11333/ping >/dev/null 2>&1; then return 0; fi
  log "starting rspamd"
  mkdir -p /run/rspamd /var/lib/rspamd /var/log/rspamd
  chown _rspamd:_rspamd /run/rspamd /var/lib/rspamd /var/log/rspamd
  rspamd -u _rspamd -g _rspamd </dev/null >/dev/null 2>&1
  for _ in $(seq 1 240); do
    curl -sf -m 2 http://127.0.0.1:11333/ping >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "rspamd did not answer on 127.0.0.1:11333" >&2
  return 1
}

# .venv with the Python test peers (dkimpy, openapi-spec-validator).
ensure_python_venv() {
  local requirements="tests/support/requirements.txt"
  local stamp=".venv/.tern-requirements"
  if [ -x .venv/bin/python ] && cmp -s "$requirements" "$stamp"; then return 0; fi
  log "installing Python test peers into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

# sqlx-cli at the version of the sqlx crate, for `cargo sqlx prepare`.
SQLX_CLI_VERSION="0.9.0"
ensure_sqlx_cli() {
  if cargo sqlx --version 2>/dev/null | grep -q " $SQLX_CLI_VERSION\$"; then return 0; fi
  log "installing sqlx-cli $SQLX_CLI_VERSION"
  cargo install sqlx-cli --version "$SQLX_CLI_VERSION" --no-default-features --features postgres --quiet
}

# Checks that .sqlx/ (the offline data of the checked queries) matches the
# code and the migrations: prepares against a throwaway database.
check_sqlx_offline_data() {
  local base="${TERN_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
  local name="tern_prepare_$$"
  local status=0
  psql "$base/postgres" -q -c "CREATE DATABASE $name" >/dev/null
  sqlx migrate run --source migrations --database-url "$base/$name" >/dev/null &&
    DATABASE_URL="$base/$name" cargo sqlx prepare --check -- --all-targets || status=$?
  psql "$base/postgres" -q -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null
  if [ "$status" -ne 0 ]; then
    echo ".sqlx/ is out of date: run 'cargo sqlx prepare -- --all-targets' against a migrated database (see README)" >&2
  fi
  return "$status"
}

# Node.js >= 20.19 and npm (Vite 8 needs them), from Debian if absent.
ensure_node() {
  node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
      node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'
  }
  node_ok && return 0
  log "installing Node.js and npm"
  apt_install nodejs npm
  node_ok && return 0
  echo "the dashboard needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none));" \
    "install a newer one (e.g. from nodesource) and run again" >&2
  return 1
}

# web/node_modules as package-lock.json pins it (npm ci, only when the
# lock file changed since the last install).
ensure_web_packages() {
  ensure_node
  local stamp="web/node_modules/.tern-lock"
  if [ -d web/node_modules ] && cmp -s web/package-lock.json "$stamp"; then return 0; fi
  log "installing the dashboard's npm packages (npm ci)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  cp web/package-lock.json "$stamp"
}

# web/dist: the dashboard's built assets, which Tern serves at /.
build_web() {
  ensure_web_packages
  log "building the dashboard (web/dist)"
  (cd web && npm run --silent build)
}
