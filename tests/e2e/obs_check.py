#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""obs_check.py: checks for the observability end-to-end tests.

  metrics FILE                  parse a /metrics answer with the Prometheus client's own parser
                                and print one "name{labels} value" line per sample (sorted)
  delta BEFORE AFTER EXPECT...  each EXPECT is 'name{l="v",...}=+N' (AFTER - BEFORE == N) or
                                'name{...}==N' (AFTER == N); BEFORE and AFTER are metrics files
  json-log FILE [--event E --count N --field k=v ...]
                                every line of FILE is a JSON object with time, level, component,
                                event and fields; with --event, N lines of that event (each
                                holding the fields given) must be there
  json FILE EXPR                evaluates the Python expression EXPR with `s` the JSON in FILE
"""
import argparse
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def samples(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    names = set()
    for fam in text_string_to_metric_families(text):
        if not fam.documentation:
            raise SystemExit("%s: family %s has no HELP" % (path, fam.name))
        if fam.type not in ("counter", "gauge", "histogram"):
            raise SystemExit("%s: family %s has no TYPE (%s)" % (path, fam.name, fam.type))
        names.add(fam.name)
        for s in fam.samples:
            key = s.name + "{" + ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items())) + "}"
            out[key] = s.value
    if not names:
        raise SystemExit("%s: no metric at all" % path)
    return out


def key_of(expr):
    name, _, labels = expr.partition("{")
    labels = labels.rstrip("}")
    parts = sorted(p for p in labels.split(",") if p)
    return name + "{" + ",".join(parts) + "}"


def cmd_metrics(a):
    for k, v in sorted(samples(a.file).items()):
        print(k, v)
    return 0


def cmd_delta(a):
    before, after = samples(a.before), samples(a.after)
    bad = 0
    for e in a.expect:
        if "==" in e:
            k, want = e.split("==")
            got = after.get(key_of(k))
            ok = got is not None and got == float(want)
            what = "%s = %s, want %s" % (key_of(k), got, want)
        else:
            k, want = e.split("=+")
            k = key_of(k)
            got = None if k not in after else after[k] - before.get(k, 0.0)
            ok = got is not None and got == float(want)
            what = "%s moved by %s, want %s" % (k, got, want)
        print(("ok   " if ok else "FAIL ") + what)
        bad += not ok
    return 1 if bad else 0


def cmd_json_log(a):
    n = 0
    matched = 0
    with open(a.file, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                o = json.loads(line)
            except ValueError as e:
                print("%s:%d: not JSON (%s): %r" % (a.file, i, e, line[:200]))
                return 1
            for k in ("time", "level", "component", "event", "fields"):
                if k not in o:
                    print("%s:%d: no %r: %r" % (a.file, i, k, line[:200]))
                    return 1
            if not isinstance(o["fields"], dict):
                print("%s:%d: fields is not an object" % (a.file, i))
                return 1
            n += 1
            if a.event and o["event"] == a.event:
                want = dict(kv.split("=", 1) for kv in a.field)
                if all(str(o["fields"].get(k)) == v for k, v in want.items()) and \
                        ("flow" in o or a.event != "flow.end"):
                    matched += 1
    print("%s: %d JSON lines%s" % (a.file, n, ", %d %s" % (matched, a.event) if a.event else ""))
    if n == 0:
        return 1
    if a.event and matched != a.count:
        print("want %d %s lines with %s, found %d" % (a.count, a.event, a.field, matched))
        return 1
    return 0


def cmd_json(a):
    with open(a.file, encoding="utf-8") as f:
        s = json.load(f)
    ok = eval(a.expr, {}, {"s": s})  # the tests' own expressions
    print(("ok   " if ok else "FAIL ") + a.expr)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("metrics")
    c.add_argument("file")
    c = sub.add_parser("delta")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("expect", nargs="+")
    c = sub.add_parser("json-log")
    c.add_argument("file")
    c.add_argument("--event")
    c.add_argument("--count", type=int, default=0)
    c.add_argument("--field", action="append", default=[])
    c = sub.add_parser("json")
    c.add_argument("file")
    c.add_argument("expr")
    a = p.parse_args()
    return {"metrics": cmd_metrics, "delta": cmd_delta, "json-log": cmd_json_log,
            "json": cmd_json}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
