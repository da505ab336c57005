// FusedAttention on the GPU against the CPU kernel: float32 (generic path), float16/bfloat16 (tensor cores for
// head sizes 64 and 128, generic otherwise), masks of several broadcast shapes, causal, tails, k transposed.
#include "backends/cuda/cuda_op_harness.h"

#ifdef KILN_WITH_CUDA
#include <cmath>
#include <limits>

using namespace kiln;
using namespace kiln::cudatest;

namespace {

struct Case {
  Dims q, k, v;
  Dims mask;  // empty: no mask
  bool causal = false;
  bool k_transposed = false;
  double scale = 0;  // 0: 1/sqrt(D)
  int neg_inf_row = -1;  // >= 0: that query row of the mask is all -inf (the mask must have full Sq, Sk)
};

double tol_for(DataType dt) {
  switch (dt) {
    case DataType::kFLOAT: return 1e-4;
    case DataType::kHALF: return 5e-3;
    default: return 3e-2;
  }
}

HostTensor mask_tensor(const Case& c, DataType dt) {
  HostTensor m = randf(c.mask, dt, 0.1, 2.0);
  if (c.neg_inf_row < 0) return m;
  const int64_t sk = c.mask.back(), sq = c.mask[c.mask.size() - 2];
  const int64_t outer = volume(c.mask) / (sq * sk);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < sk; ++j) {
      const int64_t idx = (o * sq + c.neg_inf_row) * sk + j;
      const float ninf = -std::numeric_limits<float>::infinity();
      if (dt == DataType::kFLOAT) m.mutable_data<float>()[idx] = ninf;
      else if (dt == DataType::kHALF) m.mutable_data<uint16_t>()[idx] = float_to_half(ninf);
      else m.mutable_data<uint16_t>()[idx] = float_to_bf16(ninf);
    }
  return m;
}

::testing::AssertionResult run_case(const Case& c, DataType dt, DataType mask_dt) {
  std::vector<HostTensor> in = {randf(c.q, dt), randf(c.k, dt), randf(c.v, dt)};
  if (!c.mask.empty()) in.push_back(mask_tensor(c, mask_dt));
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.q.back()));
  Options o;
  o.tol = tol_for(dt);
  return check_op("FusedAttention", in,
                  [&](ir::Attrs& a) {
                    a.set("scale", scale);
                    a.set("causal", int64_t{c.causal ? 1 : 0});
                    a.set("k_transposed", int64_t{c.k_transposed ? 1 : 0});
                  },
                  o);
}

void run_all(const Case& c, bool mask_f32_too = false) {
  for (DataType dt : float_types()) {
    EXPECT_TRUE(run_case(c, dt, dt)) << dtype_name(dt);
    if (mask_f32_too && dt != DataType::kFLOAT) {
      EXPECT_TRUE(run_case(c, dt, DataType::kFLOAT)) << dtype_name(dt) << " with a float32 mask";
    }
  }
}

}  // namespace

TEST(CudaFusedAttention, SquareNoMaskHeadSizes) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 128, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(Case{{2, 3, 128, d}, {2, 3, 128, d}, {2, 3, 128, d}, {}});
  }
}

TEST(CudaFusedAttention, BertMaskSingleQuery) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 128, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(Case{{2, 4, 1, d}, {2, 4, 77, d}, {2, 4, 77, d}, {2, 1, 1, 77}}, true);
  }
}

TEST(CudaFusedAttention, TailsWithFullMask) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 128, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(Case{{2, 2, 200, d}, {2, 2, 33, d}, {2, 2, 33, d}, {2, 2, 200, 33}});
  }
}

TEST(CudaFusedAttention, Causal) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 128, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(Case{{1, 2, 130, d}, {1, 2, 130, d}, {1, 2, 130, d}, {}, true});
    // Queries at the end of a longer key sequence (a KV cache), and more queries than keys (early rows see nothing).
    run_all(Case{{2, 2, 70, d}, {2, 2, 150, d}, {2, 2, 150, d}, {2, 1, 1, 150}, true});
    run_all(Case{{1, 2, 150, d}, {1, 2, 70, d}, {1, 2, 70, d}, {}, true});
  }
}

TEST(CudaFusedAttention, TransposedKeys) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 128, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(Case{{2, 3, 100, d}, {2, 3, d, 90}, {2, 3, 90, d}, {1, 1, 100, 90}, false, true});
  }
}

TEST(CudaFusedAttention, ThreeDimensionalAndBroadcastHeads) {
  KILN_REQUIRE_CUDA_DEVICE();
  run_all(Case{{6, 50, 64}, {6, 64, 50}, {6, 50, 64}, {}, false, true});  // ViT's [B*H, S, D] with k^T
  run_all(Case{{6, 65, 128}, {6, 65, 128}, {6, 65, 128}, {6, 65, 65}});
  run_all(Case{{2, 4, 64, 64}, {2, 1, 64, 64}, {2, 1, 64, 64}, {2, 1, 1, 64}});  // shared K/V heads
  run_all(Case{{1, 4, 64, 64}, {3, 4, 64, 64}, {3, 4, 64, 64}, {}});                // broadcast query batch
}

TEST(CudaFusedAttention, OddValueSizeAndLargeHeads) {
  KILN_REQUIRE_CUDA_DEVICE();
  run_all(Case{{1, 2, 37, 64}, {1, 2, 45, 64}, {1, 2, 45, 24}, {}});    // Dv != D: generic path
  run_all(Case{{1, 2, 40, 256}, {1, 2, 70, 256}, {1, 2, 70, 256}, {}});  // the largest head size
  run_all(Case{{1, 1, 5, 1}, {1, 1, 3, 1}, {1, 1, 3, 1}, {}, false, false, 0.7});
}

TEST(CudaFusedAttention, FullyMaskedRowGivesZero) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    Case c{{1, 2, 70, d}, {1, 2, 80, d}, {1, 2, 80, d}, {1, 1, 70, 80}};
    c.neg_inf_row = 3;
    run_all(c);
  }
}

#endif  // KILN_WITH_CUDA
