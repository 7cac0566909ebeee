#!/usr/bin/env bash
# The demo through the hub (`make demo`): Docker, the images, demo data and the demo project (the
# CLI steps of scripts/demo.sh: roles, the data-use application from filing to approval, the DUA, the
# project provisioned from it), local accounts with random passwords, then JupyterHub on 127.0.0.1 in
# the background (pid file demo/hub/jupyterhub.pid, log demo/hub/hub.log). `scripts/demo-hub.sh stop`
# (`make demo-stop`) stops it, and with it every workspace it started. Needs root (Docker, firewall).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export ENCLAVE_HOME=${ENCLAVE_HOME:-$PWD/demo/home}
STATE=$PWD/demo/hub
PORT=${ENCLAVE_HUB_PORT:-8000}
URL="http://127.0.0.1:$PORT"
ANALYSTS=(alice bob)
REVIEWERS=(carol dave erin)
STEWARD=sam
# The governance staff of scripts/demo.sh: the Office, the security administrator, the auditor (the
# reviewers are the committee, the steward is the steward); they work in the console.
STAFF=(olivia sean audrey)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_hub() {
    [ -f "$STATE/jupyterhub.pid" ] || return 0
    local pid
    pid=$(cat "$STATE/jupyterhub.pid")
    if kill -0 "$pid" 2>/dev/null; then
        echo "stopping the hub (pid $pid) and its workspaces"
        kill -TERM "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$STATE/jupyterhub.pid"
}

if [ "${1:-}" = stop ]; then
    stop_hub
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "demo-hub needs root (Docker networks and the host firewall)" >&2; exit 1; }
stop_hub

step "Docker and the workspace images / Docker 与镜像"
bash scripts/docker/start-dockerd.sh
VENV=$VENV bash images/build.sh
[ -x node_modules/.bin/configurable-http-proxy ] || command -v configurable-http-proxy >/dev/null \
    || bash scripts/install-hub.sh

DEMO_SETUP_ONLY=1 VENV=$VENV bash scripts/demo.sh

step "The steward releases approved exports / 数据管理员"
printf 'stewards: [%s]\n' "$STEWARD" >"$ENCLAVE_HOME/export-review.yaml"
cat "$ENCLAVE_HOME/export-review.yaml"

step "Local accounts with random passwords / 本地账户"
rm -rf "$STATE"
mkdir -p "$STATE"
chmod 700 "$STATE"
passwords=$STATE/passwords.txt
: >"$passwords"
chmod 600 "$passwords"
for name in "${ANALYSTS[@]}" "${REVIEWERS[@]}" "$STEWARD" "${STAFF[@]}"; do
    # 20 random characters, drawn again until lower case, upper case and digits all occur (the policy)
    password=$("$VENV/bin/python" -c 'import secrets, string
p = ""
while not all(set(p) & set(c) for c in (string.ascii_lowercase, string.ascii_uppercase, string.digits)):
    p = secrets.token_urlsafe(15)
print(p)')
    printf '%s\n' "$password" | ENCLAVE_ACTOR=steward "$VENV/bin/enclave" user add --no-forced-change "$name"
    printf '%-6s %s\n' "$name" "$password" >>"$passwords"
done
(umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))' >"$STATE/check-token")

step "Start JupyterHub on $URL / 启动 JupyterHub"
export PATH="$PWD/node_modules/.bin:$PWD/$VENV/bin:$PATH"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ENCLAVE_HUB_STATE=$STATE
export ENCLAVE_DEMO_CHECK_TOKEN_FILE=$STATE/check-token
export ENCLAVE_DEMO_REVIEWERS=$(IFS=,; echo "${REVIEWERS[*]}")
export ENCLAVE_DEMO_STEWARDS=$STEWARD
(cd "$STATE" && exec setsid "$OLDPWD/$VENV/bin/jupyterhub" -f "$OLDPWD/scripts/demo_hub_config.py" \
    >"$STATE/hub.log" 2>&1) &
echo $! >"$STATE/jupyterhub.pid"
for _ in $(seq 1 90); do
    if ! kill -0 "$(cat "$STATE/jupyterhub.pid")" 2>/dev/null; then
        echo "the hub exited; its log:" >&2
        tail -n 40 "$STATE/hub.log" >&2
        exit 1
    fi
    curl -fsS -o /dev/null "$URL/hub/api/" 2>/dev/null && break
    sleep 1
done
curl -fsS -o /dev/null "$URL/hub/api/" || { tail -n 40 "$STATE/hub.log" >&2; exit 1; }
# The hub API and the services listen on loopback only (hub_config/jupyterhub_config.py, "Bind
# addresses"); workspaces reach them through the firewall's forwarding from their network's gateway.
for port in "${ENCLAVE_HUB_API_PORT:-8081}" "${ENCLAVE_GATEWAY_PORT:-8101}" "${ENCLAVE_EXPORT_REVIEW_PORT:-8102}"; do
    beyond=$(ss -Hltn "sport = :$port" | awk '{print $4}' | grep -v '^127\.0\.0\.1:' || true)
    [ -z "$beyond" ] || { echo "port $port listens beyond loopback: $beyond" >&2; stop_hub; exit 1; }
done

step "The hub is up / 平台已启动"
echo "URL:       $URL   (log: $STATE/hub.log; stop: make demo-stop)"
echo "hub API, gateway, export review: 127.0.0.1 only / 仅监听 127.0.0.1 (workspaces: their network's gateway)"
echo "analysts:  ${ANALYSTS[*]}  (start the server named demo-cardio)"
echo "committee: ${REVIEWERS[*]}   steward: $STEWARD   (export review: $URL/services/export-review/)"
echo "office: ${STAFF[0]}   security admin: ${STAFF[1]}   auditor: ${STAFF[2]}   (console: $URL/services/console/)"
echo "passwords (also in $passwords):"
cat "$passwords"
