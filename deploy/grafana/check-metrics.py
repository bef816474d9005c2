#!/usr/bin/env python3
"""Checks that a Grafana dashboard uses only metrics the gateway exports.

    python3 deploy/grafana/check-metrics.py [DASHBOARD] [--scrape FILE]

From the repository root. The exported families are read from the source:
every `counter`/`counters`/`gauge`/`gauges` call of src/**/metrics.rs (the
helpers of src/exposition.rs; the text format adds `_total` to a counter's
name) with the `label("key", …)` keys near it. Each `lampgw_*` name in the
dashboard's queries must be one of them, each label it selects or groups by
must be that family's (or `instance`/`job`, which Prometheus adds), a
counter must sit inside rate()/increase() and a gauge must not. With
`--scrape FILE` (a saved `curl http://HOST:8080/metrics`) every name must
also be in that file. Exit 1 on any error.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HELPER = re.compile(r'\b(counters?|gauges?)\(\s*&mut enc,\s*("lampgw_[a-z_]+"|[a-z_]+)\s*,')
LABEL = re.compile(r'\blabel\("([a-z_]+)"')
NAME = re.compile(r'"(lampgw_[a-z_]+)"')
PROMETHEUS_LABELS = {"instance", "job"}
COUNTER_FUNCS = ("rate", "increase", "irate")


def families():
    """{exported name: (type, {label keys}, file)} from src/**/metrics.rs."""
    out = {}
    for path in sorted((ROOT / "src").rglob("metrics.rs")):
        src = path.read_text()
        rel = path.relative_to(ROOT)
        calls = list(HELPER.finditer(src))
        literal = set()
        for i, m in enumerate(calls):
            end = calls[i + 1].start() if i + 1 < len(calls) else len(src)
            kind = "counter" if m.group(1).startswith("counter") else "gauge"
            if m.group(2).startswith('"'):
                name = m.group(2).strip('"')
                literal.add(name)
                labels = set(LABEL.findall(src[m.start():end]))
                out[exported(name, kind)] = (kind, labels, rel)
        # Families named through a variable (figures: constant tables of
        # names, one helper in a loop): every other name literal in the file,
        # with the file's label keys.
        for m in calls:
            if m.group(2).startswith('"'):
                continue
            kind = "counter" if m.group(1).startswith("counter") else "gauge"
            for name in set(NAME.findall(src)) - literal:
                out[exported(name, kind)] = (kind, set(LABEL.findall(src)), rel)
    return out


def exported(name, kind):
    return name + "_total" if kind == "counter" else name


def queries(dash):
    """(where, PromQL) of every panel target and query variable."""
    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield f'panel {p.get("id")} "{p.get("title")}"', t["expr"]
            yield from walk(p.get("panels", []))

    yield from walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            yield f'variable ${v["name"]}', q


def enclosing_function(expr, pos):
    """Name of the innermost function call around position `pos`."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        c = expr[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = re.search(r"([a-z_]+)\s*$", expr[:i])
                if m and m.group(1) not in ("by", "without"):
                    return m.group(1)
            else:
                depth -= 1
    return None


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    scrape = None
    if "--scrape" in argv:
        scrape_file = argv[argv.index("--scrape") + 1]
        args.remove(scrape_file)
        text = pathlib.Path(scrape_file).read_text()
        # A family is exported with its `# TYPE` line even when it has no
        # series (a ratio whose denominator is 0 leaves its series out).
        scrape = set(re.findall(r"^(?:# TYPE )?(lampgw_[a-z_]+)", text, re.M))
    dash_path = pathlib.Path(args[0]) if args else ROOT / "deploy/grafana/lamp-gateway.json"
    dash = json.loads(dash_path.read_text())
    fams = families()
    errors = 0
    used = {}
    for where, expr in queries(dash):
        for m in re.finditer(r"\b(lampgw_[a-z_]+)\b(\{[^}]*\})?", expr):
            name = m.group(1)
            used.setdefault(name, 0)
            used[name] += 1
            fam = fams.get(name)
            if fam is None:
                print(f"ERROR {where}: {name} is not exported by src/**/metrics.rs")
                errors += 1
                continue
            kind, labels, _ = fam
            allowed = labels | PROMETHEUS_LABELS
            for key in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", m.group(2) or ""):
                if key not in allowed:
                    print(f"ERROR {where}: {name} has no label `{key}` (has {sorted(labels)})")
                    errors += 1
            func = enclosing_function(expr, m.start())
            if kind == "counter" and func not in COUNTER_FUNCS:
                print(f"ERROR {where}: counter {name} outside rate()/increase()")
                errors += 1
            if kind == "gauge" and func in COUNTER_FUNCS:
                print(f"WARN  {where}: gauge {name} inside {func}()")
            if scrape is not None and name not in scrape:
                print(f"ERROR {where}: {name} is not in the scrape {scrape_file}")
                errors += 1
        names_here = [n for n in re.findall(r"\b(lampgw_[a-z_]+)\b", expr) if n in fams]
        for grouped in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            for key in [k.strip() for k in grouped.split(",") if k.strip()]:
                if not any(key in fams[n][1] | PROMETHEUS_LABELS for n in names_here):
                    print(f"ERROR {where}: `by ({key})` but no metric of the query has it")
                    errors += 1
    for name in sorted(used):
        kind, labels, rel = fams.get(name, ("?", set(), "NOT IN SOURCE"))
        label_text = ",".join(sorted(labels)) or "-"
        print(f"ok    {name:40} {kind:7} labels={label_text:8} {rel}  ({used[name]}×)")
    unused = sorted(set(fams) - set(used))
    print(f"{len(used)} metric names used, {len(fams)} exported, not on the dashboard: "
          + (", ".join(unused) or "none"))
    print(f"{errors} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
