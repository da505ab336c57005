// FusedAttention's GEMM path plan (pure host arithmetic, runs without a GPU): which layouts have uniform
// (batch*head) strides, how the scores are laid out and chunked in the workspace, and when the path declines.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include "backends/cuda/kernels/attention_gemm_plan.h"

using namespace kiln;
using namespace kiln::cuda::kern;

namespace {

constexpr size_t kMiB = 1ull << 20;

AttentionLayout layout(const Dims& q, const Dims& k, const Dims& v, bool k_transposed = false) {
  AttentionLayout L;
  const std::string err = attention_layout(q, k, v, nullptr, k_transposed, &L);
  EXPECT_EQ(err, "");
  return L;
}

// Every slice lies in exactly one chunk, chunks are contiguous, and one chunk's scores fit before cuBLASLt's part.
void expect_consistent(const AttentionGemmPlan& p) {
  ASSERT_TRUE(p.use) << p.why_not;
  ASSERT_GE(p.chunks, 1);
  int64_t total = 0;
  for (int64_t c = 0; c < p.chunks; ++c) {
    const int64_t n = p.chunk_slices(c);
    EXPECT_GE(n, 1) << "chunk " << c;
    EXPECT_LE(n, p.per_chunk) << "chunk " << c;
    total += n;
  }
  EXPECT_EQ(total, p.slices);
  EXPECT_LE(static_cast<size_t>(p.per_chunk * p.slice_floats) * sizeof(float), p.lt_offset);
  EXPECT_EQ(p.lt_offset % 256, 0u);
  EXPECT_EQ(p.ld_s % 8, 0);
  EXPECT_EQ(p.slice_floats % 64, 0);
}

}  // namespace

TEST(AttentionGemmPlan, UniformSliceStride) {
  EXPECT_EQ(uniform_slice_stride(12 * 100, 100, 4, 12), 100);  // [B, H, S, D]
  EXPECT_EQ(uniform_slice_stride(0, 100, 1, 12), 100);         // one batch (3-D q seen as B = 1)
  EXPECT_EQ(uniform_slice_stride(0, 0, 4, 12), 0);             // one matrix shared by every slice
  EXPECT_EQ(uniform_slice_stride(100, 0, 1, 12), 0);           // heads broadcast, one batch
  EXPECT_EQ(uniform_slice_stride(100, 0, 4, 1), 100);          // one head
  EXPECT_EQ(uniform_slice_stride(0, 0, 1, 1), 0);
  EXPECT_EQ(uniform_slice_stride(0, 100, 4, 12), -1);   // batch broadcast over distinct heads
  EXPECT_EQ(uniform_slice_stride(100, 0, 4, 12), -1);   // heads broadcast within distinct batches
}

TEST(AttentionGemmPlan, BertBaseFitsInTwoL2SizedChunks) {
  const AttentionLayout L = layout({64, 12, 128, 64}, {64, 12, 128, 64}, {64, 12, 128, 64});
  const AttentionGemmPlan p = plan_attention_gemm(L, 64 * kMiB, 25 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.slices, 768);
  EXPECT_EQ(p.q_stride, 128 * 64);
  EXPECT_EQ(p.k_stride, 128 * 64);
  EXPECT_EQ(p.v_stride, 128 * 64);
  EXPECT_EQ(p.ld_s, 128);
  EXPECT_EQ(p.slice_floats, 128 * 128);
  EXPECT_EQ(p.chunks, 2);  // 400 slices of 64 KiB fit 25 MiB: two equal chunks of 384
  EXPECT_EQ(p.per_chunk, 384);
  EXPECT_EQ(p.lt_bytes, 4 * kMiB);
}

TEST(AttentionGemmPlan, VitRowsArePaddedAndChunksEqual) {
  const AttentionLayout L = layout({128, 12, 197, 64}, {128, 12, 64, 197}, {128, 12, 197, 64}, true);
  const AttentionGemmPlan p = plan_attention_gemm(L, 64 * kMiB, 25 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.ld_s, 200);
  EXPECT_EQ(p.slice_floats, (197 * 200 + 63) / 64 * 64);
  const int64_t most = static_cast<int64_t>(25 * kMiB / (p.slice_floats * 4));
  EXPECT_EQ(p.chunks, (1536 + most - 1) / most);
  EXPECT_LE(p.per_chunk, most);
  EXPECT_GT(p.chunk_slices(p.chunks - 1), p.per_chunk - p.chunks);  // balanced: the last chunk is not a sliver
}

TEST(AttentionGemmPlan, SmallWorkspaceMakesUnequalLastChunk) {
  // 384 KiB: cuBLASLt gets 96 KiB, the scores 288 KiB = four 64 KiB slices; 10 slices -> 4, 4, 2.
  const AttentionLayout L = layout({2, 5, 128, 64}, {2, 5, 128, 64}, {2, 5, 128, 64});
  const AttentionGemmPlan p = plan_attention_gemm(L, 384 * 1024, 64 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.chunks, 3);
  EXPECT_EQ(p.per_chunk, 4);
  EXPECT_EQ(p.chunk_slices(2), 2);
  EXPECT_EQ(p.lt_bytes, 96u * 1024);
}

