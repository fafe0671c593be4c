#!/usr/bin/env python3
"""The attention layer of a `wersa-bench train --ops --device cuda --json FILE` run against PyTorch's
scaled_dot_product_attention on the same shapes (a step of gpu-check.sh).

For each row (T, batch) of the JSON: the device time per step of the attention ops (the op names
below; each call synchronised, so a launch-bound op is counted with its synchronisation), divided
by the model's layers: one attention layer's forward + backward, without the q/k/v/o projections
and RoPE, which PyTorch's attention does not include either. Where PyTorch and a GPU are present,
scaled_dot_product_attention (causal, float32 and bfloat16) forward + backward on q, k, v of
[batch, heads, T, head_dim], median of CUDA-event timings after a warm-up. Prints a markdown table
and the ratio of the longest row's time per token to the shortest's (flat: within 15%).
With --json OUT also writes the rows and that ratio as JSON (for scripts/gpu-targets.py).
Exit status 0, also without PyTorch (its columns then say so); 1 when the JSON has no row."""
import argparse
import json
import statistics
import sys

ATTENTION_OPS = ("depthwise_conv", "gate_", "haar_", "feature_map", "linear_attention", "softmax_attention")


def attention_seconds(row):
    return sum(op["seconds_per_step"] for op in row.get("train_ops", [])
               if op["op"].startswith(ATTENTION_OPS))


def sdpa_ms(torch, batch, heads, t, d, dtype, reps):
    f = torch.nn.functional.scaled_dot_product_attention
    shape = (batch, heads, t, d)
    q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    dy = torch.randn(shape, device="cuda", dtype=dtype)
    times = []
    for i in range(reps + 2):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        y = f(q, k, v, is_causal=True)
        y.backward(dy)
        end.record()
        torch.cuda.synchronize()
        if i >= 2:
            times.append(start.elapsed_time(end))
        q.grad = k.grad = v.grad = None
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_json")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--head-dim", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", dest="json_out", default="")
    a = ap.parse_args()
    rows = [r for r in json.load(open(a.bench_json))["rows"] if r.get("status") == "ok" and r.get("train_ops")]
    if not rows:
        print("error: %s: no row with op times (run wersa-bench train --ops)" % a.bench_json, file=sys.stderr)
        return 1
    torch = None
    why = "no PyTorch"
    try:
        import torch as t
        if t.cuda.is_available():
            torch = t
        else:
            why = "PyTorch without a GPU"
    except Exception:
        pass
    print("| attention | T | batch | layer fwd+bwd ms | us/token | SDPA f32 ms | SDPA bf16 ms | SDPA f32 / layer |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    per_token = []
    out_rows = []
    for r in rows:
        ms = 1e3 * attention_seconds(r) / a.layers
        tokens = r["T"] * r["batch"]
        per_token.append((r["T"], 1e3 * ms / tokens))
        cols = [why, why, "-"]
        f32 = b16 = None
        if torch is not None:
            try:
                f32 = sdpa_ms(torch, r["batch"], a.heads, r["T"], a.head_dim, torch.float32, a.reps)
                b16 = sdpa_ms(torch, r["batch"], a.heads, r["T"], a.head_dim, torch.bfloat16, a.reps)
                cols = ["%.3f" % f32, "%.3f" % b16, "%.2fx" % (f32 / ms if ms > 0 else float("nan"))]
            except Exception as e:  # out of memory at long T, say
                f32 = b16 = None
                cols = ["failed: %s" % str(e).splitlines()[0][:60], "-", "-"]
        out_rows.append({"attention": r["attention"], "T": r["T"], "batch": r["batch"], "layer_ms": ms,
                         "us_per_token": per_token[-1][1], "sdpa_f32_ms": f32, "sdpa_bf16_ms": b16,
                         "sdpa": "measured" if f32 is not None else cols[0]})
        print("| %s | %d | %d | %.3f | %.4f | %s | %s | %s |" % (r["attention"], r["T"], r["batch"], ms,
                                                                per_token[-1][1], *cols))
    flat = None
    if len(per_token) > 1:
        lo, hi = min(per_token), max(per_token)
        flat = {"T_short": lo[0], "T_long": hi[0], "ratio": hi[1] / lo[1] if lo[1] > 0 else None}
        print("\ntime per token at T=%d over T=%d: %.2f (flat: within 1.15)" % (hi[0], lo[0], hi[1] / lo[1]
                                                                                if lo[1] > 0 else float("nan")))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": out_rows, "per_token_flat": flat}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
