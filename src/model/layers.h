// Internal to the model: the attention sub-layer (WERSA or softmax) of one block. The forward
// reads a.x and a.u and writes a.h = a.x + Attn(a.u); the backward reads ws.g.dres (the gradient
// of a.h), accumulates parameter gradients into gp and ADDS dL/du into ws.g.du (overwriting it
// first: du is the gradient of u from the attention only).
#pragma once
#include "wersa/model/model.h"

namespace wersa::detail {

void attention_fwd(const Model& m, int layer, const LayerActs& a, Workspace& ws);
void attention_bwd(Model& m, int layer, const LayerActs& a, Workspace& ws);

}  // namespace wersa::detail
