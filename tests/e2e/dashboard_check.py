#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dashboard_check.py: drives a headless Chromium by the DevTools protocol (python3-websocket).

  dashboard_check.py DEVTOOLS_PORT URL SCREENSHOT --expect TEXT... [--rate-up]
                     [--min-samples N] [--timeout S]

Opens URL in the browser already listening on 127.0.0.1:DEVTOOLS_PORT, waits until the page's
text holds every TEXT (and, with --rate-up, a non-zero throughput in its header; with
--min-samples, N points on its graph), then saves a PNG screenshot.  Exit 0 when all of it happened, 1 otherwise (saying what was missing).
"""
import argparse
import base64
import json
import sys
import time
import urllib.request

import websocket


class Page:
    def __init__(self, ws_url, timeout):
        self.ws = websocket.create_connection(ws_url, timeout=timeout)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:  # events come in between: skip them
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("url")
    p.add_argument("screenshot")
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--rate-up", action="store_true")
    p.add_argument("--min-samples", type=int, default=0, help="points on the throughput graph")
    p.add_argument("--timeout", type=float, default=20.0)
    a = p.parse_args()

    base = "http://127.0.0.1:%d" % a.port
    deadline = time.monotonic() + a.timeout
    targets = None
    while targets is None:
        try:
            with urllib.request.urlopen(base + "/json/list", timeout=2) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
        except OSError:
            if time.monotonic() > deadline:
                print("no DevTools endpoint at %s" % base)
                return 1
            time.sleep(0.2)
    if not targets:
        req = urllib.request.Request(base + "/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            targets = [json.load(r)]
    page = Page(targets[0]["webSocketDebuggerUrl"], a.timeout)
    page.call("Emulation.setDeviceMetricsOverride", width=1280, height=760, deviceScaleFactor=1,
              mobile=False)
    page.call("Page.enable")
    page.call("Page.navigate", url=a.url)
    text, missing = "", list(a.expect)
    while time.monotonic() < deadline:
        text = page.eval("document.body ? document.body.innerText : ''") or ""
        missing = [t for t in a.expect if t not in text]
        rate = page.eval("(document.getElementById('rate-up') || {}).textContent || ''") or ""
        samples = page.eval("typeof history === 'undefined' ? 0 : history.length") or 0
        if not missing and (not a.rate_up or (rate and not rate.startswith("0 B"))) and \
                samples >= a.min_samples:
            break
        time.sleep(0.25)
    else:
        print("after %.0f s the page lacks %s%s; it shows:\n%s" %
              (a.timeout, missing, " (or a throughput)" if a.rate_up else "", text))
        return 1
    shot = page.call("Page.captureScreenshot", format="png")
    with open(a.screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print("page shows %s; screenshot in %s" % (", ".join(a.expect), a.screenshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
