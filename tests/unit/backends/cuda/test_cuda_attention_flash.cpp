// FusedAttention's flash kernel on tensor cores (kernels/attention_flash_mma.h) against the CPU kernel, forced
// with KILN_ATTENTION=flash (an error where it does not apply, so every case below runs it): float16 and
// bfloat16, head sizes 64 and 128; ViT (197 tokens) and BERT (128 tokens, padding mask) shapes; lengths 1, 63
// and 65 (partial query and key tiles); Sq != Sk; causal (including rows that see no key); masks broadcast and
// full, float32 and the input dtype; fully masked rows (-inf: output 0; float32's lowest: the CPU's uniform
// average); k transposed (16-byte and element-wise staging); broadcast heads and batches; more than 65535
// (batch, head) slices; tokens-major, packed and 3-D tokens-major storage (BERT / GPT-2 / ViT / nn.MultiheadAttention
// read without their head transposes). Then the timed choice between the flash kernel and the GEMM path
// (KILN_ATTENTION unset): its record in the timing cache, reused by a new context inside a CUDA graph capture,
// and the GEMM path for a capture with nothing recorded, for heads-major and tokens-major nodes (with B > 1 the
// GEMM path does not apply to the latter). The support predicate is checked on the host (no GPU needed).
#include "backends/cuda/attention_test_cases.h"

#ifdef KILN_WITH_CUDA
#include <limits>
#include <memory>

#include "backends/cuda/device.h"
#include "backends/cuda/kernels/attention_flash_mma.h"
#include "backends/cuda/library_handles.h"
#include "kiln/timing_cache.h"

using namespace kiln;
using namespace kiln::cudatest;

namespace {

using Case = AttentionCase;

const std::vector<DataType>& low_types() {
  static const std::vector<DataType> t = {DataType::kHALF, DataType::kBF16};
  return t;
}

// The case through the registered kernel with the flash kernel forced (check_op: two poisoned runs that must
// agree bit for bit, compared with the CPU kernel).
::testing::AssertionResult check_flash(const Case& c, DataType dt, DataType mask_dt) {
  const ScopedEnv flash("KILN_ATTENTION", "flash");
  Options o;
  o.tol = attention_tol(dt);
  return check_op("FusedAttention", attention_inputs(c, dt, mask_dt), [&](ir::Attrs& a) { set_attention_attrs(a, c); }, o);
}

// Both 16-bit dtypes, the mask in the input dtype and (when asked) in float32.
void flash_all(const Case& c, bool f32_mask_too = false) {
  SCOPED_TRACE(describe(c));
  for (DataType dt : low_types()) {
    EXPECT_TRUE(check_flash(c, dt, dt)) << dtype_name(dt);
    if (f32_mask_too && !c.mask.empty()) {
      EXPECT_TRUE(check_flash(c, dt, DataType::kFLOAT)) << dtype_name(dt) << " with a float32 mask";
    }
  }
}

Dims bhsd(int64_t b, int64_t h, int64_t s, int64_t d) { return Dims{b, h, s, d}; }

const int64_t kHeads[] = {64, 128};

}  // namespace

TEST(CudaAttentionFlash, VitAndBertShapes) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    flash_all(Case{bhsd(2, 12, 197, d), bhsd(2, 12, 197, d), bhsd(2, 12, 197, d), {}});
    flash_all(Case{bhsd(2, 12, 128, d), bhsd(2, 12, 128, d), bhsd(2, 12, 128, d), {2, 1, 1, 128}}, true);
  }
}

