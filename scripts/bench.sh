#!/usr/bin/env bash
# Regenerates docs/benchmarks.md: lamp-gateway vs the raw tokio-modbus client
# (lamp-bench, same run) and vs ThingsBoard IoT Gateway (scripts/bench-peer.sh).
# Env: ENDPOINTS=1000 SLCS=100 CYCLES=8 REPEAT=3 STORE=none MQTT=none PEER=1
#      END_TO_END="postgres://postgres@127.0.0.1:5432/lampgw_bench,mqtt://127.0.0.1:1883 sqlite,embedded"
#      (store,mqtt pairs, each one more lamp-bench run against the raw client; "" skips)
#      PEERS=/tmp/lamp-bench-peers (scratch outside the repo), CARGO_TARGET_DIR.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd); cd "$REPO"
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
cargo build --release --workspace --bins
"$BIN/lamp-bench" --endpoints "${ENDPOINTS:-1000}" --slcs-per-endpoint "${SLCS:-100}" \
  --cycles "${CYCLES:-8}" --repeat "${REPEAT:-3}" --store "${STORE:-none}" --mqtt "${MQTT:-none}" \
  > "$OUT/ours.json"
if [ "${PEER:-1}" = 1 ]; then
  BIN=$BIN scripts/bench-peer.sh > "$OUT/peer.json"
else
  echo '{}' > "$OUT/peer.json"
fi
E2E=()
for pair in ${END_TO_END-postgres://postgres@127.0.0.1:5432/lampgw_bench,mqtt://127.0.0.1:1883 sqlite,embedded}; do
  n=${#E2E[@]}
  "$BIN/lamp-bench" --endpoints "${ENDPOINTS:-1000}" --slcs-per-endpoint "${SLCS:-100}" \
    --cycles "${CYCLES:-8}" --store "${pair%%,*}" --mqtt "${pair#*,}" --topic-root "lamp-bench-e2e" \
    > "$OUT/e2e-$n.json"
  E2E+=("$OUT/e2e-$n.json")
done
python3 scripts/render-benchmarks.py "$OUT/ours.json" "$OUT/peer.json" "${E2E[@]}" > docs/benchmarks.md
# The hand-written notes live apart so regenerating keeps them.
{ echo; cat docs/benchmark-notes.md; } >> docs/benchmarks.md
echo "wrote docs/benchmarks.md"
