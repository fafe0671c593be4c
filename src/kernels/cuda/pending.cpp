// CUDA builds: the ops whose CUDA kernel does not exist yet, one line each. Each raises a clear
// error when a CUDA context reaches it. Writing a kernel means deleting its line here (keeping it
// is a duplicate-symbol link error; dropping it without a kernel, an undefined-symbol one).
#include "kernels.h"

namespace wersa::cuda {

std::vector<std::string>& pending_list() {
  static std::vector<std::string> ops;
  return ops;
}
const std::vector<std::string>& pending_ops() { return pending_list(); }

#define PENDING(NAME, ARGS)                            \
  void NAME(Ctx&, const ARGS&) { unavailable(#NAME); } \
  static const bool NAME##_listed = (pending_list().push_back(#NAME), true);

PENDING(depthwise_conv_fwd, DepthwiseConvFwd)
PENDING(depthwise_conv_bwd, DepthwiseConvBwd)
PENDING(depthwise_conv_step, DepthwiseConvStep)
PENDING(depthwise_conv_window, DepthwiseConvWindow)
PENDING(feature_map_fwd, FeatureMapFwd)
PENDING(feature_map_bwd, FeatureMapBwd)
PENDING(gate_fwd, GateFwd)
PENDING(gate_bwd, GateBwd)
PENDING(haar_analysis_fwd, HaarAnalysisFwd)
PENDING(haar_analysis_bwd, HaarAnalysisBwd)
PENDING(haar_synthesis_fwd, HaarSynthesisFwd)
PENDING(haar_synthesis_bwd, HaarSynthesisBwd)
PENDING(haar_step, HaarStep)
PENDING(haar_filter_fwd, HaarFilterFwd)
PENDING(haar_filter_bwd, HaarFilterBwd)
PENDING(linear_attention_fwd, LinearAttnFwd)
PENDING(linear_attention_bwd, LinearAttnBwd)
PENDING(linear_attention_step, LinearAttnStep)
PENDING(linear_attention_state, LinearAttnState)

#undef PENDING

}  // namespace wersa::cuda
