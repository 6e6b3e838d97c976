#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CPU time and memory of the processes under test, from /proc (Linux; stdlib only).

Each ROOT is a PID; it counts together with every process descended from it (socat forks one
child per connection; our programs fork nothing but iptables-restore at start-up).

  procmon.py cpu ROOT...
      {"total": s, "roots": {"PID": s}}: CPU seconds used so far (utime + stime, plus cutime
      + cstime: children already waited for).
  procmon.py mem ROOT...
      {"roots": {"PID": {"rss_kb", "pss_kb", "procs"}}, "rss_kb", "pss_kb"}: memory now.
  procmon.py sample OUT INTERVAL MAX_SECONDS ROOT...
      samples until SIGTERM or MAX_SECONDS, then writes to OUT the peaks: of each root's
      tree and of their sum (RSS and PSS, in KiB).
  procmon.py others SELF NETNS_INODE...
      {"cpu_s": s, "procs": n}: CPU seconds used so far by everything else on the machine:
      user-space processes that are neither in the process tree of SELF (the benchmark) nor
      in one of the network namespaces given by inode. Two readings tell whether something
      else loaded the machine in between (processes that come and go in between are counted
      once their parent waits for them).
"""
import json
import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """The fields of /proc/PID/stat that follow the command name: [0] is the state."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode("ascii", "replace")
    return raw[raw.rindex(")") + 2:].split()


def _children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat(name)[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def trees(roots):
    """{root: [root and its live descendants]}; a root that is gone maps to []."""
    kids = _children_map()
    out = {}
    for root in roots:
        if not os.path.exists(f"/proc/{root}"):
            out[root] = []
            continue
        seen, todo = [], [root]
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.append(pid)
            todo.extend(kids.get(pid, []))
        out[root] = seen
    return out


def _cpu_of(pid):
    try:
        f = _stat(pid)
        return sum(int(x) for x in f[11:15]) / TICK  # utime stime cutime cstime
    except (OSError, ValueError, IndexError):
        return 0.0


def _mem_of(pid):
    """(RSS KiB, PSS KiB) of one process; PSS is 0 where smaps_rollup is unavailable."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        return 0, 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def cpu(roots):
    per = {str(r): round(sum(_cpu_of(p) for p in pids), 3) for r, pids in trees(roots).items()}
    return {"total": round(sum(per.values()), 3), "roots": per}


def mem(roots):
    per = {}
    for root, pids in trees(roots).items():
        rss = pss = 0
        for pid in pids:
            r, p = _mem_of(pid)
            rss += r
            pss += p
        per[str(root)] = {"rss_kb": rss, "pss_kb": pss, "procs": len(pids)}
    return {
        "roots": per,
        "rss_kb": sum(v["rss_kb"] for v in per.values()),
        "pss_kb": sum(v["pss_kb"] for v in per.values()),
    }


def others(self_pid, ns_inodes):
    kids = _children_map()
    mine, todo = set(), [self_pid]
    while todo:
        pid = todo.pop()
        if pid not in mine:
            mine.add(pid)
            todo.extend(kids.get(pid, []))
    total, n = 0.0, 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine or name == "2":
            continue
        try:
            f = _stat(name)
            if f[1] == "2":  # a kernel thread
                continue
            if os.stat(f"/proc/{name}/ns/net").st_ino in ns_inodes:
                continue
            total += sum(int(x) for x in f[11:15]) / TICK
            n += 1
        except (OSError, ValueError, IndexError):
            continue
    return {"cpu_s": round(total, 3), "procs": n, "steal_s": round(steal_s(), 3)}


def steal_s():
    """CPU time the hypervisor gave other guests while this machine's vCPUs wanted it, all CPUs
    together (the 8th number of /proc/stat's "cpu" line; 0 on bare metal)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / TICK if len(fields) > 8 else 0.0


def sample(out, interval, max_s, roots):
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    peak = {"rss_kb": 0, "pss_kb": 0, "samples": 0, "roots": {}}
    end = time.monotonic() + max_s
    while not stop and time.monotonic() < end:
        m = mem(roots)
        peak["samples"] += 1
        peak["rss_kb"] = max(peak["rss_kb"], m["rss_kb"])
        peak["pss_kb"] = max(peak["pss_kb"], m["pss_kb"])
        for root, v in m["roots"].items():
            p = peak["roots"].setdefault(root, {"rss_kb": 0, "pss_kb": 0, "procs": 0})
            for k in p:
                p[k] = max(p[k], v[k])
        # sleep in small steps so that SIGTERM ends the sampler promptly
        t = time.monotonic() + interval
        while not stop and time.monotonic() < t:
            time.sleep(min(0.05, interval))
    with open(out, "w") as f:
        json.dump(peak, f)
        f.write("\n")


def main(argv):
    try:
        if len(argv) >= 3 and argv[1] in ("cpu", "mem"):
            roots = [int(x) for x in argv[2:]]
            print(json.dumps(cpu(roots) if argv[1] == "cpu" else mem(roots)))
            return 0
        if len(argv) >= 3 and argv[1] == "others":
            print(json.dumps(others(int(argv[2]), {int(x) for x in argv[3:]})))
            return 0
        if len(argv) >= 6 and argv[1] == "sample":
            sample(argv[2], float(argv[3]), float(argv[4]), [int(x) for x in argv[5:]])
            return 0
    except ValueError as e:
        print(f"procmon.py: {e}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
