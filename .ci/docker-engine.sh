#!/usr/bin/env bash
# Starts and stops a Docker engine for CI and for the Docker tests.
#
#   .ci/docker-engine.sh start   # no-op when `docker info` already answers; otherwise starts
#                                # dockerd (Debian's docker.io, installed with apt-get when
#                                # missing) in the background and waits until it answers
#   .ci/docker-engine.sh stop    # stops the engine only if this script started it
#   .ci/docker-engine.sh status  # says whether an engine answers and who started it
#
# State lives in .work/docker-engine/ (git-ignored): dockerd.pid (the engine this script
# started) and dockerd.log (its log, printed in part when it fails to come up).
# Needs root (or sudo) to install and start the engine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.work/docker-engine"
pidfile="$state/dockerd.pid"
log="$state/dockerd.log"
wait_secs="${DOCKER_ENGINE_WAIT_SECS:-60}"

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

answers() {
    timeout 10 docker info >/dev/null 2>&1
}

# The pid in our pid file, when that process is still a dockerd.
our_pid() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "dockerd" ] || return 1
    echo "$pid"
}

start() {
    if answers; then
        echo "docker-engine: an engine already answers; nothing to start"
        return 0
    fi
    if our_pid >/dev/null; then
        echo "docker-engine: dockerd started earlier (pid $(our_pid)) does not answer yet; waiting"
    else
        if ! command -v dockerd >/dev/null 2>&1; then
            echo "docker-engine: dockerd not found; installing Debian's docker.io"
            sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
        fi
        if ! command -v docker >/dev/null 2>&1; then
            echo "docker-engine: the docker client is missing (package docker.io or docker-cli)" >&2
            return 1
        fi
        mkdir -p "$state"
        echo "docker-engine: starting dockerd (log: $log)"
        # setsid: the engine must not receive the Ctrl-C meant for the test run that started
        # it; it is stopped explicitly by `stop`.
        local -a prefix=()
        [ "$(id -u)" -eq 0 ] || prefix=(sudo -n)
        # A plain command in the background: $! is the pid that execs dockerd (setsid does not
        # fork when its caller does not lead a process group, as here).
        "${prefix[@]}" setsid dockerd >"$log" 2>&1 </dev/null &
        echo $! >"$pidfile"
        # With sudo, $! is sudo's pid; record dockerd's own pid once it exists.
        if [ "$(id -u)" -ne 0 ]; then
            sleep 1
            pgrep -n -x dockerd >"$pidfile" || true
        fi
    fi
    local waited=0
    local pid
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    until answers; do
        # Right after the fork the process is not yet named dockerd: only check it is alive.
        if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
            echo "docker-engine: dockerd exited before answering; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            rm -f "$pidfile"
            return 1
        fi
        if [ "$waited" -ge "$wait_secs" ]; then
            echo "docker-engine: dockerd did not answer within ${wait_secs}s; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "docker-engine: engine answers (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), after ${waited}s)"
}

stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$pidfile"
        echo "docker-engine: no engine started by this script; nothing to stop"
        return 0
    fi
    echo "docker-engine: stopping dockerd (pid $pid)"
    sudo_if_needed kill -TERM "$pid" || true
    local waited=0
    while [ -d "/proc/$pid" ] && [ "$waited" -lt 30 ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if [ -d "/proc/$pid" ]; then
        echo "docker-engine: dockerd still running after 30s; killing it" >&2
        sudo_if_needed kill -KILL "$pid" || true
    fi
    rm -f "$pidfile"
    echo "docker-engine: stopped"
}

status() {
    if answers; then echo "docker-engine: an engine answers"; else echo "docker-engine: no engine answers"; fi
    if pid="$(our_pid)"; then echo "docker-engine: started by this script (pid $pid)"; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
