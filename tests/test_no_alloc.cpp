// Memory is planned, not allocated on the way: after the workspace and the optimizer are built and
// planned, a training step (batch staging, forward, backward, gradient norm, clipping, AdamW)
// and a decode step perform no heap allocation (operator new, counted by this test binary) and no
// device allocation (arenas, scratch), for every attention kind.
#include <atomic>
#include <cstdlib>
#include <new>

#include "testutil.h"
#include "wersa/model/generate.h"
#include "wersa/optim/optimizer.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_news{0};
}  // namespace

void* operator new(size_t n) {
  if (g_counting) ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig config(AttentionKind kind) {
  ModelConfig m;
  m.vocab_size = 41;
  m.dim = 32;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 40;
  m.attention.type = kind;
  m.attention.features = 8;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 8;
  return m;
}

struct Counted {
  int64_t news, arenas;
};
template <class F>
Counted count(F&& f) {
  const int64_t a0 = device_alloc_count();
  g_news = 0;
  g_counting = true;
  f();
  g_counting = false;
  return {g_news.load(), device_alloc_count() - a0};
}

}  // namespace

TEST(NoAllocation, ATrainingStepAllocatesNothing) {
  for (AttentionKind kind : attention_kinds())
    for (int v = 0; v < 3; ++v) {
      // train.recompute: the backward reruns each block; train.precision bf16: the mixed GEMMs'
      // scratch and the shadow refresh after every optimizer step
      const bool recompute = v == 1, bf16 = v == 2;
      const std::string what = std::string(attention_kind_name(kind)) + (recompute ? " (recompute)" : "") +
                               (bf16 ? " (bf16)" : "");
      Model m(config(kind), DType::F32);
      m.init(3);
      if (bf16) m.use_bf16_gemms();
      TrainConfig tc;
      AdamW adam(m);
      Workspace ws(m, RunSpec{2, 19, true, true, recompute});
      adam.plan(ws.ctx(), tc);
      m.refresh_bf16(ws.ctx());
      auto step = [&](int64_t s) {
        int32_t* ids = ws.host_ids.host<int32_t>();
        for (int64_t i = 0; i < 2 * ws.rows(); ++i)
          ids[i] = int32_t(rng_bits(uint64_t(s), 1, uint64_t(i)) % 41);
        ws.upload_ids();
        m.zero_grads();
        model_forward_device(m, ws);
        model_backward(m, ws, 1.0 / double(ws.rows()));
        adam.grad_norm(ws.ctx());
        adam.clip(ws.ctx(), 0.5);
        adam.step(ws.ctx(), tc, 1e-3, s);
      };
      step(1);  // a first step outside the count (OpenMP and BLAS set themselves up)
      const Counted c = count([&] { step(2); });
      EXPECT_EQ(c.news, 0) << what;
      EXPECT_EQ(c.arenas, 0) << what;
      EXPECT_GT(ws.scratch_bytes(), 0u) << what;
    }
}

TEST(NoAllocation, ADecodeStepAllocatesNothing) {
  for (AttentionKind kind : attention_kinds()) {
    Model m(config(kind), DType::F32, Device::CPU, false);
    m.init(4);
    DecodeState st(m, DecodeOptions{200, 16});
    prefill(m, st, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17});
    decode_step(m, st, 3);
    const Counted c = count([&] {
      for (int32_t t = 0; t < 20; ++t) decode_step(m, st, t);
    });
    EXPECT_EQ(c.news, 0) << attention_kind_name(kind);
    EXPECT_EQ(c.arenas, 0) << attention_kind_name(kind);
  }
}