TEST(CudaAttentionFlash, PartialTiles) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    for (int64_t s : {1, 63, 65}) flash_all(Case{bhsd(1, 2, s, d), bhsd(1, 2, s, d), bhsd(1, 2, s, d), {}});
    flash_all(Case{bhsd(1, 2, 63, d), bhsd(1, 2, 63, d), bhsd(1, 2, 63, d), {1, 2, 63, 63}});
    // One query (decoding) against 77 keys; more keys than queries; more queries than keys.
    flash_all(Case{bhsd(2, 4, 1, d), bhsd(2, 4, 77, d), bhsd(2, 4, 77, d), {2, 1, 1, 77}}, true);
    flash_all(Case{bhsd(2, 2, 70, d), bhsd(2, 2, 150, d), bhsd(2, 2, 150, d), {2, 1, 1, 150}});
    flash_all(Case{bhsd(1, 2, 150, d), bhsd(1, 2, 70, d), bhsd(1, 2, 70, d), {}});
  }
  flash_all(Case{bhsd(1, 2, 40, 64), bhsd(1, 2, 50, 64), bhsd(1, 2, 50, 64), {}, false, false, 0.7});  // a given scale
}

TEST(CudaAttentionFlash, Causal) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    flash_all(Case{bhsd(1, 2, 130, d), bhsd(1, 2, 130, d), bhsd(1, 2, 130, d), {}, true});
    // Queries at the end of a longer key sequence (a KV cache), with a padding mask.
    flash_all(Case{bhsd(2, 2, 70, d), bhsd(2, 2, 150, d), bhsd(2, 2, 150, d), {2, 1, 1, 150}, true});
    // More queries than keys: the first 80 rows see no key (output 0), a whole query tile among them.
    flash_all(Case{bhsd(1, 2, 150, d), bhsd(1, 2, 70, d), bhsd(1, 2, 70, d), {}, true});
  }
}

TEST(CudaAttentionFlash, MaskLayouts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    flash_all(Case{bhsd(2, 2, 100, d), bhsd(2, 2, 90, d), bhsd(2, 2, 90, d), {2, 2, 100, 90}}, true);  // full
    flash_all(Case{bhsd(2, 2, 100, d), bhsd(2, 2, 90, d), bhsd(2, 2, 90, d), {1, 2, 1, 90}});    // per head and key
    flash_all(Case{bhsd(2, 2, 100, d), bhsd(2, 2, 90, d), bhsd(2, 2, 90, d), {2, 1, 100, 1}});   // per query row
  }
}

TEST(CudaAttentionFlash, FullyMaskedRows) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    Case c{bhsd(1, 2, 70, d), bhsd(1, 2, 80, d), bhsd(1, 2, 80, d), {1, 1, 70, 80}};
    c.neg_inf_row = 3;  // -inf: no visible key, output 0
    flash_all(c, true);
    // float32's lowest, as exported BERT masks write: finite, so the CPU kernel averages v uniformly over the
    // row; the kernel must not turn it into -inf (it subtracts the max before scaling by log2 e).
    c.masked_value = std::numeric_limits<float>::lowest();
    for (DataType dt : low_types()) EXPECT_TRUE(check_flash(c, dt, DataType::kFLOAT)) << dtype_name(dt);
  }
}

TEST(CudaAttentionFlash, TransposedKeys) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    // 90 keys: K^T rows are not 16-byte multiples, staged element by element; 128 keys: 16-byte copies.
    flash_all(Case{bhsd(2, 3, 100, d), bhsd(2, 3, d, 90), bhsd(2, 3, 90, d), {1, 1, 100, 90}, false, true});
    flash_all(Case{bhsd(2, 3, 100, d), bhsd(2, 3, d, 128), bhsd(2, 3, 128, d), {}, true, true});
  }
  flash_all(Case{{6, 50, 64}, {6, 64, 50}, {6, 50, 64}, {}, false, true});  // ViT's [B*H, S, D] with k^T
}

