#!/usr/bin/env python3
# Copied unchanged (below this line) from the team's peer recipe, shared/peers/thingsboard/sim/run_tbgw.py.
"""Start ThingsBoard IoT Gateway (thingsboard-gateway 3.8.x) from a config dir, with its
update check (an HTTPS POST to the ThingsBoard update service on the internet) switched off,
so that a loopback benchmark makes no outside connection.  Usage:
  cd RUN_DIR && TB_GW_CONFIG_DIR=RUN_DIR/config python run_tbgw.py
"""
import os
os.makedirs("logs", exist_ok=True)          # logs.json writes ./logs/*.log relative to the cwd
import thingsboard_gateway.tb_utility.tb_updater as _u
_u.TBUpdater.check_for_new_version = lambda self: None
from thingsboard_gateway.tb_gateway import daemon
daemon()                                    # reads $TB_GW_CONFIG_DIR/tb_gateway.json
