#!/usr/bin/env python3
"""scripts/gpu-targets.py on logs written here: each target met, missed and not measured, at the
limits' edges, so that the one GPU run's table can be trusted. Exit 0 when every case holds."""
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "gpu-targets.py")


def table(files, sim=False):
    with tempfile.TemporaryDirectory() as d:
        for name, doc in files.items():
            with open(os.path.join(d, name), "w") as f:
                json.dump(doc, f)
        out = subprocess.run([sys.executable, SCRIPT, d] + (["--sim"] if sim else []), capture_output=True,
                             text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("performance target", "---"):
            rows[cells[0].split(":")[0].split(" ")[0] + cells[0].split(" ")[1]] = (cells[1], cells[2])
    return out, rows


def train_row(T, share, precision="bf16", status="ok"):
    return {"T": T, "batch": 4, "attention": "wersa", "precision": precision, "status": status,
            "train_share_of_sgemm": share}


def long_row(T, per_token_kib, status="ok"):
    state = 1 << 30
    return {"T": T, "batch": 1, "status": status, "state_device_bytes": state,
            "peak_device_bytes": state + int(per_token_kib * 1024 * T)}


def attn(rows, ratio):
    return {"rows": rows, "per_token_flat": {"T_short": 4096, "T_long": 131072, "ratio": ratio}}


def arow(T, layer, f32, b16):
    return {"attention": "wersa", "T": T, "batch": 1, "layer_ms": layer, "us_per_token": 0,
            "sdpa_f32_ms": f32, "sdpa_bf16_ms": b16, "sdpa": "measured" if f32 is not None else "no PyTorch"}


def decode(d0, dd):
    return {"results": [{"test": "tg128", "depth": 0, "avg_ts": d0}, {"test": "tg128", "depth": 32768, "avg_ts": dd},
                        {"test": "pp512", "depth": 0, "avg_ts": 1.0}]}


failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


# Every target met (each at its edge: 40%, 1.15, 1.15x memory, 95%).
good = {
    "bench-train.json": {"rows": [train_row(4096, 0.40), train_row(4096, 0.10, precision="fp32")]},
    "attention.json": attn([arow(1024, 9.0, 1.0, 1.0), arow(4096, 1.0, 2.0, 1.5), arow(16384, 3.0, 9.0, 4.0)], 1.15),
    "bench-long.json": {"rows": [long_row(16384, 10.0), long_row(131072, 11.5)]},
    "bench-decode.json": decode(100.0, 95.0),
}
out, rows = table(good)
for k, (_, verdict) in rows.items():
    check("all met: " + k, verdict, "yes")
check("all met: count", "performance targets met: 5 of 5" in out, True)
check("all met: five rows", len(rows), 5)

# Each missed just past its edge (the fp32 row's share does not count; a T below 4096 losing to
# SDPA does not count either, one from 4096 up does).
bad = {
    "bench-train.json": {"rows": [train_row(4096, 0.399), train_row(4096, 0.9, precision="fp32")]},
    "attention.json": attn([arow(1024, 0.5, 1.0, 1.0), arow(4096, 1.0, 2.0, 1.5), arow(65536, 5.0, 9.0, 4.9)], 1.16),
    "bench-long.json": {"rows": [long_row(16384, 10.0), long_row(131072, 11.6)]},
    "bench-decode.json": decode(100.0, 94.9),
}
out, rows = table(bad)
for k, (_, verdict) in rows.items():
    check("all missed: " + k, verdict, "**no**")
check("all missed: count", "performance targets met: 0 of 5" in out, True)

# Out of memory at the long T is a miss; no PyTorch, no logs: not measured.
out, rows = table({"bench-long.json": {"rows": [long_row(16384, 10.0), long_row(131072, 0, status="oom")]},
                   "attention.json": attn([arow(4096, 1.0, None, None)], None)})
verdicts = [v for _, v in rows.values()]
check("oom and missing: verdicts", sorted(verdicts), sorted(["**no**"] + ["not measured"] * 4))
check("oom and missing: count", "performance targets met: 0 of 5" in out, True)

# The simulator's tiny shapes are reported, never judged.
out, rows = table(good, sim=True)
check("sim: verdicts", set(v for _, v in rows.values()), {"not judged (simulator)"})
check("sim: no count", "performance targets met" in out, False)

for f in failures:
    print("FAIL " + f)
print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
