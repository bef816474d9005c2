#!/usr/bin/env python3
# Copied unchanged (below this line) from the team's peer recipe, shared/peers/thingsboard/sim/fake_tb_limits.py.
"""Stand-in for the one ThingsBoard server reply the gateway waits for before it publishes:
thingsboard-gateway 3.8.x (tb-mqtt-client 1.13) sends the client RPC "getSessionLimits" on
v1/devices/me/rpc/request/<id> after connecting and sends no telemetry until a reply arrives on
v1/devices/me/rpc/response/<id> (there is no timeout for it).  This answers with "no rate limits".
Loopback only; exits after --duration s."""
import argparse, json, time
import paho.mqtt.client as mqtt
p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1"); p.add_argument("--port", type=int, default=18830)
p.add_argument("--duration", type=float, default=600)
p.add_argument("--max-payload", type=int, default=65536)
p.add_argument("--max-inflight", type=int, default=100)
a = p.parse_args(); assert a.host.startswith("127.")
REPLY = {"maxPayloadSize": a.max_payload, "maxInflightMessages": a.max_inflight,
         "rateLimits": {}, "gatewayRateLimits": {}}
def on_message(c, u, m):
    try:
        body = json.loads(m.payload)
    except Exception:
        return
    if body.get("method") == "getSessionLimits":
        rid = m.topic.rsplit("/", 1)[-1]
        c.publish("v1/devices/me/rpc/response/" + rid, json.dumps(REPLY), qos=1)
        print("answered getSessionLimits id", rid, flush=True)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fake-tb-limits")
c.on_message = on_message
c.on_connect = lambda c, u, f, rc, pr: c.subscribe("v1/devices/me/rpc/request/+", qos=1)
c.connect(a.host, a.port, 60); c.loop_start(); time.sleep(a.duration); c.loop_stop()
