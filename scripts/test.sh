#!/usr/bin/env bash
# The whole test suite, with its set-up: makes sure PostgreSQL (127.0.0.1:5432,
# trust auth, user postgres) and Mosquitto (127.0.0.1:1883) are running,
# installing them from Debian's packages when absent, socat for the
# serial-line tests and chromium with chromedriver for the console's, then
# runs the checks, every test of the workspace and Schemathesis against the
# HTTP API's OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
    echo "service on port $1 did not come up" >&2
    return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_postgres() {
    port_open 5432 && return 0
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
        # Tests connect over TCP as postgres without a password.
        for hba in /etc/postgresql/*/main/pg_hba.conf; do
            as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
        done
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    wait_port 5432
}

ensure_mosquitto() {
    port_open 1883 && return 0
    if ! command -v mosquitto >/dev/null; then
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
    fi
    as_root mkdir -p /run/mosquitto
    as_root chown mosquitto: /run/mosquitto 2>/dev/null || true
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
    wait_port 1883
}

# The serial-line tests run the gateway and the farm on a socat pty pair.
ensure_socat() {
    command -v socat >/dev/null && return 0
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq socat >/dev/null
}

# The operator console's tests drive Debian's chromium headless through
# chromedriver (WebDriver); a CJK font so that the screenshots show the
# Chinese pages as people see them.
ensure_chromium() {
    command -v chromium >/dev/null && command -v chromedriver >/dev/null &&
        [ -d /usr/share/fonts/truetype/wqy ] && return 0
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
}

ensure_postgres
ensure_mosquitto
ensure_socat
ensure_chromium

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets

# The HTTP API against its own OpenAPI document: Schemathesis on a gateway on
# the simulator, bounded to MAX_TIME (150 s); SCHEMATHESIS=0 skips it.
if [ "${SCHEMATHESIS:-1}" != 0 ]; then
    scripts/schemathesis.sh
    # And the TALQ gateway API against TALQ's own document, where the
    # consortium's files sit beside the checkout (they are not shipped here).
    if [ -f ../shared/talq/talq-api-gateway-2-7-1-online.json ]; then
        DOCUMENT=talq MAX_TIME=90 scripts/schemathesis.sh
    else
        echo "SKIPPED: TALQ Schemathesis run (no ../shared/talq/talq-api-gateway-2-7-1-online.json)"
    fi
fi
