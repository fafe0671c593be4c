// The causal language model as the engine runs it everywhere: one trunk (embedding, blocks, final
// RMSNorm) and one head (the LM head: projection, tied or not, and the fused cross-entropy).
// Training, evaluation, chunked prefill and token-by-token decoding all run the same block
// function (src/model/block.cpp, the one place that lists a block's ops) over the rows of a
// Workspace; decoding is that function over one row with a generation state.
//
// Memory: parameters, gradients and buffers live in arenas of the Model; a Workspace holds the
// activations of one shape of run and its execution context, planned once (plan_activations): the
// activation bytes and the scratch bytes of the run are known when the Workspace is built, and
// nothing is allocated afterwards. Model and training code never touch device memory directly:
// ids go up in one upload, the loss is reduced by an op and read back once.
#pragma once
#include <memory>
#include <vector>

#include "wersa/model/config.h"
#include "wersa/model/params.h"
#include "wersa/tensor/context.h"

namespace wersa {

namespace detail {
class Attention;
}

class Model {
 public:
  // Plans and allocates parameters (and, when `trainable`, gradients) in dtype `dt` on `dev`.
  Model(const ModelConfig& cfg, DType dt = DType::F32, Device dev = Device::CPU, bool trainable = true);
  // A copy of `src` on another device (parameters and buffers; one copy per arena), with
  // gradients when `src` has them.
  Model(const Model& src, Device dev);
  // The same, with gradients when `trainable` (a training run's model, initialised on the CPU).
  Model(const Model& src, Device dev, bool trainable);
  // An inference copy of an f32 CPU model whose linear-layer weights (the parameters declared
  // bf16_ok: projections, FFN, embedding/LM head, classifier and gate matrices) are stored in
  // `weights` = BF16, each rounded once to nearest even; norms, biases, scales and buffers stay
  // f32, and every op still computes in f32. Not trainable, CPU only (wersa-generate --weights).
  Model(const Model& src, DType weights);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  void init(uint64_t seed);  // parameters and random-feature buffers from one seed (on the CPU)
  void zero_grads();

  // Mixed precision (train.precision bf16): a bf16 shadow of the parameters declared bf16_ok, in its
  // own arena on the model's device, that every GEMM of the model reads (matmul's bf16 flag: its
  // activation operands rounded to bf16, f32 accumulation into f32 outputs and gradients). The f32
  // parameters stay the master weights: the optimizer updates them and checkpoints hold them.
  // use_bf16_gemms plans and allocates the shadow (zero: refresh it before the first forward);
  // refresh_bf16 sets shadow = bf16(master), one convert_bf16 per bf16_ok tensor, after init or
  // loading and after every optimizer step (AdamW::step calls it); without a shadow it does nothing.
  void use_bf16_gemms();
  void refresh_bf16(Ctx& ctx) const;
  bool bf16_gemms() const { return shadow_arena_ != nullptr; }
  size_t shadow_bytes() const;
  // The weights the GEMMs read (the bf16_ok slots): the shadow with bf16_gemms(), else params.
  const ModelParams& gemm_weights() const { return shadow_arena_ ? shadow_ : params; }

  const ModelConfig& config() const { return cfg_; }
  DType dtype() const { return dt_; }         // of the activations (and of every parameter but bf16 weights)
  DType weight_dtype() const { return wt_; }  // of the bf16_ok parameters: dt_ or BF16
  Device device() const { return dev_; }
  int64_t num_params() const;
  bool trainable() const { return grads_arena_ != nullptr; }
  const detail::Attention& attention() const { return *attn_; }
  // Whether the attention's generation state holds every position (a KV cache), so that
  // generation needs a context length.
  bool generation_needs_context() const;

  ModelParams params, grads;  // grads: undefined tensors when not trainable
  ModelBuffers buffers;
  // Declarations of the parameters and buffers, in arena order (params_arena().tensors()[i] is
  // param_decls()[i]): role, init, weight decay.
  const std::vector<ParamDecl>& param_decls() const { return param_decls_; }
  const std::vector<ParamDecl>& buffer_decls() const { return buffer_decls_; }
  Arena& params_arena() const { return *params_arena_; }
  Arena& grads_arena() const { return *grads_arena_; }
  Arena& buffers_arena() const { return *buffers_arena_; }

