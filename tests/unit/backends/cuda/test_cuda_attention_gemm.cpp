// FusedAttention's CUDA paths against the CPU kernel on the same random cases: the GEMM path (cuBLASLt
// products + Kiln's masked softmax, attention_gemm_path.h; the registered kernel runs with KILN_ATTENTION=gemm
// so that it takes that path rather than the timed choice) and the direct kernels (taken when the kernel has
// no cuBLASLt handle or workspace, as in cudatest::check_op: the flash kernel for float16/bfloat16 with head
// size 64 or 128, the generic kernel otherwise). float32 (pure and TF32), float16, bfloat16; masks broadcast
// and full, causal, Sq != Sk, k transposed, several workspace chunks, odd sizes (197 tokens, head size 80),
// the block-per-row softmax for long key rows, a CUDA graph replay, and tokens-major / packed storage with one
// batch (where the slices keep a uniform stride and the row strides become leading dims).
#include "backends/cuda/attention_test_cases.h"

#ifdef KILN_WITH_CUDA
#include <map>
#include <memory>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/attention_gemm_path.h"
#include "backends/cuda/kernels/attention_gemm_plan.h"
#include "backends/cuda/library_handles.h"
#include "backends/fused_attention_layout.h"

using namespace kiln;
using namespace kiln::cudatest;

