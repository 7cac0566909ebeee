#!/usr/bin/env bash
# Install (or upgrade) Enclave on one Debian host, as root, from this checkout:
#
#   deploy/single-host/install.sh [--database-url-file FILE] [--tls-cert FILE --tls-key FILE] ...
#
# It creates the system accounts `enclave` (the services, owner of the state) and `enclave-proxy`
# (the public TLS proxy), installs the package into a venv under /opt/enclave and the proxy from
# package.json, writes secrets (hub cookie secret, proxy token, one hub token per service) into
# 0600 files under /etc/enclave, a self-signed certificate unless one is given, the systemd units,
# runs `enclave init` (creating the home and migrating the PostgreSQL state database) and starts
# everything. Running it again upgrades the code and keeps every secret, certificate and local edit.
# See deploy/single-host/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [options]
  --database-url-file FILE  a 0600 file holding the state database URL
                            (postgresql+psycopg://USER:PASSWORD@HOST:5432/DB); without it, and with
                            none installed yet, a local PostgreSQL gets role and database "enclave"
                            with a random password
  --tls-cert FILE --tls-key FILE
                            the proxy's certificate (chain) and key; default: a self-signed one
  --hostname NAME           the name in the self-signed certificate (default: hostname -f)
  --ip ADDR --port N        where the proxy listens for browsers (default 0.0.0.0:443)
  --s3-url s3://BUCKET[/PREFIX] --s3-endpoint HOST[:PORT] --s3-credentials-file FILE [--s3-insecure]
                            the export outbox in an S3-compatible store; FILE is 0600 YAML with
                            access_key and secret_key (written to export-review.yaml's outbox)
  --wheels DIR              install Python packages from DIR only (no package index)
  --no-apt                  install no Debian packages (fail if python3-venv or node is missing)
  --no-start                write everything but start nothing (no systemd as PID 1: see
                            run-foreground.sh)
  -h, --help
EOF
}

SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$SOURCE/deploy/single-host
PREFIX=${ENCLAVE_PREFIX:-/opt/enclave}
ETC=${ENCLAVE_ETC:-/etc/enclave}
HOME_DIR=${ENCLAVE_HOME_DIR:-/var/lib/enclave}
HUB_STATE=${ENCLAVE_HUB_STATE_DIR:-/var/lib/enclave-hub}
UNIT_DIR=${ENCLAVE_UNIT_DIR:-/etc/systemd/system}
PUBLIC_IP=0.0.0.0
PUBLIC_PORT=443
SERVICES_IP=127.0.0.1  # the hub API and the services: loopback only (hub_config/firewall.py)
PROXY_API_PORT=8001
HUB_API_PORT=8081
GATEWAY_PORT=8101
EXPORT_PORT=8102
CONSOLE_PORT=8103
RUNS_PORT=8104
IDLE_TIMEOUT=600
DATABASE_URL_FILE=""
TLS_CERT="" TLS_KEY="" TLS_NAME=""
S3_URL="" S3_ENDPOINT="" S3_CREDENTIALS="" S3_SECURE=true
WHEELS="" APT=1 START=1

while [ $# -gt 0 ]; do
    case $1 in
        --database-url-file) DATABASE_URL_FILE=$2; shift ;;
        --tls-cert) TLS_CERT=$2; shift ;;
        --tls-key) TLS_KEY=$2; shift ;;
        --hostname) TLS_NAME=$2; shift ;;
        --ip) PUBLIC_IP=$2; shift ;;
        --port) PUBLIC_PORT=$2; shift ;;
        --s3-url) S3_URL=$2; shift ;;
        --s3-endpoint) S3_ENDPOINT=$2; shift ;;
        --s3-credentials-file) S3_CREDENTIALS=$2; shift ;;
        --s3-insecure) S3_SECURE=false ;;
        --wheels) WHEELS=$2; shift ;;
        --no-apt) APT=0 ;;
        --no-start) START=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -r /etc/debian_version ] || die "this installer is for Debian"
if [ -n "$TLS_CERT$TLS_KEY" ] && { [ -z "$TLS_CERT" ] || [ -z "$TLS_KEY" ]; }; then
    die "--tls-cert and --tls-key go together"
