#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py RUN_DIR OUT.json: turns the raw outputs of one bench/run.sh run into medians,
ratios, a markdown table (stdout) and a JSON file. Exit status 1 when ours failed a check: a
metric missing or zero, a process that crashed or exited badly, flows lost in the scale test.

RUN_DIR holds config.json, host.tsv, problems.tsv, raw/rREP/PATH/{path.json, idle.json,
mem.json, NAME.out, NAME.err, NAME.meta.json} and scale/{scale.json, before.json, open.json,
after.json, mem.json, hold.out}.
"""
import json
import os
import re
import statistics
import sys

# key, label, unit, better ("hi" or "lo"), needs processes (n/a for the direct path)
METRICS = [
    ("fwd_gbps", "bulk, 1 flow, client to LAN", "Gbit/s", "hi", False),
    ("rev_gbps", "bulk, 1 flow, LAN to client (-R)", "Gbit/s", "hi", False),
    ("p8_gbps", "bulk, 8 flows (-P 8)", "Gbit/s", "hi", False),
    ("close_rps", "new connections/s (Connection: close)", "req/s", "hi", False),
    ("close_p50_ms", "  its latency p50", "ms", "lo", False),
    ("close_p99_ms", "  its latency p99", "ms", "lo", False),
    ("ka_rps", "keep-alive requests/s", "req/s", "hi", False),
    ("ka_p50_ms", "  its latency p50", "ms", "lo", False),
    ("ka_p99_ms", "  its latency p99", "ms", "lo", False),
    ("rtt_p50_us", "64 B round trip p50 (open connection)", "µs", "lo", False),
    ("rtt_p99_us", "64 B round trip p99", "µs", "lo", False),
    ("ttfb_p50_us", "time to first byte p50 (new connection)", "µs", "lo", False),
    ("cpu_s_per_gb_fwd", "tunnel CPU per GB, 1 flow", "CPU s/GB", "lo", True),
    ("cpu_s_per_gb_rev", "tunnel CPU per GB, 1 flow -R", "CPU s/GB", "lo", True),
    ("cpu_s_per_gb_p8", "tunnel CPU per GB, 8 flows", "CPU s/GB", "lo", True),
    ("cpu_us_per_req_close", "tunnel CPU per new connection", "CPU µs", "lo", True),
    ("cpu_us_per_req_ka", "tunnel CPU per keep-alive request", "CPU µs", "lo", True),
    ("peak_rss_mib", "tunnel peak RSS (sum of processes)", "MiB", "lo", True),
    ("peak_pss_mib", "tunnel peak PSS (sum of processes)", "MiB", "lo", True),
]
OURS_PROCS = ("client", "relay", "proxy")
# Average CPU (in cores) that processes outside the benchmark may use during a path's
# measurements before the report calls them disturbed.
OTHER_LOAD_LIMIT = 0.05
STEAL_LIMIT = 0.05


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def cpu_delta(meta, pid=None):
    """CPU seconds the path's processes used during one measurement (None if unknown)."""
    if not meta or not meta.get("cpu0") or not meta.get("cpu1"):
        return None
    if pid is None:
        return max(0.0, meta["cpu1"]["total"] - meta["cpu0"]["total"])
    a = meta["cpu0"]["roots"].get(str(pid))
    b = meta["cpu1"]["roots"].get(str(pid))
    return None if a is None or b is None else max(0.0, b - a)