 private:
  void plan();
  ModelConfig cfg_;
  DType dt_, wt_;
  Device dev_;
  std::unique_ptr<detail::Attention> attn_;
  std::vector<ParamDecl> param_decls_, buffer_decls_;
  std::unique_ptr<Arena> params_arena_, grads_arena_, buffers_arena_;
  std::unique_ptr<Arena> shadow_arena_;  // bf16 shadow weights (use_bf16_gemms)
  ModelParams shadow_;
};

// Activations of one layer (every tensor has the run's rows as its leading dimension).
struct LayerActs {
  Tensor x, u, rstd1;   // block input, RMSNorm(x), its 1/rms (rstd only kept for a backward)
  Tensor q, k, v;       // projections [N, H*d], [N, Hkv*d] (q, k after RoPE)
  Slots attn;           // the attention kind's own activations
  Tensor o;             // attention output, before Wo [N, H*d]
  Tensor h, u2, rstd2;  // after the attention residual, its RMSNorm
  Tensor gate_up, act;  // SwiGLU: [gate, up] of each row [N, 2 F_ffn], its output [N, F_ffn]
  LayerActs rows(int64_t n) const;
};

// Gradients of the activations in a backward (overwritten, shared by all layers).
struct BlockGrads {
  Tensor dres, du, dq, dk, dv, dout, dgate_up, dact;  // dres: of the residual stream
  Slots attn;
  BlockGrads rows(int64_t n) const;
};

// What a Workspace is planned for.
struct RunSpec {
  int64_t batch = 1, seq = 1;  // B sequences of up to T positions (rows N = B T)
  bool backward = false;       // keep every layer's activations and plan the backward
  // The model's head: for a language model, logits and per-token losses of every row; for a
  // classifier, each sequence's pooled row, class logits and loss. false: the trunk only.
  bool head = true;
  // With a backward: keep only each block's input (ws.block_inputs) and one shared set of block
  // activations; the backward recomputes each block's activations from its input before running
  // its backward (train.recompute). The gradients are bitwise those of the stored activations.
  bool recompute = false;
  // Language model: rows of one head tile (0: chosen from the vocabulary, the device and the
  // activation memory: 4 to 16 MiB of f32 logits per tile on a CPU). See head_tile_rows and
  // lm_head_fwd in src/model/block.cpp.
  int64_t head_rows = 0;
  // Language model, forward only: keep the logits of every row in ws.logits [N, V] (for callers
  // that read them; the losses need no more than one tile at a time).
  bool keep_logits = false;
};

class Workspace {
 public:
  Workspace(const Model& model, const RunSpec& spec);
  Workspace(const Model& model, int64_t batch, int64_t seq, bool for_backward = true);
  ~Workspace();
  int64_t batch() const { return spec_.batch; }
  int64_t seq() const { return spec_.seq; }
  int64_t rows() const { return spec_.batch * spec_.seq; }
  const RunSpec& spec() const { return spec_; }
  size_t bytes() const;          // activations and ids
  size_t scratch_bytes() const;  // the context's planned scratch
  Ctx& ctx() { return ctx_; }