namespace {

constexpr size_t kDefaultWorkspace = 64ull << 20;

using Case = AttentionCase;

// cuBLASLt handles and a workspace of each size the tests ask for, kept for the whole test program.
const cuda::LibraryHandles& handles(size_t workspace) {
  static std::map<size_t, std::unique_ptr<cuda::LibraryHandles>> cache;
  auto& h = cache[workspace];
  if (!h) h = std::make_unique<cuda::LibraryHandles>(workspace);
  return *h;
}

struct GemmOptions {
  size_t workspace = kDefaultWorkspace;
  int64_t expect_chunks = 0;  // > 0: the plan must split the slices into this many chunks
  bool tf32 = false;
  bool graph = false;         // a third run, captured into a CUDA graph and replayed, must agree bit for bit
};

// The GEMM path: the first run calls run_attention_gemm itself (which must take the case), the second goes
// through the registered kernel with KILN_ATTENTION=gemm; the output is poisoned before each. Both must agree
// bit for bit (so the kernel took the GEMM path too: the direct kernels sum in another order) and match the
// CPU kernel.
::testing::AssertionResult check_gemm_path(const Case& c, DataType dt, DataType mask_dt, const GemmOptions& opt = {}) {
  try {
    const ScopedEnv gemm_path("KILN_ATTENTION", "gemm");
    cuda::kern::AttentionGemmState gemm_state;  // the direct call's own; the kernel keeps its state per node
    const std::vector<HostTensor> inputs = attention_inputs(c, dt, mask_dt);
    ir::Graph g;
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos;
    for (size_t i = 0; i < inputs.size(); ++i) {
      vals.push_back(g.add_input("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()));
      infos.push_back(ir::TensorInfo{true, inputs[i].dtype(), inputs[i].shape(), &inputs[i]});
    }
    ir::Node* node = g.add_node("FusedAttention", "attn", vals, 1);
    set_attention_attrs(node->attrs, c, opt.tf32);
    const ir::TensorInfo out_info = ir::infer_node(*node, infos).at(0);
    if (!cuda::supports(*node, infos)) return ::testing::AssertionFailure() << "cuda::supports() says no";
    cuda::KernelFn fn = cuda::find_kernel("FusedAttention");
    if (!fn) return ::testing::AssertionFailure() << "no CUDA kernel for FusedAttention";

    AttentionLayout L;
    const Dims* mask_shape = c.mask.empty() ? nullptr : &c.mask;
    const std::string err = attention_layout(c.q, c.k, c.v, mask_shape, attention_format_of(c), &L);
    if (!err.empty()) return ::testing::AssertionFailure() << "layout: " << err;
    const cuda::kern::AttentionGemmPlan plan = cuda::kern::plan_attention_gemm(
        L, opt.workspace, cuda::kern::attention_chunk_target_bytes(cuda::current_device()));
    if (!plan.use) return ::testing::AssertionFailure() << "the plan declines: " << plan.why_not;
    if (opt.expect_chunks > 0 && plan.chunks != opt.expect_chunks)
      return ::testing::AssertionFailure() << plan.chunks << " chunks, expected " << opt.expect_chunks;

    // The reference, on float32 copies.
    const HostTensor ref = cpu_reference("FusedAttention", node->attrs, inputs).at(0);

    cudaStream_t s = test_stream();
    cuda::Resources res;
    res.stream = s;
    handles(opt.workspace).attach(res);
    cuda::KernelContext ctx{*node, {}, {}, res};
    std::vector<cuda::DeviceBuffer> dev_in;
    for (const HostTensor& t : inputs) {
      dev_in.emplace_back(std::max<size_t>(t.nbytes(), 1));
      if (cudaMemcpy(dev_in.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
        return ::testing::AssertionFailure() << "cudaMemcpy of an input failed";
      ctx.in.push_back(cuda::TensorRef{true, t.dtype(), t.shape(), dev_in.back().get(), t.raw()});
    }
    const size_t out_bytes = static_cast<size_t>(volume(out_info.shape)) * dtype_size(out_info.dtype);
    cuda::DeviceBuffer dev_out(std::max<size_t>(out_bytes, 1));
    ctx.out.push_back(cuda::TensorRef{true, out_info.dtype, out_info.shape, dev_out.get(), nullptr});

    auto fetch = [&](HostTensor* h) {
      *h = HostTensor(out_info.dtype, out_info.shape);
      return cudaMemcpy(h->mutable_raw(), dev_out.get(), out_bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
    };
    std::vector<HostTensor> runs;
    for (int run = 0; run < 2; ++run) {
      if (cudaMemsetAsync(dev_out.get(), run == 0 ? 0xFF : 0x7B, out_bytes, s) != cudaSuccess)
        return ::testing::AssertionFailure() << "cudaMemset failed";
      if (run == 0) {
        if (!cuda::kern::run_attention_gemm(ctx, L, gemm_state)) return ::testing::AssertionFailure() << "the GEMM path declined";
      } else {
        fn(ctx);
      }
      const cudaError_t e = cudaStreamSynchronize(s);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << "kernel failed: " << cudaGetErrorString(e);
      HostTensor h;
      if (!fetch(&h)) return ::testing::AssertionFailure() << "cudaMemcpy of the output failed";
      runs.push_back(h);
    }
    if (opt.graph) {
      // Everything the path enqueues must be capturable: no allocation, sync or host read of device data.
      if (cudaMemsetAsync(dev_out.get(), 0xFF, out_bytes, s) != cudaSuccess) return ::testing::AssertionFailure() << "memset";
      CapturedGraph(s, [&] { fn(ctx); }).replay(s);
      HostTensor h;
      if (!fetch(&h)) return ::testing::AssertionFailure() << "cudaMemcpy of the output failed";
      runs.push_back(h);
    }
    for (size_t r = 1; r < runs.size(); ++r)
      if (!runs[0].same_bytes(runs[r]))
        return ::testing::AssertionFailure() << "run " << r << " differs from the direct call of the GEMM path"
                                             << (r == 1 ? " (did the kernel take the other path?)" : " (graph replay)");
    return compare(runs[0], ref, attention_tol(dt, opt.tf32), false);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw: " << e.what();
  }
}

// The direct kernels: check_op gives the kernel no cuBLASLt handle or workspace.
::testing::AssertionResult check_direct(const Case& c, DataType dt, DataType mask_dt) {
  Options o;
  o.tol = attention_tol(dt);
  return check_op("FusedAttention", attention_inputs(c, dt, mask_dt), [&](ir::Attrs& a) { set_attention_attrs(a, c); }, o);
}

// Both paths, every float dtype (and a float32 mask under float16/bfloat16 when asked).
void both_paths(const Case& c, const GemmOptions& opt = {}, bool f32_mask_too = false) {
  SCOPED_TRACE(describe(c));
  for (DataType dt : float_types()) {
    std::vector<DataType> masks = {dt};
    if (f32_mask_too && dt != DataType::kFLOAT && !c.mask.empty()) masks.push_back(DataType::kFLOAT);
    for (DataType mdt : masks) {
      EXPECT_TRUE(check_gemm_path(c, dt, mdt, opt)) << "GEMM path, " << dtype_name(dt) << " mask " << dtype_name(mdt);
      EXPECT_TRUE(check_direct(c, dt, mdt)) << "direct kernel, " << dtype_name(dt) << " mask " << dtype_name(mdt);
    }
  }
}

}  // namespace

TEST(CudaAttentionGemm, BertShapesWithAndWithoutMasks) {
  KILN_REQUIRE_CUDA_DEVICE();
  both_paths(Case{{2, 12, 128, 64}, {2, 12, 128, 64}, {2, 12, 128, 64}, {}});
  both_paths(Case{{2, 12, 128, 64}, {2, 12, 128, 64}, {2, 12, 128, 64}, {2, 1, 1, 128}}, {}, true);
  both_paths(Case{{2, 12, 128, 64}, {2, 12, 128, 64}, {2, 12, 128, 64}, {2, 12, 128, 128}});
}

TEST(CudaAttentionGemm, CausalAndUnequalLengths) {
  KILN_REQUIRE_CUDA_DEVICE();
  both_paths(Case{{1, 2, 130, 64}, {1, 2, 130, 64}, {1, 2, 130, 64}, {}, true});
  // Queries at the end of a longer key sequence, with a padding mask; more queries than keys (the first
  // 80 rows see no key: output 0).
  both_paths(Case{{2, 2, 70, 64}, {2, 2, 150, 64}, {2, 2, 150, 64}, {2, 1, 1, 150}, true});
  both_paths(Case{{1, 2, 150, 64}, {1, 2, 70, 64}, {1, 2, 70, 64}, {}, true});
  // One query (decoding) against 77 keys, a mask per batch.
  both_paths(Case{{2, 4, 1, 64}, {2, 4, 77, 64}, {2, 4, 77, 64}, {2, 1, 1, 77}}, {}, true);
}

TEST(CudaAttentionGemm, TransposedKeysAndThreeDimensional) {
  KILN_REQUIRE_CUDA_DEVICE();
  both_paths(Case{{2, 3, 100, 64}, {2, 3, 64, 90}, {2, 3, 90, 64}, {1, 1, 100, 90}, false, true});
  both_paths(Case{{6, 50, 64}, {6, 64, 50}, {6, 50, 64}, {}, false, true});  // ViT's [B*H, S, D] with k^T
  both_paths(Case{{1, 4, 64, 64}, {1, 1, 64, 64}, {1, 1, 64, 64}, {1, 1, 1, 64}});  // K/V shared by the heads
}

TEST(CudaAttentionGemm, OddSizes) {
  KILN_REQUIRE_CUDA_DEVICE();
  both_paths(Case{{2, 3, 197, 64}, {2, 3, 64, 197}, {2, 3, 197, 64}, {}, false, true});  // ViT-B/16: 197 tokens
  both_paths(Case{{2, 3, 128, 80}, {2, 3, 128, 80}, {2, 3, 128, 80}, {2, 1, 1, 128}});   // head size 80
  both_paths(Case{{1, 2, 37, 64}, {1, 2, 45, 64}, {1, 2, 45, 24}, {}});                  // Dv != D, odd lengths
}

TEST(CudaAttentionGemm, LongKeyRowsUseTheBlockSoftmax) {
  KILN_REQUIRE_CUDA_DEVICE();
  // 600 keys: a block per row holding one float4 per thread; 1500: two; 5000: eight (a broadcast mask).
  both_paths(Case{{1, 2, 40, 64}, {1, 2, 600, 64}, {1, 2, 600, 64}, {}});
  both_paths(Case{{1, 2, 24, 64}, {1, 2, 1500, 64}, {1, 2, 1500, 64}, {1, 1, 24, 1500}, true});
  for (DataType dt : float_types())
    EXPECT_TRUE(check_gemm_path(Case{{1, 1, 8, 64}, {1, 1, 5000, 64}, {1, 1, 5000, 64}, {1, 1, 1, 5000}}, dt, dt))
        << dtype_name(dt);
}

TEST(CudaAttentionGemm, FullyMaskedRowGivesZero) {
  KILN_REQUIRE_CUDA_DEVICE();
  Case c{{1, 2, 70, 64}, {1, 2, 80, 64}, {1, 2, 80, 64}, {1, 1, 70, 80}};
  c.neg_inf_row = 3;
  both_paths(c);
}

TEST(CudaAttentionGemm, SeveralWorkspaceChunks) {
  KILN_REQUIRE_CUDA_DEVICE();
  // 384 KiB of workspace: 4 slices of 128 x 128 scores per chunk, 10 slices -> chunks of 4, 4, 2, each with
  // its own slice offsets into q, k, v, the mask's batch/head and the output.
  GemmOptions small;
  small.workspace = 384 * 1024;
  small.expect_chunks = 3;
  for (DataType dt : float_types()) {
    EXPECT_TRUE(check_gemm_path(Case{{2, 5, 128, 64}, {2, 5, 128, 64}, {2, 5, 128, 64}, {2, 5, 128, 128}}, dt, dt, small))
        << dtype_name(dt);
    EXPECT_TRUE(check_gemm_path(Case{{2, 5, 128, 64}, {2, 5, 64, 128}, {2, 5, 128, 64}, {2, 1, 1, 128}, true, true}, dt,
                                dt, small))
        << dtype_name(dt) << " causal, k transposed";
  }
}

TEST(CudaAttentionGemm, Float32UsesTf32OnlyWhenAllowed) {
  KILN_REQUIRE_CUDA_DEVICE();
  // Pure float32 meets 1e-4 (TF32's 10-bit mantissa products would not, in general); allow_tf32 = 1 may use it.
  const Case c{{2, 4, 128, 64}, {2, 4, 128, 64}, {2, 4, 128, 64}, {2, 1, 1, 128}};
  EXPECT_TRUE(check_gemm_path(c, DataType::kFLOAT, DataType::kFLOAT));
  GemmOptions tf32;
  tf32.tf32 = true;
  EXPECT_TRUE(check_gemm_path(c, DataType::kFLOAT, DataType::kFLOAT, tf32));
}

TEST(CudaAttentionGemm, CapturedIntoCudaGraph) {
  KILN_REQUIRE_CUDA_DEVICE();
  GemmOptions opt;
  opt.graph = true;
  opt.workspace = 384 * 1024;  // several chunks inside the graph
  opt.expect_chunks = 3;
  for (DataType dt : float_types())
    EXPECT_TRUE(check_gemm_path(Case{{2, 5, 128, 64}, {2, 5, 128, 64}, {2, 5, 128, 64}, {2, 1, 1, 128}}, dt, dt, opt))
        << dtype_name(dt);
}

// Storage other than heads-major with B == 1 (BERT / GPT-2 / ViT at batch 1, nn.MultiheadAttention's 3-D form):
// leading dims of H * D (3 * H * D packed), slice offsets of D, the packed slots' base offsets; several chunks.
TEST(CudaAttentionGemm, TokensMajorAndPackedWithOneBatch) {
  KILN_REQUIRE_CUDA_DEVICE();
  both_paths(tokens_major_case(1, 12, 128, 128, 64, {1, 1, 1, 128}), {}, true);
  both_paths(tokens_major_case(1, 4, 70, 150, 64, {}, true));
  both_paths(packed_case(1, 12, 197, 64));
  Case out_only{{1, 3, 65, 80}, {1, 3, 65, 80}, {1, 3, 65, 80}, {}};  // head size 80: the generic direct kernel
  out_only.out_layout = 1;
  both_paths(out_only);
  Case mha{{197, 12, 64}, {197, 12, 64}, {197, 12, 64}, {}};
  mha.layout[0] = mha.layout[1] = mha.layout[2] = 1;
  mha.out_layout = 1;
  both_paths(mha);
  GemmOptions small;
  small.workspace = 384 * 1024;
  small.expect_chunks = 3;
  for (DataType dt : float_types())
    EXPECT_TRUE(check_gemm_path(tokens_major_case(1, 10, 128, 128, 64, {1, 1, 1, 128}), dt, dt, small)) << dtype_name(dt);
}

TEST(CudaAttentionGemm, SupportsUnknownHeadSizes) {
  // Dynamic shapes leave the head sizes unknown at build time: the kernel must still be chosen.
  for (DataType dt : float_types()) {
    ir::Graph g;
    std::vector<ir::TensorInfo> in;
    std::vector<ir::Value*> vals;
    for (const Dims& d : {Dims{-1, 12, -1, -1}, Dims{-1, 12, -1, -1}, Dims{-1, 12, -1, -1}}) {
      vals.push_back(g.add_input("x" + std::to_string(vals.size()), dt, d));
      in.push_back(ir::TensorInfo{true, dt, d, nullptr});
    }
    ir::Node* n = g.add_node("FusedAttention", "attn", vals, 1);
    EXPECT_TRUE(cuda::supports(*n, in)) << dtype_name(dt);
    in[0].shape = in[1].shape = in[2].shape = Dims{2, 12, 128, 512};  // known and beyond the direct kernel
    EXPECT_FALSE(cuda::supports(*n, in)) << dtype_name(dt);
  }
}

#endif  // KILN_WITH_CUDA
