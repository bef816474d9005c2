#!/usr/bin/env bash
# The peer: ThingsBoard IoT Gateway 3.8.5 (Modbus connector -> MQTT) polling the
# same lamp-sim farm and the same register fields as lamp-gateway, for a bounded
# time, against a private Mosquitto. Prints one JSON line (values/s at the broker).
#
# Follows shared/peers/thingsboard/RECIPE.md: never the stock thingsboard-gateway
# entry point (it calls an outside update service) - scripts/peer/run_tbgw.py
# switches that off; fake_tb_limits.py answers the getSessionLimits RPC without
# which 3.8.x publishes nothing; everything on 127.0.0.1; every process bounded
# in time and stopped by PID.
#
# Env knobs (defaults): PEERS (scratch folder outside the repo, /tmp/lamp-bench-peers)
#   ENDPOINTS=10 SLCS=100 PROFILE=slc-a-unit POLL_MS=1000 WARMUP=30 WINDOW=60
#   MQTT_PORT=18830 BASE_PORT=15120 CONTROL_PORT=15119 BIN=target/release
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-/tmp/lamp-bench-peers}
case "$(cd "$(dirname "$PEERS")" 2>/dev/null && pwd)/" in "$REPO"/*) echo "PEERS must be outside the repository" >&2; exit 2;; esac
ENDPOINTS=${ENDPOINTS:-10}; SLCS=${SLCS:-100}; PROFILE=${PROFILE:-slc-a-unit}
POLL_MS=${POLL_MS:-1000}; WARMUP=${WARMUP:-30}; WINDOW=${WINDOW:-60}
MQTT_PORT=${MQTT_PORT:-18830}; BASE_PORT=${BASE_PORT:-15120}; CONTROL_PORT=${CONTROL_PORT:-15119}
BIN=${BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release}
TB_VERSION=3.8.5
mkdir -p "$PEERS"; PEERS=$(cd "$PEERS" && pwd)

# 1. Install once: the peer in its own venv with the pymodbus it pins (else it
#    pip-installs at load time), and paho-mqtt for the counter.
if [ ! -x "$PEERS/venv-tb/bin/python" ] || ! "$PEERS/venv-tb/bin/pip" show thingsboard-gateway 2>/dev/null | grep -q "^Version: $TB_VERSION"; then
  python3 -m venv "$PEERS/venv-tb"
  "$PEERS/venv-tb/bin/pip" install -q -U pip
  "$PEERS/venv-tb/bin/pip" install -q "thingsboard-gateway==$TB_VERSION" "pymodbus==3.9.2" pyserial pyserial-asyncio
fi
if [ ! -x "$PEERS/venv/bin/python" ] || ! "$PEERS/venv/bin/python" -c "import paho.mqtt" 2>/dev/null; then
  python3 -m venv "$PEERS/venv"
  "$PEERS/venv/bin/pip" install -q "paho-mqtt==2.2.0"
fi
[ -x "$BIN/lamp-sim" ] && [ -x "$BIN/lamp-bench" ] || { echo "build first: cargo build --release --workspace" >&2; exit 2; }

NAME=tb_${ENDPOINTS}x${SLCS}_${PROFILE}_${POLL_MS}ms
RUN=$PEERS/runs/$NAME; rm -rf "$RUN"; mkdir -p "$RUN/config" "$RUN/mosq"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
TOTAL=$(( WARMUP + WINDOW + 20 ))

# 2. A private broker on its own port (the recipe's settings: queues big enough).
cat > "$RUN/mosq/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 100000
log_dest stdout
log_type error
log_type warning
CONF
mosquitto -c "$RUN/mosq/mosquitto.conf" > "$RUN/mosq/mosquitto.log" 2>&1 & MOSQ=$!; PIDS+=($MOSQ)

# 3. The same simulator lamp-gateway is measured on, and its inventory.
"$BIN/lamp-sim" --endpoints "$ENDPOINTS" --slcs-per-endpoint "$SLCS" --profile "$PROFILE" \
   --base-port "$BASE_PORT" --control-port "$CONTROL_PORT" --failure-rate-per-hour 0 \
   --emit-inventory "$RUN/inventory" > "$RUN/sim.log" 2>&1 & SIM=$!; PIDS+=($SIM)
for _ in $(seq 100); do grep -q "ready" "$RUN/sim.log" 2>/dev/null && break; sleep 0.1; done

# 4. The peer's config: modbus.json from our poll plan (every field of every SLC,
#    with its type, word order and scale), the packaged tb_gateway.json with
#    the recipe's changes (broker, QoS 1, memory storage, no remote features).
"$BIN/lamp-bench" tb-config --inventory "$RUN/inventory" --poll-ms "$POLL_MS" --out "$RUN/config/modbus.json"
"$PEERS/venv-tb/bin/python" - "$RUN/config" "$MQTT_PORT" <<'PY'
import json, os, sys, thingsboard_gateway
out, port = sys.argv[1], int(sys.argv[2])
pkg = os.path.join(os.path.dirname(thingsboard_gateway.__file__), "config")
json.dump(json.load(open(os.path.join(pkg, "logs.json"))), open(os.path.join(out, "logs.json"), "w"), indent=2)
gw = json.load(open(os.path.join(pkg, "tb_gateway.json")))
gw["thingsboard"].update({"host": "127.0.0.1", "port": port, "remoteShell": False,
    "remoteConfiguration": False, "qos": 1,
    "security": {"type": "accessToken", "accessToken": "bench-gw-token"}})
gw["thingsboard"]["statistics"]["enable"] = False
gw["storage"] = {"type": "memory", "read_records_count": 100, "max_records_count": 100000}
gw["connectors"] = [{"type": "modbus", "name": "Modbus Bench", "configuration": "modbus.json"}]
json.dump(gw, open(os.path.join(out, "tb_gateway.json"), "w"), indent=2)
PY
FIELDS=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['master']['slaves']; print(len(s[0]['timeseries']), len(s))" "$RUN/config/modbus.json")
read -r FIELDS_PER_DEVICE DEVICES <<< "$FIELDS"

# 5. Run it: limits stand-in first, then the gateway (update check off, no
#    outside proxy reachable), then the counter on '#'.
"$PEERS/venv/bin/python" "$REPO/scripts/peer/fake_tb_limits.py" --port "$MQTT_PORT" --duration $(( TOTAL + 10 )) > "$RUN/fake_tb.log" 2>&1 & FAKE=$!; PIDS+=($FAKE)
sleep 1
( cd "$RUN" && HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
  TB_GW_CONFIG_DIR=$RUN/config exec timeout -s INT $TOTAL "$PEERS/venv-tb/bin/python" "$REPO/scripts/peer/run_tbgw.py" > "$RUN/gw.out" 2>&1 ) & GWT=$!; PIDS+=($GWT)
sleep 1
GWPID=$(pgrep -P $GWT -f run_tbgw.py | head -1 || true)
[ -n "$GWPID" ] || GWPID=$(pgrep -P $GWT | head -1)
PIDS+=($GWPID)
"$PEERS/venv/bin/python" "$REPO/scripts/peer/mqtt_counter.py" --port "$MQTT_PORT" --warmup "$WARMUP" --duration "$WINDOW" --label "$NAME" > "$RUN/counter.txt" 2>&1 & CNT=$!; PIDS+=($CNT)
cpu() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
reqs() { curl -s "http://127.0.0.1:$CONTROL_PORT/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['request_count'])"; }
sleep "$WARMUP"; G1=$(cpu $GWPID); R1=$(reqs); T1=$(date +%s.%N)
sleep "$WINDOW"; G2=$(cpu $GWPID); R2=$(reqs); T2=$(date +%s.%N)
RSS=$(awk '/VmHWM/{print $2}' /proc/$GWPID/status 2>/dev/null || echo 0)
wait $CNT || true
kill -INT $GWPID 2>/dev/null || true; sleep 3
VERSIONS=$("$PEERS/venv-tb/bin/pip" freeze 2>/dev/null | grep -iE "^(thingsboard-gateway|pymodbus|tb-paho-mqtt-client|tb-mqtt-client)==" | tr '\n' ' ')
MOSQV=$(mosquitto -h 2>/dev/null | head -1 || true)
python3 - "$RUN/counter.txt" "$G1" "$G2" "$R1" "$R2" "$T1" "$T2" "$RSS" "$DEVICES" "$FIELDS_PER_DEVICE" \
   "$POLL_MS" "$ENDPOINTS" "$SLCS" "$PROFILE" "$VERSIONS" "$MOSQV" "$RUN" <<'PY'
import json, re, sys
(counter, g1, g2, r1, r2, t1, t2, rss, devices, fields, poll, eps, slcs, profile, versions, mosq, run) = sys.argv[1:]
text = open(counter).read()
m = re.search(r"RESULT .*?window=([\d.]+)s .*?device_samples=(\d+) samples/s=([\d.]+) values=(\d+) values/s=([\d.]+) distinct_devices=(\d+)", text)
el = float(t2) - float(t1)
out = {
    "peer": "ThingsBoard IoT Gateway (Modbus connector -> MQTT)",
    "versions": versions.strip(), "broker": mosq.strip(),
    "endpoints": int(eps), "slcs_per_endpoint": int(slcs), "profile": profile,
    "devices": int(devices), "fields_per_device": int(fields), "poll_ms": int(poll),
    "window_seconds": float(m.group(1)) if m else None,
    "device_samples_per_second": float(m.group(3)) if m else None,
    "values_per_second": float(m.group(5)) if m else None,
    "distinct_devices_seen": int(m.group(6)) if m else None,
    "simulator_reads_per_second": round((int(r2) - int(r1)) / el, 1),
    "gateway_cpu_percent": round(100 * (float(g2) - float(g1)) / 100 / el, 1),
    "gateway_peak_rss_mib": round(int(rss) / 1024, 1),
    "run_dir": run,
}
print(json.dumps(out))
PY