  // Ids on the model's device: tokens, targets [N] i32 (target -1 = no loss at that position).
  Tensor tokens, targets;
  // Host staging of the ids, [2, N] i32 (row 0 tokens, row 1 targets): fill it, then upload_ids()
  // (one copy; on the CPU it is the device tensor itself and the upload does nothing).
  Tensor host_ids;
  void upload_ids();
  // LM: [N, V], [N]; classifier: [B, C], [B] (with spec.head). Unless spec.keep_logits, a language
  // model keeps no logits of all rows: its head runs tile by tile (logits [R, V] of R = head_rows()
  // rows and their cross-entropy; with a backward also its gradient, flowing to xf and the head
  // weight) and `logits` is that one tile. With a backward, `dhead` [V, D] holds the head weight's
  // gradient of the last forward before the loss scale (the backward adds it to the model's).
  Tensor logits, losses;
  Tensor dhead;
  int64_t head_rows() const { return head_rows_; }
  // Classifier only: per sequence its real length and its class, on the device, [B] i32 each, and
  // their host staging [2, B] (row 0 lengths, row 1 labels; uploaded by upload_ids()); the pooled
  // trunk output [B, D] and, with a backward, its gradient.
  Tensor lengths, labels, host_docs, pooled, dpooled;
  // Optional per-class loss weights [C] on the model's device, set by the caller (train.class_weights):
  // the loss becomes sum_b w[y_b] l_b, and the stats count sum_b w[y_b]. Undefined: every weight 1.
  Tensor class_weights;
  Tensor loss_stats;  // f64 [2]: sum of the counted losses and their count (loss_sum_fwd)
  // One LayerActs per layer with a backward; otherwise (or with spec.recompute) one set shared by
  // every layer.
  std::vector<LayerActs> acts;
  // spec.recompute: the input of every block [N, D] (the x of its LayerActs); empty otherwise.
  std::vector<Tensor> block_inputs;
  Tensor x_out;      // output of the last block [N, D]
  Tensor xf, rstdf;  // trunk output: final RMSNorm of x_out, and its 1/rms
  BlockGrads g;      // backward only

 private:
  RunSpec spec_;
  int64_t head_rows_ = 0;
  Ctx ctx_;
  Tensor ids_, docs_;
  std::unique_ptr<Arena> arena_, iarena_, host_arena_;
};

// Activations of a run (one function for every caller): per-layer sets when `backward`, one
// shared set otherwise or with `recompute` (then every block's input in `block_inputs`); the
// backward's temporaries; the trunk's output.
void plan_activations(Arena& arena, const Model& m, int64_t rows, bool backward, bool recompute,
                      std::vector<LayerActs>& acts, std::vector<Tensor>& block_inputs, BlockGrads* g,
                      Tensor* x_out, Tensor* xf, Tensor* rstdf);

// Forward over the workspace's ids: trunk, LM head, per-token losses in ws.losses and
// [sum, count] in `stats` (f64 [2] on the model's device; ws.loss_stats when undefined). No host
// access.
void model_forward_device(Model& m, Workspace& ws, const Tensor& stats = {});
// The same, then one read-back of the stats: returns the sum of the losses, *count = counted targets.
double model_forward(Model& m, Workspace& ws, int64_t* count = nullptr);
// Backward of (loss_scale * sum of losses): accumulates into m.grads. Needs the forward's ws.
void model_backward(Model& m, Workspace& ws, double loss_scale);

// The classifier (task.type classify) over the first B sequences of T rows (B <= ws.batch(),
// T <= ws.seq(): a batch padded to its longest document): tokens in row 0 of ws.host_ids (B*T,
// sequence-major), lengths and labels in ws.host_docs, then ws.upload_ids(). Forward: trunk,
// pooling of each sequence's real rows, class logits ws.logits [B, C], per-document losses
// ws.losses [B], [sum, count] into `stats` (ws.loss_stats when undefined). A label of -1 counts
// no loss (a document only predicted). Padded rows never change a real row or the pooling: with
// bidirectional attention the lengths mask them out of the gate convolution, the linear-attention
// sums and the softmax keys (spec "Classification"); causal attention needs no mask.
void classify_forward_device(Model& m, Workspace& ws, int64_t B, int64_t T, const Tensor& stats = {});
// The same, then one read-back: returns the sum of the losses, *count = documents with a label.
double classify_forward(Model& m, Workspace& ws, int64_t B, int64_t T, int64_t* count = nullptr);
// Backward of (loss_scale * sum of losses): accumulates into m.grads; with trunk = false only the
// head's gradients (the trunk frozen: its backward is skipped). Needs the forward's ws.
void classify_backward(Model& m, Workspace& ws, int64_t B, int64_t T, double loss_scale, bool trunk = true);

// A double read back from a device tensor of f64 (0 while `ctx` is planning).
double read_f64(const Ctx& ctx, const Tensor& t, int64_t i);

}  // namespace wersa
