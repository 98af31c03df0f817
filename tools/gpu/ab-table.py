#!/usr/bin/env python3
"""Prints an A/B run's results (ab-8b.sh's ab.jsonl) as one line per variant, in run order:
batch-1 decode tok/s, decode tok/s per batch (both measures), prefill tok/s and offline seconds.
Usage: python3 tools/gpu/ab-table.py ab.jsonl [more.jsonl ...]"""
import collections
import json
import sys

for path in sys.argv[1:]:
    rows = collections.OrderedDict()
    with open(path) as lines:
        for line in lines:
            d = json.loads(line)
            cells = rows.setdefault(d.get("variant", "?"), [])
            what = d.get("what")
            if what == "decode_bs1":
                cells.append("bs1 %.1f" % d["decode_tok_s"])
            elif what == "decode":
                cells.append("b%d %.0f" % (d["batch"], d["tok_s"]))
            elif what == "decode_steady":
                cells.append("b%d steady %.0f" % (d["batch"], d["tok_s"]))
            elif what == "decode_anchor_window":
                cells.append("b%d window %.0f" % (d["batch"], d["tok_s"]))
            elif what == "prefill":
                cells.append("prefill %.0f" % d["tok_s"])
            elif what == "offline_throughput":
                cells.append("offline %.2f s" % d["seconds"])
    print("==", path)
    for variant, cells in rows.items():
        print("  %-10s %s" % (variant, ", ".join(cells)))