TEST(CudaAttentionFlash, BroadcastAndManySlices) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    flash_all(Case{bhsd(2, 4, 64, d), bhsd(2, 1, 64, d), bhsd(2, 1, 64, d), {2, 1, 1, 64}});  // shared K/V heads
    flash_all(Case{bhsd(1, 4, 64, d), bhsd(3, 4, 64, d), bhsd(3, 4, 64, d), {}});            // broadcast query batch
  }
  // 70000 (batch*head) slices of one query tile: more blocks than gridDim.y could hold.
  flash_all(Case{{70000, 3, 64}, {70000, 5, 64}, {70000, 5, 64}, {}});
}

// BERT, GPT-2 and ViT as exported, read and written without their head transposes: tokens-major q, k, v and
// output (128 and 197 tokens), ViT's packed qkv (one tensor, three slots), mixes with a heads-major K^T (element
// and 16-byte staging), a tokens-major output of heads-major inputs, nn.MultiheadAttention's 3-D [S, B*H, D],
// one K/V head shared by all query heads.
TEST(CudaAttentionFlash, TokensMajorAndPackedLayouts) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t d : kHeads) {
    SCOPED_TRACE("D = " + std::to_string(d));
    flash_all(tokens_major_case(2, 12, 128, 128, d, {2, 1, 1, 128}), true);  // BERT-base, padding mask
    flash_all(tokens_major_case(2, 12, 197, 197, d));                         // ViT-B/16's 197 tokens
    flash_all(tokens_major_case(2, 2, 70, 150, d, {2, 1, 1, 150}, true));     // causal, Sq != Sk
    flash_all(tokens_major_case(1, 3, 63, 65, d));                            // partial tiles
    flash_all(packed_case(2, 12, 197, d));
    flash_all(packed_case(1, 4, 128, d, {1, 1, 1, 128}));
    flash_all(seq_first_packed_case(2, 12, 197, d));  // torch 2.11's nn.MultiheadAttention (ViT)
    flash_all(seq_first_packed_case(1, 4, 65, d, {1, 1, 1, 65}));
    for (int64_t sk : {90, 128}) {
      Case mixed{{2, 100, 3, d}, bhsd(2, 3, d, sk), {2, sk, 3, d}, {1, 1, 100, sk}, false, true};
      mixed.layout[0] = mixed.layout[2] = 1;
      flash_all(mixed);
    }
    Case out_only{bhsd(2, 3, 65, d), bhsd(2, 3, 65, d), bhsd(2, 3, 65, d), {}};
    out_only.out_layout = 1;
    flash_all(out_only);
    Case mha{{197, 6, d}, {197, 6, d}, {197, 6, d}, {}};
    mha.layout[0] = mha.layout[1] = mha.layout[2] = 1;
    mha.out_layout = 1;
    flash_all(mha);
    Case shared_kv{{2, 64, 4, d}, {2, 64, 1, d}, {2, 64, 1, d}, {2, 1, 1, 64}};
    shared_kv.layout[0] = shared_kv.layout[1] = shared_kv.layout[2] = 1;
    shared_kv.out_layout = 1;
    flash_all(shared_kv);
  }
}

// ---- The timed choice (KILN_ATTENTION unset) ----

namespace {

// One FusedAttention node with its inputs on the device and its CPU reference, run on any Resources.
class AttentionNode {
 public:
  AttentionNode(const Case& c, DataType dt) {
    inputs_ = attention_inputs(c, dt, dt);
    std::vector<ir::Value*> vals;
    std::vector<ir::TensorInfo> infos;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      vals.push_back(graph_.add_input("in" + std::to_string(i), dt, inputs_[i].shape()));
      infos.push_back(ir::TensorInfo{true, dt, inputs_[i].shape(), &inputs_[i]});
    }
    node_ = graph_.add_node("FusedAttention", "attn", vals, 1);
    set_attention_attrs(node_->attrs, c);
    out_info_ = ir::infer_node(*node_, infos).at(0);

    ref_ = cpu_reference("FusedAttention", node_->attrs, inputs_).at(0);