def parse_iperf(path):
    """(Gbit/s at the receiver, bytes received, error or None)."""
    d = load_json(path)
    if not d:
        return None, None, "no JSON output"
    if d.get("error"):
        return None, None, d["error"]
    try:
        r = d["end"]["sum_received"]
        return r["bits_per_second"] / 1e9, r["bytes"], None
    except (KeyError, TypeError):
        return None, None, "no sum_received"


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def parse_wrk(path):
    """{"rps", "requests", "p50_ms", "p99_ms", "errors"} or None."""
    t = read_text(path)
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    if not m:
        return None
    out = {"rps": float(m.group(1)), "errors": 0}
    m = re.search(r"(\d+) requests in", t)
    out["requests"] = int(m.group(1)) if m else None
    for q in ("50", "99"):
        m = re.search(rf"^\s*{q}%\s+(\S+)", t, re.M)
        out[f"p{q}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if m:
        out["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if m:
        out["errors"] += int(m.group(1))
    return out


def one_run(d, names):
    """Metrics of one path in one repetition, from its raw directory."""
    v, errors, per_proc = {}, [], {}
    meta = {n: load_json(os.path.join(d, n + ".meta.json")) for n in
            ("iperf_fwd", "iperf_rev", "iperf_p8", "wrk_close", "wrk_ka", "rtt", "ttfb")}
    for key, name in (("fwd", "iperf_fwd"), ("rev", "iperf_rev"), ("p8", "iperf_p8")):
        gbps, nbytes, err = parse_iperf(os.path.join(d, name + ".out"))
        if err:
            errors.append(f"{name}: {err}")
        v[f"{key}_gbps"] = gbps
        cpu = cpu_delta(meta[name])
        if cpu is not None and nbytes:
            v[f"cpu_s_per_gb_{key}"] = cpu / (nbytes / 1e9)
            for proc, pid in names.items():
                c = cpu_delta(meta[name], pid)
                if c is not None:
                    per_proc.setdefault(proc, {})[f"cpu_s_per_gb_{key}"] = c / (nbytes / 1e9)
    for key, name in (("close", "wrk_close"), ("ka", "wrk_ka")):
        w = parse_wrk(os.path.join(d, name + ".out"))
        if w is None:
            errors.append(f"{name}: no result ({read_text(os.path.join(d, name + '.err'))[:200].strip()})")
            continue
        if w["errors"]:
            errors.append(f"{name}: {w['errors']} socket errors or non-2xx responses")
        v[f"{key}_rps"] = w["rps"]
        v[f"{key}_p50_ms"] = w["p50_ms"]
        v[f"{key}_p99_ms"] = w["p99_ms"]
        cpu = cpu_delta(meta[name])
        if cpu is not None and w["requests"]:
            v[f"cpu_us_per_req_{key}"] = cpu * 1e6 / w["requests"]
            for proc, pid in names.items():
                c = cpu_delta(meta[name], pid)
                if c is not None:
                    per_proc.setdefault(proc, {})[f"cpu_us_per_req_{key}"] = c * 1e6 / w["requests"]
    for name, keys in (("rtt", ("p50", "p99")), ("ttfb", ("p50",))):
        r = load_json(os.path.join(d, name + ".out"))
        if not r or not r.get("done"):
            errors.append(f"{name}: {(r or {}).get('error', 'no result')}")
            continue
        if not r.get("complete"):
            errors.append(f"{name}: {r['done']} of {r['n']} done ({r.get('error', 'time limit')})")
        for k in keys:
            v[f"{name}_{k}_us"] = r[f"{k}_us"]
    m = load_json(os.path.join(d, "mem.json"))
    if m and m.get("samples"):
        v["peak_rss_mib"] = m["rss_kb"] / 1024
        v["peak_pss_mib"] = m["pss_kb"] / 1024
        for proc, pid in names.items():
            p = m["roots"].get(str(pid))
            if p:
                per_proc.setdefault(proc, {})["peak_rss_mib"] = p["rss_kb"] / 1024
                per_proc[proc]["peak_pss_mib"] = p["pss_kb"] / 1024
    idle = load_json(os.path.join(d, "idle.json"))
    if idle:
        for proc, pid in names.items():
            p = idle["roots"].get(str(pid))
            if p:
                per_proc.setdefault(proc, {})["idle_rss_kib"] = p["rss_kb"]
                per_proc[proc]["idle_pss_kib"] = p["pss_kb"]
    return v, errors, per_proc


def rate_of(info, key):
    """Per second of the path's measurements: what others0/others1 say of |key| (or None)."""
    try:
        return (info["others1"][key] - info["others0"][key]) / (info["t1"] - info["t0"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "req/s":
        return f"{x:,.0f}"
    if unit == "µs":
        return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
    if unit in ("MiB", "ms", "Gbit/s", "CPU s/GB"):
        return f"{x:.2f}" if x < 100 else f"{x:,.0f}"
    if unit == "CPU µs":
        return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
    return f"{x:.3g}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x, spread):
    if x is None:
        return "-"
    if not spread or spread[2] < 2:
        return f"{x:.2f}"
    return f"{x:.2f} [{spread[0]:.2f}-{spread[1]:.2f}]"


def paired_ratios(ours_runs, peer_runs, k):
    """ours / the peer within each repetition: the paths of one repetition run back to back,
    so a slow drift of the machine's speed cancels out, which a ratio of medians taken from
    different repetitions would not do."""
    xs = [ratio(a["metrics"].get(k), b["metrics"].get(k)) for a, b in zip(ours_runs, peer_runs)]
    return [x for x in xs if x is not None]


def scale_section(run):
    d = os.path.join(run, "scale")
    s = load_json(os.path.join(d, "scale.json"))
    if not s:
        return None
    hold = load_json(os.path.join(d, "hold.out")) or {}
    hold2 = load_json(os.path.join(d, "hold2.out")) or {}
    mems = {k: load_json(os.path.join(d, k + ".json"))
            for k in ("before", "open", "after", "after2", "mem")}
    procs = {}
    for proc, pid in s.get("pids", {}).items():
        row = {}
        for k in ("before", "open", "after", "after2"):
            p = (mems[k] or {}).get("roots", {}).get(str(pid))
            row[f"rss_kib_{k}"] = p["rss_kb"] if p else None
            row[f"pss_kib_{k}"] = p["pss_kb"] if p else None
        p = (mems["mem"] or {}).get("roots", {}).get(str(pid))
        row["rss_kib_peak"] = p["rss_kb"] if p else None
        if row["rss_kib_open"] is not None and row["rss_kib_before"] is not None and s["n"]:
            row["growth_bytes_per_flow"] = (row["rss_kib_open"] - row["rss_kib_before"]) * 1024 / s["n"]
        else:
            row["growth_bytes_per_flow"] = None
        procs[proc] = row
    return {"config": s, "hold": hold, "hold2": hold2, "procs": procs}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    run, out_path = argv[1], argv[2]
    cfg = load_json(os.path.join(run, "config.json")) or {}
    paths = cfg.get("paths", ["ours"])
    reps = cfg.get("reps", 1)
    host = {}
    for line in read_text(os.path.join(run, "host.tsv")).splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            host[k] = v
    problems = []
    for line in read_text(os.path.join(run, "problems.tsv")).splitlines():
        if "\t" in line:
            sev, msg = line.split("\t", 1)
            problems.append({"severity": sev, "message": msg})

    results = {}
    for p in paths:
        runs = []
        for r in range(1, reps + 1):
            d = os.path.join(run, "raw", f"r{r}", p)
            info = load_json(os.path.join(d, "path.json")) or {"status": "missing"}
            names = info.get("pids", {}) if p == "ours" else {}
            if info.get("status") == "ok":
                v, errs, per_proc = one_run(d, names)
            else:
                v, errs, per_proc = {}, [f"status {info.get('status')}"], {}
            other = rate_of(info, "cpu_s")
            steal = rate_of(info, "steal_s")
            if other is not None and other > OTHER_LOAD_LIMIT:
                problems.append({"severity": "warn", "message":
                                 f"rep {r} {p}: other processes on the machine used "
                                 f"{other:.2f} cores during the measurements: numbers disturbed"})
            if steal is not None and steal > STEAL_LIMIT:
                problems.append({"severity": "warn", "message":
                                 f"rep {r} {p}: the hypervisor took {steal:.2f} cores from this "
                                 f"machine (steal time) during the measurements: numbers disturbed"})
            runs.append({"rep": r, "status": info.get("status"), "order": info.get("order"),
                         "other_load_cores": other, "steal_cores": steal, "metrics": v,
                         "errors": errs, "per_process": per_proc})
            for e in errs:
                sev = "warn"
                problems.append({"severity": sev, "message": f"rep {r} {p}: {e}"})
        median = {k: med([x["metrics"].get(k) for x in runs]) for k, *_ in METRICS}
        spread = {}
        for k, *_ in METRICS:
            xs = [x["metrics"].get(k) for x in runs if x["metrics"].get(k) is not None]
            if xs:
                spread[k] = [min(xs), max(xs), len(xs)]
        res = {"median": median, "min_max_n": spread, "runs": runs}
        if p == "ours":
            pp = {}
            for proc in OURS_PROCS:
                keys = set()
                for x in runs:
                    keys |= set(x["per_process"].get(proc, {}))
                pp[proc] = {k: med([x["per_process"].get(proc, {}).get(k) for x in runs])
                            for k in sorted(keys)}
            res["per_process_median"] = pp
        results[p] = res

    others = [p for p in paths if p != "ours"]
    ratios, ratio_spread = {}, {}
    for p in others:
        ratios[p], ratio_spread[p] = {}, {}
        for k, *_ in METRICS:
            xs = paired_ratios(results["ours"]["runs"], results[p]["runs"], k)
            ratios[p][k] = med(xs)
            if xs:
                ratio_spread[p][k] = [min(xs), max(xs), len(xs)]
    scale = scale_section(run)

    # ---- checks on ours: every metric there and above zero, scale flows all answered
    failures = [x["message"] for x in problems if x["severity"] == "fail"]
    om = results["ours"]["median"]
    for k, label, *_ in METRICS:
        if om.get(k) is None or not om[k] > 0:
            failures.append(f"ours: metric {k} ({label.strip()}) is missing or zero")
    for proc in OURS_PROCS:
        if not results["ours"].get("per_process_median", {}).get(proc, {}).get("idle_rss_kib"):
            failures.append(f"ours: idle RSS of the {proc} is missing")
    if cfg.get("scale", 0) > 0:
        if not scale:
            failures.append("ours: the scale test has no result")
        else:
            for name in ("hold", "hold2"):
                h = scale[name]
                if not h.get("complete"):
                    failures.append(f"ours: scale test ({name}): {h.get('connected')} of "
                                    f"{h.get('conns')} connected, answered in every round: "
                                    f"{h.get('answered_min')}")
            for proc in OURS_PROCS:
                row = scale["procs"].get(proc, {})
                if not row.get("rss_kib_open"):
                    failures.append(f"ours: scale test: no RSS of the {proc} with the flows open")
    failures = list(dict.fromkeys(failures))

    # ---- the table
    lines = []
    lines.append(f"Tunnel benchmark {cfg.get('stamp', '')}: {reps} repetition(s), "
                 f"{cfg.get('duration_s')} s per iperf3/wrk run, medians; commit "
                 f"{host.get('commit', '?')}, {host.get('cpus', '?')} CPUs, kernel {host.get('kernel', '?')}.")
    loads = [x["other_load_cores"] for p in paths for x in results[p]["runs"]
             if x.get("other_load_cores") is not None]
    if loads:
        lines.append(f"Other processes on the machine used at most {max(loads):.2f} cores during "
                     f"any path's measurements (above {OTHER_LOAD_LIMIT} the run is flagged).")
    steals = [x["steal_cores"] for p in paths for x in results[p]["runs"]
              if x.get("steal_cores") is not None]
    if steals:
        lines.append(f"The hypervisor took {med(steals):.2f} cores (median; at most "
                     f"{max(steals):.2f}) from this machine during a path's measurements (steal "
                     f"time; above {STEAL_LIMIT} the repetition is flagged).")
    lines.append("Ratio = ours / the other path in the same repetition, median over the "
                 "repetitions [their min-max]: above 1 is better for ↑ rows, below 1 is better "
                 "for ↓ rows. \"tunnel\" CPU and memory are of the path's own processes.")
    lines.append("")
    head = ["metric", "unit", "ours"] + others + [f"ours/{p}" for p in others]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
    for k, label, unit, better, needs_procs in METRICS:
        arrow = "↑" if better == "hi" else "↓"
        row = [f"{label} {arrow}", unit, fmt(om.get(k), unit)]
        row += [fmt(results[p]["median"].get(k), unit) for p in others]
        row += [fmt_ratio(ratios[p][k], ratio_spread[p].get(k)) for p in others]
        lines.append("| " + " | ".join(row) + " |")

    pp = results["ours"].get("per_process_median", {})
    lines.append("")
    lines.append("Ours per process (medians):")
    lines.append("")
    h2 = ["process", "idle RSS MiB", "idle PSS MiB", "peak RSS MiB", "CPU s/GB 1 flow",
          "CPU s/GB -R", "CPU s/GB -P 8", "CPU µs/new conn", "CPU µs/ka req"]
    if scale:
        n = scale["config"]["n"]
        h2 += ["scale: RSS MiB before", f"with {n:,} flows", "after close",
               "after a 2nd pass", "bytes/flow"]
    lines.append("| " + " | ".join(h2) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(h2) - 1)) + "|")

    def kib(x):
        return "-" if x is None else f"{x / 1024:.1f}"

    for proc in OURS_PROCS:
        v = pp.get(proc, {})
        row = [proc, kib(v.get("idle_rss_kib")), kib(v.get("idle_pss_kib")),
               fmt(v.get("peak_rss_mib"), "MiB"), fmt(v.get("cpu_s_per_gb_fwd"), "CPU s/GB"),
               fmt(v.get("cpu_s_per_gb_rev"), "CPU s/GB"), fmt(v.get("cpu_s_per_gb_p8"), "CPU s/GB"),
               fmt(v.get("cpu_us_per_req_close"), "CPU µs"), fmt(v.get("cpu_us_per_req_ka"), "CPU µs")]
        if scale:
            s = scale["procs"].get(proc, {})
            g = s.get("growth_bytes_per_flow")
            row += [kib(s.get("rss_kib_before")), kib(s.get("rss_kib_open")),
                    kib(s.get("rss_kib_after")), kib(s.get("rss_kib_after2")),
                    "-" if g is None else f"{g:,.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    if scale:
        h = scale["hold"]
        c = scale["config"]
        rounds = ", ".join(f"{r.get('answered')}/{r.get('sent')} in {r.get('last_answer_s')} s"
                           for r in h.get("rounds", []))
        lines.append("")
        h2_ = scale["hold2"]
        lines.append(f"Scale: {c['n']:,} flows opened at ≤{c['rate']:,}/s in {h.get('connect_s', '-')} s: "
                     f"{h.get('connected', 0):,} connected, {h.get('connect_failed', 0)} failed; "
                     f"echo rounds answered: {rounds or '-'}; established while held: client "
                     f"{c.get('flows_client')}, LAN {c.get('flows_lan')}; gone "
                     f"{c.get('drain_s')} s after closing. Second pass: "
                     f"{h2_.get('answered_min', 0):,} of {h2_.get('conns', 0):,} answered. "
                     f"Tunnel works afterwards: {c.get('after_ok')}.")
    notable = [x for x in problems if x["severity"] in ("fail", "warn", "note")]
    if notable:
        lines.append("")
        lines.append("Problems:")
        for x in notable:
            lines.append(f"- {x['severity']}: {x['message']}")
    if failures:
        lines.append("")
        lines.append("FAILED checks of ours:")
        for f in failures:
            lines.append(f"- {f}")
    table = "\n".join(lines)
    print(table)

    doc = {
        "config": cfg,
        "host": host,
        "metrics": [{"key": k, "label": l.strip(), "unit": u, "better": b, "tunnel_only": t}
                    for k, l, u, b, t in METRICS],
        "paths": results,
        "ratios_ours_to": ratios,
        "ratio_min_max_n": ratio_spread,
        "scale": scale,
        "problems": problems,
        "failed_checks": failures,
        "ok": not failures,
        "table_md": table,
    }
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, out_path)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
