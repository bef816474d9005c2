#!/usr/bin/env python3
# Copied unchanged (below this line) from the team's peer recipe, shared/peers/thingsboard/sim/mqtt_counter.py.
"""Count what arrives at the loopback broker: messages per topic, and for ThingsBoard gateway
telemetry (v1/gateway/telemetry: {"dev": [{"ts":..,"values":{..}}]}) the device-samples and values.
Waits --warmup s, then counts for --duration s, prints one summary line (and per-10 s lines)."""
import argparse, json, time, threading, collections
import paho.mqtt.client as mqtt

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1"); p.add_argument("--port", type=int, default=18830)
p.add_argument("--topic", default="#"); p.add_argument("--warmup", type=float, default=0)
p.add_argument("--duration", type=float, default=60); p.add_argument("--label", default="")
p.add_argument("--track-unique", action="store_true", help="also count distinct (device, ts) samples and duplicates")
p.add_argument("--dump", default="", help="with --track-unique: write the distinct (device ts_ms) pairs to this file")
a = p.parse_args()
assert a.host.startswith("127.")

lock = threading.Lock()
st = dict(msgs=0, bytes=0, samples=0, values=0, bad=0)
topics = collections.Counter(); devices = set(); seen = set(); dups = [0]
counting = False

def on_message(c, u, m):
    if not counting:
        return
    with lock:
        st["msgs"] += 1; st["bytes"] += len(m.payload); topics[m.topic] += 1
        if m.topic == "v1/gateway/telemetry":
            try:
                d = json.loads(m.payload)
                for dev, arr in d.items():
                    devices.add(dev)
                    if isinstance(arr, dict):
                        arr = [arr]
                    for s in arr:
                        st["samples"] += 1
                        if a.track_unique and isinstance(s, dict):
                            k = (dev, s.get("ts"))
                            if k in seen:
                                dups[0] += 1
                            else:
                                seen.add(k)
                        vals = s.get("values", s) if isinstance(s, dict) else {}
                        st["values"] += len(vals)
            except Exception:
                st["bad"] += 1

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-counter")
c.on_message = on_message
c.on_connect = lambda cl, u, f, rc, pr: cl.subscribe(a.topic, qos=0)   # (re)subscribe on every (re)connect
c.reconnect_delay_set(1, 2)
c.connect(a.host, a.port, 60)
c.loop_start()
time.sleep(a.warmup)
counting = True
t0 = time.monotonic(); last = dict(st); lt = t0
while time.monotonic() - t0 < a.duration:
    time.sleep(min(10, a.duration - (time.monotonic() - t0)))
    with lock:
        now = time.monotonic(); cur = dict(st)
    dt = now - lt
    print(f"  +{now-t0:5.1f}s msgs/s={(cur['msgs']-last['msgs'])/dt:.1f} samples/s={(cur['samples']-last['samples'])/dt:.1f} values/s={(cur['values']-last['values'])/dt:.1f}", flush=True)
    last, lt = cur, now
counting = False
el = time.monotonic() - t0
c.loop_stop(); c.disconnect()
print(f"RESULT {a.label} window={el:.1f}s msgs={st['msgs']} msgs/s={st['msgs']/el:.1f} "
      f"device_samples={st['samples']} samples/s={st['samples']/el:.1f} values={st['values']} values/s={st['values']/el:.1f} "
      f"distinct_devices={len(devices)} bytes/s={st['bytes']/el:.0f} bad={st['bad']}")
if a.track_unique:
    print(f"UNIQUE distinct_samples={len(seen)} duplicates={dups[0]}")
    if a.dump:
        with open(a.dump, "w") as f:
            for dev, ts in sorted(seen, key=lambda x: (str(x[0]), x[1] or 0)):
                f.write(f"{dev} {ts}\n")
print("topics:", dict(topics.most_common(8)))