    for (const HostTensor& t : inputs_) {
      dev_in_.emplace_back(std::max<size_t>(t.nbytes(), 1));
      if (cudaMemcpy(dev_in_.back().get(), t.raw(), t.nbytes(), cudaMemcpyHostToDevice) != cudaSuccess)
        throw Error("cudaMemcpy of an input failed");
    }
    dev_out_ = cuda::DeviceBuffer(std::max<size_t>(out_bytes(), 1));
  }

  const HostTensor& reference() const { return ref_; }

  // One run of the registered kernel on `res` (poisoned output first), eagerly or captured into a CUDA graph
  // and replayed; the output.
  HostTensor run(cuda::Resources& res, bool capture) {
    cudaStream_t s = res.stream;
    cuda::KernelContext ctx{*node_, {}, {}, res};
    for (size_t i = 0; i < inputs_.size(); ++i)
      ctx.in.push_back(cuda::TensorRef{true, inputs_[i].dtype(), inputs_[i].shape(), dev_in_[i].get(), inputs_[i].raw()});
    ctx.out.push_back(cuda::TensorRef{true, out_info_.dtype, out_info_.shape, dev_out_.get(), nullptr});
    if (cudaMemsetAsync(dev_out_.get(), 0xFF, out_bytes(), s) != cudaSuccess) throw Error("cudaMemset failed");
    cuda::KernelFn fn = cuda::find_kernel("FusedAttention");
    if (!capture) fn(ctx);
    else CapturedGraph(s, [&] { fn(ctx); }).replay(s);
    const cudaError_t e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) throw Error(std::string("kernel failed: ") + cudaGetErrorString(e));
    HostTensor h(out_info_.dtype, out_info_.shape);
    if (cudaMemcpy(h.mutable_raw(), dev_out_.get(), out_bytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      throw Error("cudaMemcpy of the output failed");
    return h;
  }

 private:
  size_t out_bytes() const { return static_cast<size_t>(volume(out_info_.shape)) * dtype_size(out_info_.dtype); }

  ir::Graph graph_;
  ir::Node* node_ = nullptr;
  std::vector<HostTensor> inputs_;
  HostTensor ref_;
  ir::TensorInfo out_info_;
  std::vector<cuda::DeviceBuffer> dev_in_;
  cuda::DeviceBuffer dev_out_;
};

// A fresh context's resources (no node state) with cuBLASLt, the workspace and, optionally, a timing cache.
cuda::Resources fresh_resources(TimingCache* tactics) {
  cuda::Resources res;
  res.stream = test_stream();
  shared_library_handles().attach(res);
  res.tactics = tactics;
  return res;
}

}  // namespace

