#!/usr/bin/env python3
"""Device idle time between the activities of an nsys cuda_gpu_trace CSV (tools/gpu/nsys-8b.sh).

Prints the busy and idle time of the run, the idle gaps by size (gaps over 1 ms are the
benchmark's own pauses between phases and are left out of the sums below them), and per kernel
name the idle time just before its launches: inside a graph that is the kernel-to-kernel gap, and
before a step's first kernel it is the time the device waited on the host.
"""
import csv
import sys
from collections import defaultdict

rows = []
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        try:
            start, duration = int(r["Start (ns)"]), int(r["Duration (ns)"])
        except (KeyError, ValueError):
            continue
        rows.append((start, start + duration, r.get("Name", "?")))
rows.sort()
if not rows:
    sys.exit("no activities in " + sys.argv[1])

busy = sum(end - start for start, end, _ in rows)
buckets = [(2_000, "< 2 us"), (10_000, "2-10 us"), (50_000, "10-50 us"), (200_000, "50-200 us"),
           (1_000_000, "200 us - 1 ms"), (float("inf"), "> 1 ms (left out below)")]
by_bucket = defaultdict(lambda: [0, 0])
before = defaultdict(lambda: [0, 0])
reach = rows[0][1]
for start, end, name in rows[1:]:
    gap = start - reach
    if gap > 0:
        label = next(label for limit, label in buckets if gap < limit)
        by_bucket[label][0] += 1
        by_bucket[label][1] += gap
        if gap < 1_000_000:
            before[name][0] += 1
            before[name][1] += gap
    reach = max(reach, end)

span = rows[-1][1] - rows[0][0]
print(f"activities {len(rows)}, span {span / 1e6:.1f} ms, busy {busy / 1e6:.1f} ms")
print("idle gaps by size:")
for _, label in buckets:
    count, total = by_bucket[label]
    print(f"  {label:>24}: {count:8d} gaps, {total / 1e6:9.2f} ms")
print("idle time before each kernel (gaps under 1 ms), largest first:")
for name, (count, total) in sorted(before.items(), key=lambda kv: -kv[1][1])[:25]:
    print(f"  {total / 1e6:9.2f} ms {count:8d} gaps {total / max(count, 1) / 1e3:8.2f} us each  {name[:100]}")
