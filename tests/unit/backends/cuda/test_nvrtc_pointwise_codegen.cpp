// The FusedPointwise code generator's output compiles with NVRTC for every opcode, dtype and input layout.
// Needs the toolkit's NVRTC library, not a GPU: it compiles to PTX (compute_90) and to a cubin (sm_90),
// so syntax and type errors in generated code show up on machines without a device.
#ifdef KILN_WITH_CUDA
#include <gtest/gtest.h>

#include "backends/cuda/nvrtc/nvrtc_module.h"
#include "backends/cuda/nvrtc/pointwise_codegen.h"
#include "backends/cuda/pointwise_programs.h"

using namespace kiln;
using kiln::cuda::InputKind;
using kiln::cuda::PointwiseSpec;

namespace {

PointwiseSpec spec_of(const pwtest::TestProgram& t, int layout) {
  PointwiseSpec s;
  s.program = t.program;
  s.input_dtypes = t.inputs;
  const size_t n = t.inputs.size();
  switch (layout) {
    case 0:  // every input flat: the vectorized path
      s.kinds.assign(n, InputKind::kFlat);
      s.index32 = true;
      break;
    case 1:  // a scalar, the rest broadcast through a rank-3 space, 64-bit indices
      for (size_t i = 0; i < n; ++i) s.kinds.push_back(i == 0 && n > 1 ? InputKind::kScalar : InputKind::kStrided);
      s.rank = 3;
      break;
    default:  // flat and strided mixed, rank 2
      for (size_t i = 0; i < n; ++i) s.kinds.push_back(i % 2 ? InputKind::kStrided : InputKind::kFlat);
      s.rank = 2;
      s.index32 = true;
      break;
  }
  return s;
}

}  // namespace

TEST(NvrtcPointwiseCodegen, EveryProgramCompilesToPtx) {
  for (const pwtest::TestProgram& t : pwtest::all_programs()) {
    for (int layout = 0; layout < 3; ++layout) {
      SCOPED_TRACE(t.name + " layout " + std::to_string(layout));
      std::string src;
      ASSERT_NO_THROW(src = cuda::pointwise_source(spec_of(t, layout), "kiln_test_kernel")) << ir::pw::to_string(t.program);
      cuda::nvrtc::Image img;
      ASSERT_NO_THROW(img = cuda::nvrtc::compile(src, "compute_90"));
      EXPECT_FALSE(img.cubin);
      ASSERT_GT(img.data.size(), 100u);
      const std::string ptx(img.data.data());
      EXPECT_NE(ptx.find(".entry kiln_test_kernel"), std::string::npos);
    }
  }
}

TEST(NvrtcPointwiseCodegen, CompilesToCubin) {
  const pwtest::TestProgram t = pwtest::float_program(DataType::kHALF);
  const std::string src = cuda::pointwise_source(spec_of(t, 1), "kiln_test_kernel");
  cuda::nvrtc::Image img = cuda::nvrtc::compile(src, "sm_90");
  EXPECT_TRUE(img.cubin);
  EXPECT_GT(img.data.size(), 100u);
}

TEST(NvrtcPointwiseCodegen, CompileErrorsNameTheLineAndSource) {
  try {
    cuda::nvrtc::compile("extern \"C\" __global__ void k() { undefined_thing(); }\n", "compute_90");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("undefined_thing"), std::string::npos) << m;
    EXPECT_NE(m.find("1: extern"), std::string::npos) << m;
  }
}

TEST(NvrtcPointwiseCodegen, TargetArch) {
  EXPECT_EQ(cuda::nvrtc::target_arch(9, 0), "sm_90");
  const std::string future = cuda::nvrtc::target_arch(99, 9);
  EXPECT_EQ(future.rfind("compute_", 0), 0u) << future;
  EXPECT_THROW(cuda::nvrtc::target_arch(1, 0), Error);
}

// The launch geometry plan_layout computes, walked as the generated kernel walks it, reaches the element
// numpy broadcasting names, for every output index.
TEST(NvrtcPointwiseCodegen, LayoutOffsetsMatchBroadcasting) {
  const std::vector<std::pair<std::vector<Dims>, Dims>> cases = {
      {{{4, 33}, {1}}, {4, 33}},
      {{{2, 3, 4}, {4}}, {2, 3, 4}},
      {{{2, 3, 4, 5}, {1, 3, 1, 1}, {5}}, {2, 3, 4, 5}},
      {{{3, 1, 5}, {1, 4, 1}}, {3, 4, 5}},
      {{{2, 1, 3, 1, 2}, {2, 2, 1, 3, 2}}, {2, 2, 3, 3, 2}},
      {{{6, 1}, {6, 7}}, {6, 7}},
      {{{2, 1, 3, 1, 5}, {4, 3, 1, 5}, {2, 4, 1, 1, 1}, {1}}, {1, 2, 4, 3, 1, 5}},
      {{{1, 7, 1}, {5, 1, 1}}, {5, 7, 3}},
  };
  for (const auto& [ins, out] : cases) {
    SCOPED_TRACE(dims_str(out));
    PointwiseSpec s;
    std::vector<int64_t> geo;
    cuda::plan_layout(s, ins, out, &geo);
    ASSERT_EQ(s.kinds.size(), ins.size());
    ASSERT_EQ(static_cast<int>(geo.size()), s.geo_size());
    const int R = s.rank;
    const int64_t n = volume(out);
    for (int64_t i = 0; i < n; ++i) {
      // numpy: unravel i over out, then each input's index with broadcast dims at 0.
      std::vector<int64_t> idx(out.size());
      for (int64_t d = static_cast<int64_t>(out.size()) - 1, r = i; d >= 0; --d) {
        idx[d] = r % out[d];
        r /= out[d];
      }
      int j = 0;  // strided input counter
      for (size_t k = 0; k < ins.size(); ++k) {
        const Dims& sh = ins[k];
        int64_t want = 0;
        for (size_t a = 0; a < sh.size(); ++a) {
          const int64_t id = sh[a] == 1 ? 0 : idx[out.size() - sh.size() + a];
          want = want * sh[a] + id;
        }
        int64_t got;
        switch (s.kinds[k]) {
          case InputKind::kFlat: got = i; break;
          case InputKind::kScalar: got = 0; break;
          default: {  // as the generated loop
            int64_t rem = i, o = 0;
            for (int d = R - 1; d >= 1; --d) {
              const int64_t q = rem / geo[d], c = rem - q * geo[d];
              rem = q;
              o += c * geo[R + j * R + d];
            }
            got = o + rem * geo[R + j * R];
            ++j;
          }
        }
        ASSERT_EQ(got, want) << "input " << k << " element " << i;
      }
    }
  }
  PointwiseSpec s;
  std::vector<int64_t> geo;
  EXPECT_THROW(cuda::plan_layout(s, {{3}}, {4}, &geo), Error);
}

TEST(NvrtcPointwiseCodegen, InvalidProgramsAreRefused) {
  PointwiseSpec s;
  s.program.input(0, DataType::kFLOAT);
  s.program.add({ir::pw::kElementWise, ir::pw::kSum, DataType::kFLOAT, 0, 5, 0});  // operand from the future
  s.input_dtypes = {DataType::kFLOAT};
  s.kinds = {InputKind::kFlat};
  EXPECT_THROW(cuda::pointwise_source(s, "k"), Error);
}

#endif  // KILN_WITH_CUDA
