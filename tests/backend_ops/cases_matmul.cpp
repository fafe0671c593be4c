// test_backend_ops cases: the linear layer (matmul_fwd, matmul_bwd, matmul_fwd_bf16w, and the mixed
// precision of train.precision bf16: matmul_fwd_mixed, matmul_bwd_mixed).
#include "backend_ops.h"
#include "wersa/ops/matmul.h"

namespace wersa::test {

namespace {

const char* dname(DType dt) { return dt == DType::F32 ? "f32" : "f64"; }

// (I, O) pairs over the widths 1, 7, 33, 64, 100: each width as I against two others as O.
std::vector<std::pair<int64_t, int64_t>> widths() {
  const int64_t w[] = {1, 7, 33, 64, 100};
  std::vector<std::pair<int64_t, int64_t>> v;
  for (int i = 0; i < 5; ++i)
    for (int k : {0, 2}) v.push_back({w[i], w[(i + k + 1) % 5]});
  return v;
}

// Mixed precision (bf16 = true): f32 activations rounded to bf16, bf16 weights, f32 accumulation.
// Both backends multiply the same bf16 values exactly, so only the order of the f32 sums differs
// (the CPU sums the weight gradient over row tiles of 512, cuBLAS in its own order): the threshold
// of f32 GEMMs. N = 1100 crosses the CPU's row tiles.
void add_mixed_cases(std::vector<OpCase>& out) {
  const DType f32 = DType::F32, b16 = DType::BF16;
  for (int64_t N : {1, 5, 64, 1100}) {
    for (auto [I, O] : {std::pair<int64_t, int64_t>{1, 7}, {33, 64}, {100, 33}, {64, 1}}) {
      const std::string sz = " N" + std::to_string(N) + " I" + std::to_string(I) + " O" + std::to_string(O);
      for (int v = 0; v < 4; ++v) {
        const bool bias = v & 1, acc = v & 2;
        OpCase c("matmul_fwd_mixed", "matmul_fwd_mixed" + sz + (bias ? " bias" : "") + (acc ? " y+=" : ""));
        c.in("x", {N, I}, f32).in("w", {O, I}, b16);
        if (bias) c.in("b", {O}, f32);
        if (acc)
          c.acc("y", {N, O}, f32);
        else
          c.out("y", {N, O}, f32);
        c.max_err = 1e-12;
        c.run = [bias, acc](Ctx& ctx, const Bound& t) {
          matmul_fwd(ctx, MatmulFwd{t["y"], t["x"], t["w"], bias ? t["b"] : Tensor{}, acc, true});
        };
        out.push_back(c);
      }
      struct Variant {
        const char* name;
        bool dx, dw, db, acc_dx;
      };
      for (const Variant& v :
           {Variant{"all", true, true, true, false}, Variant{"all dx+=", true, true, true, true},
            Variant{"dx", true, false, false, false}, Variant{"dw", false, true, false, false},
            Variant{"db", false, false, true, false}}) {
        OpCase c("matmul_bwd_mixed", "matmul_bwd_mixed" + sz + " " + v.name);
        c.in("dy", {N, O}, f32).in("x", {N, I}, f32).in("w", {O, I}, b16);
        if (v.dx) {
          if (v.acc_dx)
            c.acc("dx", {N, I}, f32);
          else
            c.out("dx", {N, I}, f32);
        }
        if (v.dw) c.acc("dw", {O, I}, f32);
        if (v.db) c.acc("db", {O}, f32);
        c.max_err = 1e-12;
        c.run = [v](Ctx& ctx, const Bound& t) {
          matmul_bwd(ctx, MatmulBwd{v.dx ? t["dx"] : Tensor{}, v.dw ? t["dw"] : Tensor{},
                                    v.db ? t["db"] : Tensor{}, t["dy"], t["x"], t["w"], v.acc_dx, true});
        };
        out.push_back(c);
      }
    }
  }
  // NaN and infinities in x and dy stay NaN and infinities through the rounding.
  OpCase f("matmul_fwd_mixed", "matmul_fwd_mixed N37 I45 O29 special");
  f.in("x", {37, 45}, f32, Fill::Special).in("w", {29, 45}, b16).in("b", {29}, f32).out("y", {37, 29}, f32);
  f.max_err = 1e-12;
  f.run = [](Ctx& ctx, const Bound& t) {
    matmul_fwd(ctx, MatmulFwd{t["y"], t["x"], t["w"], t["b"], false, true});
  };
  out.push_back(f);
  OpCase b("matmul_bwd_mixed", "matmul_bwd_mixed N37 I45 O29 special");
  b.in("dy", {37, 29}, f32, Fill::Special).in("x", {37, 45}, f32).in("w", {29, 45}, b16);
  b.out("dx", {37, 45}, f32).acc("dw", {29, 45}, f32).acc("db", {29}, f32);
  b.max_err = 1e-12;
  b.run = [](Ctx& ctx, const Bound& t) {
    matmul_bwd(ctx, MatmulBwd{t["dx"], t["dw"], t["db"], t["dy"], t["x"], t["w"], false, true});
  };
  out.push_back(b);
}

}  // namespace

void add_matmul_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double err = dt == DType::F32 ? 1e-12 : 1e-26;
    for (int64_t N : {1, 5, 64, 130}) {
      for (auto [I, O] : widths()) {
        const std::string sz = std::string(dname(dt)) + " N" + std::to_string(N) + " I" + std::to_string(I) +
                               " O" + std::to_string(O);
        // Forward: bias or not, y overwritten or accumulated.
        for (int v = 0; v < 4; ++v) {
          const bool bias = v & 1, acc = v & 2;
          OpCase c("matmul_fwd", "matmul_fwd " + sz + (bias ? " bias" : "") + (acc ? " y+=" : ""));
          c.in("x", {N, I}, dt).in("w", {O, I}, dt);
          if (bias) c.in("b", {O}, dt);
          if (acc)
            c.acc("y", {N, O}, dt);
          else
            c.out("y", {N, O}, dt);
          c.max_err = err;
          c.run = [bias, acc](Ctx& ctx, const Bound& t) {
            matmul_fwd(ctx, MatmulFwd{t["y"], t["x"], t["w"], bias ? t["b"] : Tensor{}, acc});
          };
          out.push_back(c);
        }
        // Backward: every gradient, dx accumulated, each alone, dx and dw without db.
        struct Variant {
          const char* name;
          bool dx, dw, db, acc_dx;
        };
        for (const Variant& v :
             {Variant{"all", true, true, true, false}, Variant{"all dx+=", true, true, true, true},
              Variant{"dx", true, false, false, false}, Variant{"dx+=", true, false, false, true},
              Variant{"dw", false, true, false, false}, Variant{"db", false, false, true, false},
              Variant{"dx dw", true, true, false, false}}) {
          OpCase c("matmul_bwd", "matmul_bwd " + sz + " " + v.name);
          c.in("dy", {N, O}, dt).in("x", {N, I}, dt).in("w", {O, I}, dt);
          if (v.dx) {
            if (v.acc_dx)
              c.acc("dx", {N, I}, dt);
            else
              c.out("dx", {N, I}, dt);
          }
          if (v.dw) c.acc("dw", {O, I}, dt);
          if (v.db) c.acc("db", {O}, dt);
          c.max_err = err;
          c.run = [v](Ctx& ctx, const Bound& t) {
            matmul_bwd(ctx, MatmulBwd{v.dx ? t["dx"] : Tensor{}, v.dw ? t["dw"] : Tensor{},
                                      v.db ? t["db"] : Tensor{}, t["dy"], t["x"], t["w"], v.acc_dx});
          };
          out.push_back(c);
        }
      }
    }
    // NaN and infinities in x (forward) and dy (backward) propagate as on the CPU.
    for (int64_t N : {1, 37}) {
      const std::string sz = std::string(dname(dt)) + " N" + std::to_string(N) + " I45 O29 special";
      OpCase f("matmul_fwd", "matmul_fwd " + sz);
      f.in("x", {N, 45}, dt, Fill::Special).in("w", {29, 45}, dt).in("b", {29}, dt).out("y", {N, 29}, dt);
      f.max_err = err;
      f.run = [](Ctx& ctx, const Bound& t) { matmul_fwd(ctx, MatmulFwd{t["y"], t["x"], t["w"], t["b"]}); };
      out.push_back(f);
      OpCase b("matmul_bwd", "matmul_bwd " + sz);
      b.in("dy", {N, 29}, dt, Fill::Special).in("x", {N, 45}, dt).in("w", {29, 45}, dt);
      b.out("dx", {N, 45}, dt).acc("dw", {29, 45}, dt).acc("db", {29}, dt);
      b.max_err = err;
      b.run = [](Ctx& ctx, const Bound& t) {
        matmul_bwd(ctx, MatmulBwd{t["dx"], t["dw"], t["db"], t["dy"], t["x"], t["w"]});
      };
      out.push_back(b);
    }
    // A tall db (many row chunks in the two-pass column sum) and a wide one.
    for (auto [N, O] : {std::pair<int64_t, int64_t>{3000, 3}, {40, 1500}}) {
      OpCase b("matmul_bwd", std::string("matmul_bwd ") + dname(dt) + " N" + std::to_string(N) + " I5 O" +
                                 std::to_string(O) + " db tall/wide");
      b.in("dy", {N, O}, dt).in("x", {N, 5}, dt).in("w", {O, 5}, dt).acc("db", {O}, dt).acc("dw", {O, 5}, dt);
      b.max_err = err;
      b.run = [](Ctx& ctx, const Bound& t) {
        matmul_bwd(ctx, MatmulBwd{Tensor{}, t["dw"], t["db"], t["dy"], t["x"], t["w"]});
      };
      out.push_back(b);
    }
    // bf16 weights: the GEMV (N = 1) and the tiled widening (N > 1).
    for (int64_t N : {1, 5, 64}) {
      for (auto [I, O] : {std::pair<int64_t, int64_t>{1, 7}, {33, 64}, {100, 33}, {64, 1}}) {
        for (int v = 0; v < 3; ++v) {
          const bool bias = v >= 1, acc = v == 2;
          OpCase c("matmul_fwd_bf16w", std::string("matmul_fwd_bf16w ") + dname(dt) + " N" +
                                           std::to_string(N) + " I" + std::to_string(I) + " O" +
                                           std::to_string(O) + (bias ? " bias" : "") + (acc ? " y+=" : ""));
          c.in("x", {N, I}, dt).in("w", {O, I}, DType::BF16);
          if (bias) c.in("b", {O}, dt);
          if (acc)
            c.acc("y", {N, O}, dt);
          else
            c.out("y", {N, O}, dt);
          c.max_err = err;
          c.run = [bias, acc](Ctx& ctx, const Bound& t) {
            matmul_fwd(ctx, MatmulFwd{t["y"], t["x"], t["w"], bias ? t["b"] : Tensor{}, acc});
          };
          out.push_back(c);
        }
      }
    }
    // More weights than one widened tile (4M): two tiles, the second of 3 rows.
    OpCase t("matmul_fwd_bf16w", std::string("matmul_fwd_bf16w ") + dname(dt) + " N3 I1024 O4099 bias tiles");
    t.in("x", {3, 1024}, dt).in("w", {4099, 1024}, DType::BF16).in("b", {4099}, dt).out("y", {3, 4099}, dt);
    t.max_err = err;
    t.run = [](Ctx& ctx, const Bound& b) { matmul_fwd(ctx, MatmulFwd{b["y"], b["x"], b["w"], b["b"]}); };
    out.push_back(t);
  }
  add_mixed_cases(out);
}

}  // namespace wersa::test