TEST(AttentionGemmPlan, BroadcastOperands) {
  // 3-D [B*H, S, D]: one batch of B*H heads.
  AttentionGemmPlan p = plan_attention_gemm(layout({6, 50, 64}, {6, 64, 50}, {6, 50, 64}, true), 64 * kMiB, 16 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.slices, 6);
  EXPECT_EQ(p.k_stride, 64 * 50);
  // K and V shared by the heads of a single batch: stride 0.
  p = plan_attention_gemm(layout({1, 4, 64, 64}, {1, 1, 64, 64}, {1, 1, 64, 64}), 64 * kMiB, 16 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.k_stride, 0);
  EXPECT_EQ(p.v_stride, 0);
  EXPECT_EQ(p.q_stride, 64 * 64);
  // Shared K/V heads across several batches, or a broadcast query batch: no uniform stride.
  p = plan_attention_gemm(layout({2, 4, 64, 64}, {2, 1, 64, 64}, {2, 1, 64, 64}), 64 * kMiB, 16 * kMiB);
  EXPECT_FALSE(p.use);
  p = plan_attention_gemm(layout({1, 4, 64, 64}, {3, 4, 64, 64}, {3, 4, 64, 64}), 64 * kMiB, 16 * kMiB);
  EXPECT_FALSE(p.use);
  EXPECT_NE(p.why_not.find("uniform"), std::string::npos) << p.why_not;
}

TEST(AttentionGemmPlan, Declines) {
  const AttentionLayout L = layout({2, 2, 128, 64}, {2, 2, 128, 64}, {2, 2, 128, 64});
  EXPECT_FALSE(plan_attention_gemm(L, 0, 16 * kMiB).use);           // no workspace
  EXPECT_FALSE(plan_attention_gemm(L, 64 * 1024, 16 * kMiB).use);   // 64 KiB scores + cuBLASLt's part do not fit
  EXPECT_TRUE(plan_attention_gemm(L, 128 * 1024, 16 * kMiB).use);   // 96 KiB for scores: one slice per chunk
  EXPECT_EQ(plan_attention_gemm(L, 128 * 1024, 16 * kMiB).chunks, 4);
  // More keys than the softmax holds; empty dims.
  EXPECT_FALSE(plan_attention_gemm(layout({1, 1, 4, 64}, {1, 1, 9000, 64}, {1, 1, 9000, 64}), 64 * kMiB, 16 * kMiB).use);
  EXPECT_TRUE(plan_attention_gemm(layout({1, 1, 4, 64}, {1, 1, 8192, 64}, {1, 1, 8192, 64}), 64 * kMiB, 16 * kMiB).use);
  EXPECT_FALSE(plan_attention_gemm(layout({1, 1, 4, 64}, {1, 1, 0, 64}, {1, 1, 0, 64}), 64 * kMiB, 16 * kMiB).use);
  // A huge slice: Sq * ld_s floats far beyond the workspace (and the product must not overflow on the way).
  EXPECT_FALSE(plan_attention_gemm(layout({1, 1, int64_t{1} << 40, 8}, {1, 1, 8192, 8}, {1, 1, 8192, 8}), 64 * kMiB,
                                   16 * kMiB).use);
}

// Tokens-major [B, S, H, D] and packed [B, S, 3, H, D] q, k, v: slices D apart when B == 1 (the rows, H * D apart,
// become the products' leading dims); with B > 1 and H > 1 a batch's heads interleave its rows, so no uniform
// stride and the path declines (fused_attention.cu then runs the flash kernel).
TEST(AttentionGemmPlan, TokensMajorAndPackedLayouts) {
  auto stored = [](const Dims& q, int64_t layout) {
    ir::AttentionFormat f;
    for (int t = 0; t < 3; ++t) {
      f.layout[t] = layout;
      f.slot[t] = layout == 2 ? t : 0;
    }
    f.out_layout = 1;
    AttentionLayout L;
    EXPECT_EQ(attention_layout(q, q, q, nullptr, f, &L), "");
    return L;
  };
  AttentionLayout L = stored({1, 128, 12, 64}, 1);
  EXPECT_EQ(L.q_ss, 12 * 64);
  EXPECT_EQ(L.o_ss, 12 * 64);
  AttentionGemmPlan p = plan_attention_gemm(L, 64 * kMiB, 16 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.q_stride, 64);
  EXPECT_EQ(p.k_stride, 64);
  EXPECT_EQ(uniform_slice_stride(L.o_sb, L.o_sh, L.B, L.H), 64) << "the output's slices too";
  L = stored({1, 197, 3, 12, 64}, 2);
  EXPECT_EQ(L.k_off, 12 * 64);
  EXPECT_EQ(L.v_off, 2 * 12 * 64);
  EXPECT_EQ(L.q_ss, 3 * 12 * 64);
  p = plan_attention_gemm(L, 64 * kMiB, 16 * kMiB);
  expect_consistent(p);
  EXPECT_EQ(p.v_stride, 64);
  for (const Dims& q : {Dims{2, 128, 12, 64}, Dims{2, 197, 3, 12, 64}}) {
    L = stored(q, q.size() == 4 ? 1 : 2);
    p = plan_attention_gemm(L, 64 * kMiB, 16 * kMiB);
    EXPECT_FALSE(p.use) << dims_str(q);
    EXPECT_NE(p.why_not.find("uniform"), std::string::npos) << p.why_not;
    EXPECT_EQ(uniform_slice_stride(L.o_sb, L.o_sh, L.B, L.H), -1);
  }
  // One head: tokens-major slices are whole batches.
  L = stored({3, 50, 1, 64}, 1);
  EXPECT_EQ(plan_attention_gemm(L, 64 * kMiB, 16 * kMiB).q_stride, 50 * 64);
}

#endif  // KILN_WITH_CUDA
