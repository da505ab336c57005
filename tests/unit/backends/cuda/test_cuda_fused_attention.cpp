// FusedAttention on the GPU against the CPU kernel, through the registered kernel without cuBLASLt (so the
// direct kernels: float32 on the generic path, float16/bfloat16 on the flash kernel for head sizes 64 and 128,
// generic otherwise), masks of several broadcast shapes, causal, tails, k transposed, and the storage layouts
// (tokens-major, packed, 3-D tokens-major) on both direct kernels.
#include "backends/cuda/attention_test_cases.h"

#ifdef KILN_WITH_CUDA
using namespace kiln;
using namespace kiln::cudatest;

namespace {

using Case = AttentionCase;

::testing::AssertionResult run_case(const Case& c, DataType dt, DataType mask_dt) {
  Options o;
  o.tol = attention_tol(dt);
  return check_op("FusedAttention", attention_inputs(c, dt, mask_dt), [&](ir::Attrs& a) { set_attention_attrs(a, c); }, o);
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

// The storage layouts (ir/ops/fused_attention_format.h) through the direct kernels: float32 and D = 40 on the
// generic kernel, float16/bfloat16 with D = 64 on the flash kernel. BERT's 128 and ViT's 197 tokens.
TEST(CudaFusedAttention, TokensMajorAndPackedLayouts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : {64, 40}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    run_all(tokens_major_case(2, 12, 128, 128, d, {2, 1, 1, 128}), true);
    run_all(tokens_major_case(2, 2, 70, 150, d, {2, 1, 1, 150}, true));  // causal, Sq != Sk
    run_all(packed_case(2, 12, 197, d));
    Case mixed{{2, 100, 3, d}, {2, 3, d, 90}, {2, 90, 3, d}, {1, 1, 100, 90}, false, true};  // K^T heads-major
    mixed.layout[0] = mixed.layout[2] = 1;
    run_all(mixed);
    Case out_only{{2, 3, 65, d}, {2, 3, 65, d}, {2, 3, 65, d}, {}};
    out_only.out_layout = 1;
    run_all(out_only);
    Case mha{{197, 6, d}, {197, 6, d}, {197, 6, d}, {6, 197, 197}};  // [S, B*H, D], a 3-D mask over [N, Sq, Sk]
    mha.layout[0] = mha.layout[1] = mha.layout[2] = 1;
    mha.out_layout = 1;
    run_all(mha);
  }
  // Dv != D with tokens-major v and output (generic kernel in every dtype).
  Case dv{{1, 37, 2, 64}, {1, 45, 2, 64}, {1, 45, 2, 24}, {}};
  dv.layout[0] = dv.layout[1] = dv.layout[2] = 1;
  dv.out_layout = 1;
  run_all(dv);
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
