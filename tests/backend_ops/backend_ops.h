// test_backend_ops: every op's CUDA kernel against its CPU kernel on the same random inputs, in the
// spirit of ggml's test-backend-ops. A case declares its tensors (inputs with their random fill,
// outputs, accumulated outputs) and how to call the op; the runner makes them on both devices
// with guard bands around each, poisons the outputs, runs the op on a CPU and on a CUDA context,
// and checks: the normalised error sum (a - b)^2 / sum b^2 of every output against the case's
// threshold, NaN and +-Inf where the CPU has them, the guard bands untouched, and a second CUDA run
// bitwise equal to the first. It runs on a GPU unchanged and under the CUDA simulator.
//
// Adding cases: write `void add_<family>_cases(std::vector<OpCase>& out)` in a file of this folder
// and call it from all_cases() (backend_ops.cpp).
#pragma once
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa::test {

enum class Role { In, Out, Acc };  // read only; overwritten (poisoned first); read and updated
enum class Fill { Normal, Uniform, Ids, Zero, Special };

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  Role role = Role::In;
  Fill fill = Fill::Normal;
  double a = 0, b = 1;  // Normal: mean, stddev; Uniform: [a, b); Ids: integers in [a, b)
  bool compare = true;  // outputs: compared (some, like saved statistics, may opt out)
};

// The tensors of one case, by name, on the device the op runs on.
class Bound {
 public:
  const Tensor& operator[](const std::string& name) const;
  std::map<std::string, Tensor> t;
};

struct OpCase {
  OpCase(std::string op_name, std::string case_name) : op(std::move(op_name)), name(std::move(case_name)) {}
  std::string op;    // the ops.inc name whose kernel it checks (coverage)
  std::string name;  // unique: op and shape, e.g. "rmsnorm_fwd N7 C33"
  std::vector<TensorSpec> tensors;
  double max_err = 1e-10;  // normalised error threshold (f32 default; f64 cases use ~1e-24)
  std::function<void(Ctx&, const Bound&)> run;

  // Builders: a tensor of each role.
  OpCase& in(const std::string& n, Shape s, DType dt = DType::F32, Fill f = Fill::Normal, double a = 0,
             double b = 1);
  OpCase& ids(const std::string& n, Shape s, int64_t lo, int64_t hi);  // I32 in [lo, hi)
  OpCase& out(const std::string& n, Shape s, DType dt = DType::F32, bool compare = true);
  OpCase& acc(const std::string& n, Shape s, DType dt = DType::F32);
};

// gtest prints a failing case by its name (not as bytes).
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

// Every case (backend_ops.cpp lists the families).
std::vector<OpCase> all_cases();

// The families, one per file.
void add_elementwise_cases(std::vector<OpCase>& out);
void add_mask_cases(std::vector<OpCase>& out);
void add_pool_cases(std::vector<OpCase>& out);
void add_rope_cases(std::vector<OpCase>& out);
void add_adamw_cases(std::vector<OpCase>& out);
void add_rmsnorm_cases(std::vector<OpCase>& out);
void add_layernorm_cases(std::vector<OpCase>& out);
void add_activation_cases(std::vector<OpCase>& out);
void add_swiglu_cases(std::vector<OpCase>& out);
void add_matmul_cases(std::vector<OpCase>& out);
void add_embedding_cases(std::vector<OpCase>& out);
void add_cross_entropy_cases(std::vector<OpCase>& out);
void add_conv_cases(std::vector<OpCase>& out);
void add_gate_cases(std::vector<OpCase>& out);
void add_feature_map_cases(std::vector<OpCase>& out);
void add_haar_cases(std::vector<OpCase>& out);
void add_linear_attention_cases(std::vector<OpCase>& out);
void add_softmax_attention_cases(std::vector<OpCase>& out);

}  // namespace wersa::test