fi
if [ -n "$S3_URL$S3_ENDPOINT$S3_CREDENTIALS" ] && { [ -z "$S3_URL" ] || [ -z "$S3_ENDPOINT" ] || [ -z "$S3_CREDENTIALS" ]; }; then
    die "--s3-url, --s3-endpoint and --s3-credentials-file go together"
fi
# A secret handed to this script must already be private: refuse one others could have read.
private_file() {
    [ -f "$1" ] && [ ! -L "$1" ] || die "$1 is not a regular file"
    [ $((8#$(stat -c %a "$1") & 8#077)) = 0 ] || die "$1 is readable by others: chmod 600 $1 first"
}
[ -z "$DATABASE_URL_FILE" ] || private_file "$DATABASE_URL_FILE"
[ -z "$TLS_KEY" ] || private_file "$TLS_KEY"
[ -z "$S3_CREDENTIALS" ] || private_file "$S3_CREDENTIALS"
umask 077

say "Debian packages"
missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null || missing+=(nodejs)
[ -n "$DATABASE_URL_FILE" ] || [ -f "$ETC/secrets/database-url" ] || command -v psql >/dev/null \
    || missing+=(postgresql)
command -v docker >/dev/null || missing+=(docker.io)
command -v iptables >/dev/null || missing+=(iptables)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$APT" = 1 ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        for pkg in "${missing[@]}"; do
            case $pkg in
                docker.io | iptables) echo "warning: $pkg is not installed: workspaces cannot start" >&2 ;;
                *) die "$pkg is missing and --no-apt was given" ;;
            esac
        done
    fi
fi
NODE=$(command -v node)

say "Accounts and folders"
for account in enclave enclave-proxy; do
    id -u "$account" >/dev/null 2>&1 && continue
    home=/nonexistent
    [ "$account" = enclave ] && home=$HOME_DIR
    useradd --system --user-group --home-dir "$home" --no-create-home --shell /usr/sbin/nologin "$account"
done
# dir PATH MODE OWNER: create or tighten
dir() { install -d -m "$2" -o "${3%%:*}" -g "${3##*:}" "$1"; chmod "$2" "$1"; chown "$3" "$1"; }
dir "$PREFIX" 0755 root:root
dir "$PREFIX/libexec" 0755 root:root
dir "$PREFIX/share" 0755 root:root
dir "$PREFIX/proxy" 0755 root:root
dir "$ETC" 0755 root:root
dir "$ETC/hub" 0700 root:root
dir "$ETC/proxy" 0700 enclave-proxy:enclave-proxy
dir "$ETC/secrets" 0700 enclave:enclave
dir "$ETC/secrets/services" 0700 enclave:enclave
dir "$HOME_DIR" 0700 enclave:enclave
dir "$HUB_STATE" 0700 root:root

say "Python package into $PREFIX/venv"
umask 022  # the code is readable by the service accounts (and writable by root only)
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
# Build from a copy: the checkout may be read-only, and only the package's own files go in.
build=$(mktemp -d /tmp/enclave-install-XXXXXX)
trap 'rm -rf "$build"' EXIT
cp -a "$SOURCE/pyproject.toml" "$SOURCE/README.md" "$build/"
for package in enclave export_review hub_config; do
    cp -a "$SOURCE/$package" "$build/"
done
find "$build" -name __pycache__ -prune -exec rm -rf {} +
pip=("$PREFIX/venv/bin/python" -m pip --disable-pip-version-check -q)
if [ -n "$WHEELS" ]; then
    pip+=(--no-cache-dir)
    "${pip[@]}" install --no-index --find-links "$WHEELS" --upgrade "$build"
else
    "${pip[@]}" install --upgrade "$build"
fi
chmod -R go+rX,go-w "$PREFIX/venv"
install -m 0644 "$HERE/idle_culler.py" "$PREFIX/libexec/idle_culler.py"
install -m 0755 "$HERE/run-foreground.sh" "$PREFIX/libexec/run-foreground.sh"
install -m 0644 "$HERE/README.md" "$PREFIX/share/README.md"

say "configurable-http-proxy into $PREFIX/proxy"
install -m 0644 "$SOURCE/package.json" "$SOURCE/package-lock.json" "$HERE/proxy.js" "$PREFIX/proxy/"
wanted=$("$NODE" -p "require('$SOURCE/package.json').dependencies['configurable-http-proxy']")
have() { "$NODE" -p "require('$1/node_modules/configurable-http-proxy/package.json').version" 2>/dev/null; }
if [ "$(have "$PREFIX/proxy")" != "$wanted" ]; then
    if [ "$(have "$SOURCE")" = "$wanted" ]; then  # the checkout's own, from scripts/install-hub.sh
        rm -rf "$PREFIX/proxy/node_modules"
        cp -a "$SOURCE/node_modules" "$PREFIX/proxy/node_modules"
    else
        (cd "$PREFIX/proxy" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
    fi
fi
chown -R root:root "$PREFIX/proxy"
chmod -R go+rX,go-w "$PREFIX/proxy"
umask 077

say "Secrets in $ETC (0600)"
# secret FILE OWNER: a new random value unless the file exists; always its owner's alone.
secret() {
    [ -s "$1" ] || "$PREFIX/venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))' >"$1"
    chown "$2" "$1"
    chmod 600 "$1"
}
secret "$ETC/hub/cookie-secret" root:root
secret "$ETC/proxy/auth-token" enclave-proxy:enclave-proxy
for service in gateway export-review console runs idle-culler; do
    secret "$ETC/secrets/services/$service.token" enclave:enclave
done
secret "$ETC/secrets/services/export-review.cookie-secret" enclave:enclave  # reviewers stay logged in
secret "$ETC/secrets/services/console.cookie-secret" enclave:enclave  # so do stewards, applicants
secret "$ETC/secrets/services/runs.cookie-secret" enclave:enclave  # and analysts following runs
if [ -n "$DATABASE_URL_FILE" ]; then
    install -m 0600 -o enclave -g enclave "$DATABASE_URL_FILE" "$ETC/secrets/database-url"
elif [ ! -s "$ETC/secrets/database-url" ]; then
    echo "creating the local PostgreSQL role and database \"enclave\""
    command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl start postgresql
    password=$("$PREFIX/venv/bin/python" -c 'import secrets; print(secrets.token_hex(24))')
    # On stdin, never on a command line (other users see those in ps).
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<SQL
SELECT 'CREATE ROLE enclave LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'enclave') \gexec
ALTER ROLE enclave PASSWORD '$password';
SELECT 'CREATE DATABASE enclave OWNER enclave' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'enclave') \gexec
SQL
    printf 'postgresql+psycopg://enclave:%s@127.0.0.1:5432/enclave\n' "$password" >"$ETC/secrets/database-url"
    unset password
fi
chown enclave:enclave "$ETC/secrets/database-url"
chmod 600 "$ETC/secrets/database-url"
if [ -n "$S3_CREDENTIALS" ]; then
    install -m 0600 -o enclave -g enclave "$S3_CREDENTIALS" "$ETC/secrets/s3-credentials.yaml"
fi

say "TLS certificate for the proxy"
if [ -n "$TLS_CERT" ]; then
    install -m 0644 -o root -g root "$TLS_CERT" "$ETC/proxy/tls.crt"
    install -m 0600 -o enclave-proxy -g enclave-proxy "$TLS_KEY" "$ETC/proxy/tls.key"
elif [ ! -s "$ETC/proxy/tls.key" ] || [ ! -s "$ETC/proxy/tls.crt" ]; then
    name=${TLS_NAME:-$(hostname -f 2>/dev/null || hostname)}
    echo "self-signed certificate for $name (replace it: README.md)"
    "$PREFIX/venv/bin/python" - "$name" "$ETC/proxy/tls.key" "$ETC/proxy/tls.crt" <<'PY'
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

name, key_path, cert_path = sys.argv[1:]
key = ec.generate_private_key(ec.SECP256R1())
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
now = datetime.datetime.now(datetime.UTC)
names = [x509.DNSName(name), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
cert = (
    x509.CertificateBuilder()
    .subject_name(subject)
    .issuer_name(subject)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5))
    .not_valid_after(now + datetime.timedelta(days=397))
    .add_extension(x509.SubjectAlternativeName(names), critical=False)
    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    .sign(key, hashes.SHA256())
)
fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "wb") as out:
    out.write(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
with open(cert_path, "wb") as out:
    out.write(cert.public_bytes(serialization.Encoding.PEM))
PY
fi
chown enclave-proxy:enclave-proxy "$ETC/proxy/tls.key"
chmod 600 "$ETC/proxy/tls.key"
chmod 644 "$ETC/proxy/tls.crt"

say "Configuration and units"
[ -f "$ETC/jupyterhub_config.py" ] || install -m 0644 "$HERE/jupyterhub_config.py" "$ETC/jupyterhub_config.py"
if [ -n "$S3_URL" ] && [ ! -f "$HOME_DIR/export-review.yaml" ]; then
    cat >"$HOME_DIR/export-review.yaml" <<EOF
# Export review settings (README.md, "Export review"). Credentials are in the 0600 file named here.
stewards: []
outbox:
  url: $S3_URL
  endpoint: $S3_ENDPOINT
  secure: $S3_SECURE
  credentials_file: $ETC/secrets/s3-credentials.yaml
EOF
    chown enclave:enclave "$HOME_DIR/export-review.yaml"
    chmod 600 "$HOME_DIR/export-review.yaml"
fi
mkdir -p "$UNIT_DIR"
units=()
for template in "$HERE"/systemd/*.in; do
    unit=$(basename "$template" .in)
    units+=("$unit")
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@ETC@|$ETC|g" -e "s|@HOME@|$HOME_DIR|g" \
        -e "s|@HUB_STATE@|$HUB_STATE|g" -e "s|@NODE@|$NODE|g" -e "s|@PUBLIC_IP@|$PUBLIC_IP|g" \
        -e "s|@PUBLIC_PORT@|$PUBLIC_PORT|g" -e "s|@SERVICES_IP@|$SERVICES_IP|g" \
        -e "s|@PROXY_API_PORT@|$PROXY_API_PORT|g" -e "s|@HUB_API_PORT@|$HUB_API_PORT|g" \
        -e "s|@GATEWAY_PORT@|$GATEWAY_PORT|g" -e "s|@EXPORT_PORT@|$EXPORT_PORT|g" \
        -e "s|@CONSOLE_PORT@|$CONSOLE_PORT|g" -e "s|@RUNS_PORT@|$RUNS_PORT|g" \
        -e "s|@IDLE_TIMEOUT@|$IDLE_TIMEOUT|g" \
        "$template" >"$UNIT_DIR/$unit.tmp"
    chmod 0644 "$UNIT_DIR/$unit.tmp"
    mv "$UNIT_DIR/$unit.tmp" "$UNIT_DIR/$unit"
done
if grep -n '@[A-Z_]*@' "${units[@]/#/$UNIT_DIR/}"; then die "a unit template has an unknown placeholder"; fi

say "State: enclave init (the home, and the database's migrations)"
setpriv --reuid enclave --regid enclave --init-groups -- env -i PATH=/usr/bin:/bin HOME="$HOME_DIR" \
    ENCLAVE_HOME="$HOME_DIR" ENCLAVE_DATABASE_URL_FILE="$ETC/secrets/database-url" ENCLAVE_ACTOR=install \
    "$PREFIX/venv/bin/enclave" init

services=(enclave-proxy enclave-hub enclave-gateway enclave-export-review enclave-console enclave-runs
    enclave-idle-culler)
timers=(enclave-sweep.timer enclave-audit-verify.timer)
if [ "$START" = 1 ] && [ -d /run/systemd/system ]; then
    say "Starting the services"
    systemctl daemon-reload
    systemctl enable "${services[@]}" "${timers[@]}"
    systemctl restart "${services[@]}"
    systemctl start "${timers[@]}"
    systemctl --no-pager status "${services[@]}" | grep -E '^(●|\s+Active:)' || true
else
    say "Installed; nothing started"
    echo "with systemd: systemctl daemon-reload && systemctl enable --now ${services[*]} ${timers[*]}"
    echo "without it:   $PREFIX/libexec/run-foreground.sh start   (no sandboxing; for tests)"
fi
echo "hub: https://${TLS_NAME:-$(hostname -f 2>/dev/null || hostname)}:$PUBLIC_PORT/  (accounts: enclave user add NAME)"
