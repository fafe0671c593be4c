// Internal to the kernels and the dispatchers: the argument structs of every op (the public op
// headers, which depend on the tensor layer only).
#pragma once
#include "wersa/ops/activation.h"
#include "wersa/ops/adamw.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/cross_entropy.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/embedding.h"
#include "wersa/ops/feature_map.h"
#include "wersa/ops/gate.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/layernorm.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/rmsnorm.h"
#include "wersa/ops/rope.h"
#include "wersa/ops/softmax_attention.h"
#include "wersa/ops/swiglu.h"
