#!/usr/bin/env python3
"""The performance targets of the CUDA issue, judged from the JSON that gpu-check.sh's benchmark
steps leave in its logs directory; prints a markdown table (target, measured, met).

  bench-train.json      wersa-bench train, configs/base.json in train.precision bf16: the step's
                        model FLOP/s over the mixed-precision GEMM rate probed beside each step
  attention.json        scripts/attention-compare.py --json: the WERSA attention layer (forward +
                        backward) against PyTorch's scaled_dot_product_attention, and its time per
                        token from the shortest to the longest T
  bench-long.json       wersa-bench train --recompute at long T: the longest sequence trains, and
                        its device memory per token against the shortest's
  bench-decode.json     wersa-bench decode: tg at the deepest depth over depth 0

A target whose rows are missing (a step failed or ran out of time) is "not measured". With --sim
the shapes are the simulator's tiny ones: the figures are printed and not judged. Exit status 0
(the judgement is the table's; gpu-check.sh's own exit status is about correctness)."""
import argparse
import json
import os
import sys

MFU = 0.40        # bf16 training at T=4096: model FLOP/s over the bf16 GEMM rate of the same run
SDPA_FROM = 4096  # the attention layer beats SDPA from this T up
FLAT = 1.15       # time (and memory) per token, longest T over shortest
DECODE = 0.95     # tg at the deepest depth over depth 0


def load(logs, name):
    try:
        with open(os.path.join(logs, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ok_rows(doc):
    return [r for r in (doc or {}).get("rows", []) if r.get("status", "ok") == "ok"]


def mfu(logs):
    rows = [r for r in ok_rows(load(logs, "bench-train.json")) if r.get("precision") == "bf16"]
    if not rows:
        return None, "no bf16 row"
    r = max(rows, key=lambda r: r["T"])
    share = r.get("train_share_of_sgemm", 0.0)
    return share >= MFU, "%.1f%% of the bf16 GEMM rate at T=%d (%s)" % (100 * share, r["T"], r["attention"])


def sdpa(logs):
    doc = load(logs, "attention.json")
    rows = [r for r in (doc or {}).get("rows", []) if r["T"] >= SDPA_FROM]
    if not rows:
        return None, "no row from T=%d" % SDPA_FROM
    if any(r["sdpa_bf16_ms"] is None for r in rows):
        return None, "SDPA not measured (%s)" % rows[0]["sdpa"]
    parts, met = [], True
    for r in rows:
        best = min(r["sdpa_f32_ms"], r["sdpa_bf16_ms"])
        met = met and r["layer_ms"] < best
        parts.append("T=%d %.2f ms vs %.2f (f32) / %.2f (bf16)" % (r["T"], r["layer_ms"], r["sdpa_f32_ms"],
                                                                   r["sdpa_bf16_ms"]))
    return met, "; ".join(parts)


def flat_time(logs):
    flat = (load(logs, "attention.json") or {}).get("per_token_flat")
    if not flat or flat.get("ratio") is None:
        return None, "fewer than two lengths"
    return flat["ratio"] <= FLAT, "T=%d over T=%d: %.2f" % (flat["T_long"], flat["T_short"], flat["ratio"])


def long_memory(logs):
    rows = ok_rows(load(logs, "bench-long.json"))
    if len(rows) < 2:
        doc = load(logs, "bench-long.json")
        oom = [r["T"] for r in (doc or {}).get("rows", []) if r.get("status") == "oom"]
        return (False if oom else None), ("out of memory at T=%s" % oom if oom else "fewer than two lengths")
    short, long_ = min(rows, key=lambda r: r["T"]), max(rows, key=lambda r: r["T"])

    def per_token(r):
        peak, state = r.get("peak_device_bytes", 0), r.get("state_device_bytes", 0)
        if not peak:  # a CPU row
            peak, state = r.get("peak_rss_bytes", 0), r.get("state_rss_bytes", 0)
        return (peak - state) / (r["T"] * r["batch"])

    a, b = per_token(short), per_token(long_)
    ratio = b / a if a > 0 else float("inf")
    return ratio <= FLAT, "T=%d trains; memory per token %.1f KiB at T=%d, %.1f KiB at T=%d (%.2fx)" % (
        long_["T"], b / 1024, long_["T"], a / 1024, short["T"], ratio)


def decode(logs):
    doc = load(logs, "bench-decode.json")
    tg = [r for r in (doc or {}).get("results", []) if r.get("test", "").startswith("tg")]
    if not tg:
        return None, "no tg row"
    deep = max(r["depth"] for r in tg)
    d0 = [r["avg_ts"] for r in tg if r["depth"] == 0]
    dd = [r["avg_ts"] for r in tg if r["depth"] == deep]
    if not d0 or deep == 0:
        return None, "no depth-0 and deeper pair"
    ratio = dd[0] / d0[0]
    return ratio >= DECODE, "%s at depth %d: %.1f t/s, %.1f%% of depth 0 (%.1f t/s)" % (
        tg[0]["test"], deep, dd[0], 100 * ratio, d0[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs")
    ap.add_argument("--sim", action="store_true")
    a = ap.parse_args()
    targets = [
        ("bf16 training of configs/base.json at T=4096: model FLOP/s >= %d%% of the bf16 GEMM rate" % (100 * MFU),
         mfu),
        ("the WERSA attention layer (fwd + bwd) faster than SDPA (f32 and bf16) from T=%d" % SDPA_FROM, sdpa),
        ("the attention layer's time per token flat (within %d%%) from 4k to 128k" % round(100 * (FLAT - 1)),
         flat_time),
        ("one 131,072-token sequence trains; device memory per token flat (within %d%%)" % round(100 * (FLAT - 1)),
         long_memory),
        ("decode: tg128 at depth 32768 >= %d%% of depth 0" % round(100 * DECODE), decode),
    ]
    print("| performance target | measured | met |")
    print("| --- | --- | --- |")
    met_count = 0
    for name, judge in targets:
        met, what = judge(a.logs)
        if a.sim:
            verdict = "not judged (simulator)"
        elif met is None:
            verdict = "not measured"
        else:
            verdict = "yes" if met else "**no**"
            met_count += bool(met)
        print("| %s | %s | %s |" % (name, what, verdict))
    if not a.sim:
        print("\nperformance targets met: %d of %d" % (met_count, len(targets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
