#!/usr/bin/env python3
"""Plots and summarises a soak CSV (scripts/soak).

    soak-plot.py SAMPLES.csv OUT.png WARMUP_SECONDS

Prints, per column, the first value after the warm-up, the last, the maximum, and the growth
after the warm-up as the slope of a least-squares line, per hour.
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

path, out, warmup = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(path) as f:
    rows = [{k: float(v) if v not in ("", "nan") else float("nan") for k, v in r.items()}
            for r in csv.DictReader(f)]
if len(rows) < 2:
    sys.exit("too few samples to plot")
columns = [c for c in rows[0] if c != "elapsed_s"]


def slope_per_hour(xs, ys):
    pairs = [(x, y) for x, y in zip(xs, ys) if y == y]
    if len(pairs) < 2:
        return float("nan")
    n = len(pairs)
    mx = sum(x for x, _ in pairs) / n
    my = sum(y for _, y in pairs) / n
    var = sum((x - mx) ** 2 for x, _ in pairs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in pairs) / var * 3600


settled = [r for r in rows if r["elapsed_s"] >= warmup] or rows
print(f"samples: {len(rows)} over {rows[-1]['elapsed_s']:.0f} s; warm-up {warmup:.0f} s")
print(f"{'column':<16}{'start':>10}{'end':>10}{'max':>10}{'growth/h':>12}")
for c in columns:
    values = [r[c] for r in settled]
    finite = [v for v in values if v == v]
    top = max(finite) if finite else float("nan")
    slope = slope_per_hour([r["elapsed_s"] for r in settled], values)
    print(f"{c:<16}{values[0]:>10.1f}{values[-1]:>10.1f}{top:>10.1f}{slope:>+12.1f}")

panels = [
    ("server memory (MiB): resident, and the allocator's live heap", ["rss_mib", "heap_mib"]),
    ("open file descriptors, threads", ["fds", "threads"]),
    ("latency (ms)", ["healthz_ms", "activity_ms", "sync_ms"]),
    ("loaded documents, open sockets", ["open_documents", "sockets"]),
]
fig, axes = plt.subplots(len(panels), 1, figsize=(9, 10), sharex=True)
minutes = [r["elapsed_s"] / 60 for r in rows]
for ax, (title, cols) in zip(axes, panels):
    for c in cols:
        if c in rows[0]:
            ax.plot(minutes, [r[c] for r in rows], label=c, linewidth=1.2)
    ax.set_title(title, fontsize=10, loc="left")
    ax.axvline(warmup / 60, color="grey", linestyle=":", linewidth=1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
axes[-1].set_xlabel("minutes")
fig.suptitle("fieldsync soak: mixed load on SQLite, sampled every 10 s", fontsize=11)
fig.tight_layout()
fig.savefig(out, dpi=80)
print(f"plot: {out}")