TEST(CudaAttentionFlash, TimedChoiceIsRecordedAndReused) {
  KILN_REQUIRE_CUDA_DEVICE();
  const Case cases[] = {
      Case{bhsd(2, 12, 128, 64), bhsd(2, 12, 128, 64), bhsd(2, 12, 128, 64), {2, 1, 1, 128}},  // BERT
      Case{bhsd(2, 12, 197, 64), bhsd(2, 12, 197, 64), bhsd(2, 12, 197, 64), {}},              // ViT
      tokens_major_case(1, 12, 128, 128, 64, {1, 1, 1, 128}),  // batch 1: the GEMM path applies (leading dims H * D)
      packed_case(1, 12, 197, 64),                             // batch 1, packed: slot offsets
      seq_first_packed_case(1, 12, 197, 64),                   // batch 1, sequence-first packed
  };
  for (const Case& c : cases) {
    for (DataType dt : low_types()) {
      SCOPED_TRACE(describe(c) + " " + dtype_name(dt));
      try {
        AttentionNode node(c, dt);
        const double tol = attention_tol(dt);
        HostTensor gemm_out, flash_out;
        {
          const ScopedEnv gemm("KILN_ATTENTION", "gemm");
          cuda::Resources res = fresh_resources(nullptr);
          gemm_out = node.run(res, false);
        }
        {
          const ScopedEnv flash("KILN_ATTENTION", "flash");
          cuda::Resources res = fresh_resources(nullptr);
          flash_out = node.run(res, false);
        }
        EXPECT_TRUE(compare(gemm_out, node.reference(), tol, false)) << "GEMM path";
        EXPECT_TRUE(compare(flash_out, node.reference(), tol, false)) << "flash kernel";

        const ScopedEnv timed("KILN_ATTENTION", nullptr);
        TimingCache cache;
        HostTensor chosen;
        {
          cuda::Resources res = fresh_resources(&cache);
          chosen = node.run(res, false);  // times both paths, records the faster
        }
        EXPECT_EQ(cache.size(), 1u) << "one attention-path record";
        EXPECT_TRUE(chosen.same_bytes(gemm_out) || chosen.same_bytes(flash_out)) << "the output of neither path";
        EXPECT_TRUE(compare(chosen, node.reference(), tol, false));
        {
          // A new context with the cache: its first run, inside a capture, takes the recorded path (after an
          // eager run with the GEMM path forced, which prepares cuBLASLt's descriptors and chooses nothing).
          cuda::Resources res = fresh_resources(&cache);
          {
            const ScopedEnv gemm("KILN_ATTENTION", "gemm");
            node.run(res, false);
          }
          EXPECT_TRUE(node.run(res, true).same_bytes(chosen)) << "the captured run did not take the recorded path";
        }
        {
          // Nothing recorded: a first choice inside a capture cannot time, so it takes the GEMM path.
          cuda::Resources res = fresh_resources(nullptr);
          {
            const ScopedEnv gemm("KILN_ATTENTION", "gemm");
            node.run(res, false);
          }
          EXPECT_TRUE(node.run(res, true).same_bytes(gemm_out)) << "a capture with nothing recorded must take the GEMM path";
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "threw: " << e.what();
      }
    }
  }
}

// Tokens-major with B > 1 and H > 1 (or only the output so): the (batch*head) slices have no uniform stride, so
// the GEMM path does not apply. The timed choice, KILN_ATTENTION=gemm and a capture with nothing recorded all
// take the flash kernel then, and nothing is recorded.
TEST(CudaAttentionFlash, GemmPathThatDoesNotApplyLeavesTheFlashKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  Case out_only{bhsd(2, 12, 128, 64), bhsd(2, 12, 128, 64), bhsd(2, 12, 128, 64), {2, 1, 1, 128}};
  out_only.out_layout = 1;
  const Case cases[] = {tokens_major_case(2, 12, 128, 128, 64, {2, 1, 1, 128}), packed_case(2, 12, 197, 64), out_only};
  for (const Case& c : cases) {
    for (DataType dt : low_types()) {
      SCOPED_TRACE(describe(c) + " " + dtype_name(dt));
      try {
        AttentionNode node(c, dt);
        HostTensor flash_out;
        {
          const ScopedEnv flash("KILN_ATTENTION", "flash");
          cuda::Resources res = fresh_resources(nullptr);
          flash_out = node.run(res, false);
        }
        EXPECT_TRUE(compare(flash_out, node.reference(), attention_tol(dt), false));
        {
          const ScopedEnv gemm("KILN_ATTENTION", "gemm");
          cuda::Resources res = fresh_resources(nullptr);
          EXPECT_TRUE(node.run(res, false).same_bytes(flash_out)) << "KILN_ATTENTION=gemm where it does not apply";
        }
        const ScopedEnv timed("KILN_ATTENTION", nullptr);
        TimingCache cache;
        {
          cuda::Resources res = fresh_resources(&cache);
          EXPECT_TRUE(node.run(res, false).same_bytes(flash_out)) << "the timed choice";
        }
        EXPECT_EQ(cache.size(), 0u) << "nothing to choose between: nothing recorded";
        {
          cuda::Resources res = fresh_resources(nullptr);
          EXPECT_TRUE(node.run(res, true).same_bytes(flash_out)) << "a capture with nothing recorded";
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "threw: " << e.what();
      }
    }
  }
}

TEST(CudaAttentionFlash, UnknownPathIsAnError) {
  KILN_REQUIRE_CUDA_DEVICE();
  const ScopedEnv bogus("KILN_ATTENTION", "fastest");
  const ::testing::AssertionResult r = check_op(
      "FusedAttention", attention_inputs(Case{bhsd(1, 1, 8, 64), bhsd(1, 1, 8, 64), bhsd(1, 1, 8, 64), {}}, DataType::kHALF,
                                         DataType::kHALF),
      [&](ir::Attrs& a) { set_attention_attrs(a, Case{bhsd(1, 1, 8, 64), {}, {}, {}}); });
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("KILN_ATTENTION must be auto, gemm or flash"), std::string::npos) << r.message();
}

// ---- What the flash kernel takes (host only) ----

namespace {

cuda::DeviceInfo h200_like() {
  cuda::DeviceInfo d;
  d.name = "test";
  d.major = 9;
  d.minor = 0;
  d.max_shared_per_block_optin = 227 * 1024;
  return d;
}

cuda::kern::FlashAttentionArgs flash_args(DataType dt, int64_t d, int64_t dv, bool k_transposed = false,
                                          const Case* stored = nullptr) {
  cuda::kern::FlashAttentionArgs a;
  a.dtype = dt;
  const Dims q{2, 12, 197, d}, k = k_transposed ? Dims{2, 12, d, 197} : Dims{2, 12, 197, d}, v{2, 12, 197, dv};
  const std::string err = stored ? attention_layout(stored->q, stored->k, stored->v, nullptr, attention_format_of(*stored), &a.L)
                                 : attention_layout(q, k, v, nullptr, k_transposed, &a.L);
  if (!err.empty()) throw Error(err);
  // Addresses are only checked for alignment here; nothing is dereferenced.
  a.q = reinterpret_cast<const void*>(uintptr_t{0x10000});
  a.k = reinterpret_cast<const void*>(uintptr_t{0x20000});
  a.v = reinterpret_cast<const void*>(uintptr_t{0x30000});
  a.out = reinterpret_cast<void*>(uintptr_t{0x40000});
  return a;
}

}  // namespace

TEST(CudaAttentionFlash, SupportedArguments) {
  const cuda::DeviceInfo dev = h200_like();
  for (DataType dt : {DataType::kHALF, DataType::kBF16})
    for (int64_t d : {64, 128}) {
      EXPECT_EQ(cuda::kern::flash_attention_unsupported(flash_args(dt, d, d), dev), "") << dtype_name(dt) << " " << d;
      EXPECT_EQ(cuda::kern::flash_attention_unsupported(flash_args(dt, d, d, true), dev), "") << "k transposed";
    }
  // k transposed with K^T rows of any alignment: staged element by element.
  cuda::kern::FlashAttentionArgs kt = flash_args(DataType::kHALF, 64, 64, true);
  kt.k = reinterpret_cast<const void*>(uintptr_t{0x20002});
  EXPECT_EQ(cuda::kern::flash_attention_unsupported(kt, dev), "");
  // Tokens-major rows (H * D apart) and packed slots (offsets of slot * H * D) keep 16-byte rows.
  for (const Case& c : {tokens_major_case(2, 12, 128, 128, 64), packed_case(2, 12, 197, 64), packed_case(1, 1, 5, 128)}) {
    EXPECT_EQ(cuda::kern::flash_attention_unsupported(flash_args(DataType::kHALF, 64, 64, false, &c), dev), "")
        << describe(c);
  }
  // Masks of every float dtype at any address (read element by element).
  cuda::kern::FlashAttentionArgs masked = flash_args(DataType::kBF16, 128, 128);
  masked.mask = reinterpret_cast<const void*>(uintptr_t{0x50002});
  for (DataType mdt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    masked.mask_dtype = mdt;
    EXPECT_EQ(cuda::kern::flash_attention_unsupported(masked, dev), "") << dtype_name(mdt);
  }
}

TEST(CudaAttentionFlash, UnsupportedArgumentsSayWhy) {
  const cuda::DeviceInfo dev = h200_like();
  auto why = [&](const cuda::kern::FlashAttentionArgs& a, const cuda::DeviceInfo& d) {
    return cuda::kern::flash_attention_unsupported(a, d);
  };
  EXPECT_NE(why(flash_args(DataType::kFLOAT, 64, 64), dev).find("dtype"), std::string::npos);
  EXPECT_NE(why(flash_args(DataType::kHALF, 80, 80), dev).find("head sizes"), std::string::npos);
  EXPECT_NE(why(flash_args(DataType::kHALF, 64, 128), dev).find("head sizes"), std::string::npos);
  EXPECT_NE(why(flash_args(DataType::kHALF, 256, 256), dev).find("head sizes"), std::string::npos);
  cuda::DeviceInfo turing = dev;
  turing.major = 7;
  turing.minor = 5;
  EXPECT_NE(why(flash_args(DataType::kHALF, 64, 64), turing).find("sm_75"), std::string::npos);
  cuda::DeviceInfo small = dev;
  small.max_shared_per_block_optin = 48 * 1024;  // D = 64 fits (45 KiB), D = 128 (85 KiB) does not
  EXPECT_EQ(why(flash_args(DataType::kHALF, 64, 64), small), "");
  EXPECT_NE(why(flash_args(DataType::kHALF, 128, 128), small).find("shared memory"), std::string::npos);
  for (int which = 0; which < 4; ++which) {
    cuda::kern::FlashAttentionArgs a = flash_args(DataType::kHALF, 64, 64);
    const void* odd = reinterpret_cast<const void*>(uintptr_t{0x60008});  // 8-byte aligned only
    if (which == 0) a.q = odd;
    if (which == 1) a.k = odd;
    if (which == 2) a.v = odd;
    if (which == 3) a.out = const_cast<void*>(odd);
    EXPECT_NE(why(a, dev).find("16-byte aligned"), std::string::npos) << "tensor " << which;
  }
  // Rows that are not 16 bytes apart, or matrices that do not start 16-byte aligned (strides and offsets in
  // 16-bit elements: 8 make 16 bytes).
  for (int which = 0; which < 6; ++which) {
    const Case tm = tokens_major_case(2, 12, 128, 128, 64);
    cuda::kern::FlashAttentionArgs a = flash_args(DataType::kHALF, 64, 64, false, &tm);
    if (which == 0) a.L.q_ss = 68;
    if (which == 1) a.L.k_ss = 772;
    if (which == 2) a.L.v_sh = 4;
    if (which == 3) a.L.o_ss = 770;
    if (which == 4) a.L.v_off = 3;
    if (which == 5) a.L.o_sb = 12;
    EXPECT_NE(why(a, dev).find("16-byte aligned"), std::string::npos) << "case " << which;
  }
  // K^T is also staged element by element: its strides never make the kernel decline.
  cuda::kern::FlashAttentionArgs kt = flash_args(DataType::kHALF, 64, 64, true);
  kt.L.k_ss = 199;  // rows 398 bytes apart
  EXPECT_EQ(why(kt, dev), "");
  cuda::kern::FlashAttentionArgs masked = flash_args(DataType::kHALF, 64, 64);
  masked.mask = reinterpret_cast<const void*>(uintptr_t{0x50000});
  masked.mask_dtype = DataType::kINT32;
  EXPECT_NE(why(masked, dev).find("mask dtype"), std::string::npos);
}

#endif  // KILN_WITH_CUDA
