#include "builder/pipeline.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "backends/gpu_probe.h"
#include "passes/batch_first_attention.h"
#include "passes/channels_last.h"
#include "passes/fold_normalization_cast.h"
#include "passes/fold_space_to_depth_cast.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_conv.h"
#include "passes/fuse_conv1x1_pair.h"
#include "passes/fuse_gather_addend.h"
#include "passes/fuse_gemm.h"
#include "passes/fuse_pointwise.h"
#include "passes/lower_einsum.h"
#include "passes/merge_parallel_gemms.h"
#include "passes/patchify_conv.h"
#include "passes/lower_precision.h"
#include "passes/lower_quantization.h"
#include "passes/recognize_activations.h"
#include "passes/simplify_views.h"
#include "passes/transpose_gemm_weights.h"
#include "runtime/env_switch.h"

namespace kiln {

namespace {

// Clean-up and constant folding, then the fusions. The fused forms all have CPU kernels; fused attention
// only pays on the GPU (a flash-attention kernel there; on the CPU the batched sgemm path is faster), and
// scripts/test.sh checks it on the CPU through KILN_CPU_RUNS_GPU_PIPELINE.
std::vector<std::unique_ptr<passes::Pass>> common_pipeline(bool gpu) {
  std::vector<std::unique_ptr<passes::Pass>> p;
  p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  p.push_back(std::make_unique<passes::EliminateIdentities>());
  p.push_back(std::make_unique<passes::FoldShapeArithmetic>());
  p.push_back(std::make_unique<passes::MergeReshapes>());
  p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  // Einsum as Shuffle + MatrixMultiply (sgemm/cuBLASLt instead of the generic Einsum kernel), early so the
  // GEMM epilogue can take a bias that follows it. GELU/SiLU compositions become one activation before the
  // epilogues, so they can take them; attention before the GEMM epilogue, which would otherwise take a mask
  // add after Q@K^T for a bias.
  p.push_back(std::make_unique<passes::LowerEinsum>());
  p.push_back(std::make_unique<passes::RecognizeActivations>());
  if (gpu) {
    // Views first, so attention sees the layouts its q, k and v are really read in (simplify_views.h). The
    // q/k/v projections merge into one GEMM before (its bias is taken by the GEMM epilogue after), and
    // attention then reads the merged output through its Split.
    p.push_back(std::make_unique<passes::MergeParallelGemms>());
    p.push_back(std::make_unique<passes::SimplifyViews>());
    p.push_back(std::make_unique<passes::FuseAttention>());
    p.push_back(std::make_unique<passes::BatchFirstAttention>());
  }
  p.push_back(std::make_unique<passes::FoldBatchNormIntoConv>());
  p.push_back(std::make_unique<passes::FuseConvEpilogue>());
  p.push_back(std::make_unique<passes::FuseGemmEpilogue>());
  // An embedding lookup and the add after it as one Gather (GPT-2's first two kernels, 4.5 + 3.3 us at batch 1
  // on the H200). After the GEMM epilogue (the sum of a GEMM's output and a gathered tensor stays the GEMM's
  // residual), before LowerPrecision (which lowers the fused Gather as one layer) and FusePointwise (which could
  // take the add into a pointwise chain). KILN_FUSE_GATHER_ADDEND=0 keeps them apart (to compare, or to rule the
  // fusion out when a result looks wrong).
  if (!env_is("KILN_FUSE_GATHER_ADDEND", "0")) p.push_back(std::make_unique<passes::FuseGatherAddend>());
  p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  return p;
}

}  // namespace

std::vector<std::unique_ptr<passes::Pass>> cpu_pipeline() { return common_pipeline(false); }

std::vector<std::unique_ptr<passes::Pass>> gpu_pipeline(const GpuPipelineOptions& o) {
  auto p = common_pipeline(true);
  // After the convolution epilogue fusion (the GEMM keeps its bias and activation), before the layout pass.
  p.push_back(std::make_unique<passes::PatchifyConvolution>());
  // Quantize/dequantize layers as pointwise layers: the CUDA backend has kernels for those.
  p.push_back(std::make_unique<passes::LowerQuantization>());
  // After the convolution fusions (fewer layers to carry the layout through), before precision lowering
  // (which then sees the final layers).
  // In half-precision engines (KILN_STEM_SPACE_TO_DEPTH=0 turns it off) a strided 5x5+ stem of few channels
  // (ResNet's 7x7/2 on RGB) becomes one SpaceToDepthNhwc op, written in place of the NCHW->NHWC transpose
  // (0.055 ms), and a 4x4 stride-1 convolution on 16 channels (channels_last.h). Measured on the H200 (same-run
  // A/B, eighth session): ResNet-50 b128 0.890x the time, b1 0.985x; other models unchanged (nothing qualifies).
  const bool stem_space_to_depth = (o.fp16 || o.bf16) && !env_is("KILN_STEM_SPACE_TO_DEPTH", "0");
  // KILN_S2D_VECTOR=0 keeps the convolution's own begin padding: ResNet's and MobileNet's (odd) then send the
  // CUDA SpaceToDepthNhwc kernel down its element path, as before the twelfth session (an A/B switch).
  const bool align_stem_padding = !env_is("KILN_S2D_VECTOR", "0");
  p.push_back(std::make_unique<passes::ChannelsLast>(stem_space_to_depth, align_stem_padding));
  if (o.fp16 || o.bf16) {
    // FP16 wins when both are allowed: it has the finer mantissa for activations of inference networks.
    DataType low = o.fp16 ? DataType::kHALF : DataType::kBF16;
    p.push_back(std::make_unique<passes::LowerPrecision>(low, o.obey_precision_constraints, &gpu::supports));
    // Right after LowerPrecision, which puts a float32 -> low Cast in front of the stem's SpaceToDepthNhwc:
    // the op converts as it moves the elements (one kernel less, one pass over the input less), and it must
    // take the Cast before FusePointwise can turn it into a fused node. The pass removes the Cast itself.
    p.push_back(std::make_unique<passes::FoldSpaceToDepthCast>());
    // Likewise for the Cast LowerPrecision writes after a LayerNorm that feeds a float32 network output (a
    // transformer's last): the Normalization stores float32 itself. KILN_FOLD_NORMALIZATION_CAST=0 keeps the
    // Cast (fold_normalization_cast.h).
    if (!env_is("KILN_FOLD_NORMALIZATION_CAST", "0")) p.push_back(std::make_unique<passes::FoldNormalizationCast>());
    p.push_back(std::make_unique<passes::EliminateIdentities>());
    p.push_back(std::make_unique<passes::EliminateDeadNodes>());
    // Once dtypes are final: half-precision GEMM weights stored [N, K] (op_b TRANSPOSE), the layout Kiln's
    // split-K kernel reads as 1x1 convolution filters, and cuBLASLt reads as well (transpose_gemm_weights.h).
    // The pass removes the [K, N] constants it replaces itself. KILN_GEMM_WEIGHTS_NK=0 keeps ONNX's [K, N] (an
    // A/B switch: cuBLASLt's choice may differ with the layout, and Kiln's kernels for [N, K] weights, split-K
    // and small-M, then see only the GEMMs the model itself stored so).
    if (!env_is("KILN_GEMM_WEIGHTS_NK", "0")) p.push_back(std::make_unique<passes::TransposeGemmWeights>());
    // Two channels-last 1x1 convolutions back to back (a ResNet bottleneck block's last and the next block's
    // first) as one Conv1x1Pair, where the CUDA backend's fused kernel takes the pair (gpu::supports decides):
    // the wide tensor between them stays on chip. Here because dtypes are final (LowerPrecision) and the layout
    // channels-last (ChannelsLast), and the convolutions' epilogues are fused (the first's residual and ReLU are
    // part of the pair). KILN_FUSE_CONV_PAIR=0 keeps the two Convolutions: an A/B switch, and a way to rule the
    // fusion out when a result looks wrong.
    if (!env_is("KILN_FUSE_CONV_PAIR", "0")) p.push_back(std::make_unique<passes::FuseConv1x1Pair>(&gpu::supports));
  }
  // Last: dtypes are final, and what is left between the library calls is pointwise chains. On by default
  // since its whole-model GPU run (the six architectures at fp32/tf32/fp16/bf16 on the H200, 2026-11-30);
  // KILN_FUSE_POINTWISE=0 turns it off (to compare, or to rule it out when a result looks wrong).
  if (!env_is("KILN_FUSE_POINTWISE", "0")) {
    p.push_back(std::make_unique<passes::FusePointwise>(&gpu::supports));
    p.push_back(std::make_unique<passes::EliminateDeadNodes>());
  }
  return p;
}

void run_pipeline(ir::Graph& g, const std::vector<std::unique_ptr<passes::Pass>>& pipeline, ILogger* logger,
                  ProgressPhase* phase) {
  for (auto& pass : pipeline) {
    size_t before = g.num_nodes();
    auto t0 = std::chrono::steady_clock::now();
    bool changed = false;
    for (int i = 0; i < 4 && pass->run(g); ++i) changed = true;
    // Layers a rewrite left dead would count as readers in the passes after it (a fusion takes a value only
    // when its one reader is the next layer): GPT-2's embedding fusion did not fire on the H200 for a dead
    // Shape of the token embedding (twentieth session). So every rewrite is followed by the sweep.
    if (changed) passes::EliminateDeadNodes().run(g);
    g.topo_sort();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f ms", ms);
    log_to(logger, Severity::kVERBOSE,
           "pass " + pass->name() + ": " + std::to_string(before) + " -> " + std::to_string(g.num_nodes()) +
               " nodes, " + took);
    if (phase) phase->step();
  }
}

}  // namespace kiln
