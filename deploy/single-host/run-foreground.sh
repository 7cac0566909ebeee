#!/usr/bin/env bash
# Start or stop the installed Enclave services without systemd (a container, a test), from the
# same unit files systemd would read: each unit's User=, Group=, WorkingDirectory=, UMask=,
# Environment= and ExecStart= lines. The environment is exactly the unit's (plus systemd's PATH),
# as under systemd. The sandboxing directives (ProtectSystem=, CapabilityBoundingSet=, ...) are not
# applied: use systemd in production.
#
#   run-foreground.sh start | stop | status
#
# Logs and pid files go to $ENCLAVE_RUN_DIR (default /run/enclave-foreground, 0700).
set -euo pipefail
UNIT_DIR=${ENCLAVE_UNIT_DIR:-/etc/systemd/system}
RUN_DIR=${ENCLAVE_RUN_DIR:-/run/enclave-foreground}
SERVICES=(enclave-proxy enclave-hub enclave-gateway enclave-export-review enclave-console enclave-runs
    enclave-idle-culler)
SYSTEMD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The value of KEY= in the [Service] section of a unit (the last one; all of them with --all).
unit_values() {
    local file=$1 key=$2
    awk -v key="$key" '
        /^\[/ { section = $0; next }
        section == "[Service]" && index($0, key "=") == 1 { print substr($0, length(key) + 2) }
    ' "$file"
}

start_unit() {
    local name=$1 file=$UNIT_DIR/$1.service
    [ -f "$file" ] || { echo "no unit $file" >&2; return 1; }
    if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
        echo "$name is running"
        return 0
    fi
    local user group workdir umask_value
    user=$(unit_values "$file" User | tail -n 1)
    group=$(unit_values "$file" Group | tail -n 1)
    workdir=$(unit_values "$file" WorkingDirectory | tail -n 1)
    umask_value=$(unit_values "$file" UMask | tail -n 1)
    local -a environment command
    mapfile -t environment < <(unit_values "$file" Environment)
    read -ra command <<<"$(unit_values "$file" ExecStart | tail -n 1)"
    [ ${#command[@]} -gt 0 ] || { echo "$file has no ExecStart=" >&2; return 1; }
    local -a become=()
    if [ -n "$user" ] && [ "$user" != root ]; then
        become=(setpriv --reuid "$user" --regid "${group:-$user}" --init-groups --)
    fi
    (
        cd "${workdir:-/}"
        umask "${umask_value:-0022}"
        exec setsid "${become[@]}" env -i PATH="$SYSTEMD_PATH" LANG=C.UTF-8 "${environment[@]}" \
            "${command[@]}" </dev/null >>"$RUN_DIR/$name.log" 2>&1
    ) &
    echo $! >"$RUN_DIR/$name.pid"
    echo "$name started (pid $!, log $RUN_DIR/$name.log)"
}

# Wait until the address in the unit's "# enclave-ready: HOST:PORT" line accepts connections.
wait_ready() {
    local name=$1 address
    address=$(sed -n 's/^# enclave-ready: //p' "$UNIT_DIR/$name.service")
    [ -n "$address" ] || return 0
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/${address%:*}/${address##*:}") 2>/dev/null; then
            return 0
        fi
        kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || break
        sleep 0.5
    done
    echo "$name did not come up on $address; its log:" >&2
    tail -n 30 "$RUN_DIR/$name.log" >&2
    return 1
}

stop_unit() {
    local name=$1 pid
    [ -f "$RUN_DIR/$name.pid" ] || return 0
    pid=$(cat "$RUN_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        echo "$name stopped"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

case ${1:-} in
    start)
        [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
        install -d -m 0700 "$RUN_DIR"
        for name in "${SERVICES[@]}"; do
            start_unit "$name"
            wait_ready "$name"
        done
        ;;
    stop)
        for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_unit "${SERVICES[i]}"; done
        ;;
    status)
        for name in "${SERVICES[@]}"; do
            if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
                echo "$name running (pid $(cat "$RUN_DIR/$name.pid"))"
            else
                echo "$name stopped"
            fi
        done
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
