// CUDA Pooling and GlobalPooling against the CPU kernels: every pooling type, 1 to 3 spatial dims, strides,
// dilation, explicit / ceil / SAME padding, exclude_pad on and off; both layouts (channels-last: the
// vectorized kernel where C allows 16-byte loads, the scalar one where it does not).
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_op_harness.h"
#include "backends/pooling_test_attrs.h"

namespace kiln {
namespace {

using namespace cudatest;
using pooltest::PoolWindow;
using pooltest::set_pooling_attrs;
using Ints = std::vector<int64_t>;

TEST(CudaPooling, TypesAndPadding) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims x;
    PoolWindow w;
  };
  const std::vector<Case> cases = {
      {{2, 3, 17}, {{3}, {2}, {1}, {1}, {1}, 0}},                       // 1-D
      {{1, 2, 9, 11}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0}},     // 2-D, padded
      {{1, 2, 9, 11}, {{2, 3}, {2, 2}, {0, 1}, {0, 1}, {1, 1}, 1}},     // ceil mode
      {{1, 2, 9, 11}, {{3, 2}, {1, 3}, {0, 0}, {0, 0}, {2, 1}, 2}},     // SAME_UPPER, dilation
      {{1, 2, 8, 7}, {{4, 3}, {3, 2}, {0, 0}, {0, 0}, {1, 1}, 3}},      // SAME_LOWER
      {{1, 2, 5, 6, 7}, {{2, 3, 2}, {2, 1, 2}, {1, 0, 1}, {0, 1, 1}, {1, 1, 2}, 0}},  // 3-D
      {{2, 1, 40, 40}, {{5, 5}, {1, 1}, {2, 2}, {2, 2}, {1, 1}, 0}},
  };
  for (DataType dt : float_types())
    for (const Case& c : cases)
      for (int64_t type : {0, 1, 2, 64})
        for (int64_t excl : {0, 1}) {
          if ((type == 0 || type == 64) && excl == 1) continue;
          Options opt;
          if (dt == DataType::kFLOAT) opt.tol = 2e-5;
          EXPECT_TRUE(check_op("Pooling", {randf(c.x, dt, 0.1, 2.0)}, [&](ir::Attrs& a) {
            set_pooling_attrs(a, c.w, type, excl, type == 64 && excl == 0 ? 3.0 : 2.0, false);
          }, opt)) << dtype_name(dt) << " " << dims_str(c.x) << " type " << type << " excl " << excl;
        }
}

TEST(CudaPooling, ChannelsLast) {
  KILN_REQUIRE_CUDA_DEVICE();
  struct Case {
    Dims sp;  // spatial dims of x [N, sp..., C]
    PoolWindow w;
  };
  const std::vector<Case> cases = {
      {{16, 14}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0}},        // the ResNet stem pool
      {{9, 11}, {{2, 3}, {2, 2}, {0, 1}, {0, 1}, {1, 1}, 1}},         // ceil mode
      {{9, 11}, {{3, 2}, {1, 3}, {0, 0}, {0, 0}, {2, 1}, 2}},         // SAME_UPPER, dilation
      {{8, 7}, {{4, 3}, {3, 2}, {0, 0}, {0, 0}, {1, 1}, 3}},          // SAME_LOWER
      {{17}, {{3}, {2}, {1}, {1}, {1}, 0}},                           // 1-D
      {{5, 6, 7}, {{2, 3, 2}, {2, 1, 2}, {1, 0, 1}, {0, 1, 1}, {1, 1, 2}, 0}},  // 3-D
      // Square 2x2 and 3x3 windows (MAX takes the unrolled kernel): stride 2, padding at both ends; stride 1;
      // ceil mode, the last windows past the end; stride 3 with windows that skip pixels.
      {{9, 10}, {{2, 2}, {2, 2}, {1, 0}, {0, 1}, {1, 1}, 0}},
      {{7, 9}, {{3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 0}},
      {{10, 9}, {{3, 3}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 1}},
      {{11, 8}, {{2, 2}, {3, 3}, {0, 1}, {0, 0}, {1, 1}, 0}},
  };
  for (DataType dt : float_types())
    for (int64_t C : {3, 64, 67})
      for (const Case& c : cases)
        for (int64_t type : {0, 1, 2, 64})
          for (int64_t excl : {0, 1}) {
            if ((type == 0 || type == 64) && excl == 1) continue;
            Dims x{2};
            x.insert(x.end(), c.sp.begin(), c.sp.end());
            x.push_back(C);
            Options opt;
            if (dt == DataType::kFLOAT) opt.tol = 2e-5;
            EXPECT_TRUE(check_op("Pooling", {randf(x, dt, 0.1, 2.0)}, [&](ir::Attrs& a) {
              set_pooling_attrs(a, c.w, type, excl, type == 64 && excl == 0 ? 3.0 : 2.0, true);
            }, opt)) << dtype_name(dt) << " " << dims_str(x) << " type " << type << " excl " << excl;
          }
}

// Stem-like max pools over many pixels (64 channels: the 16-byte path in every dtype): ResNet's 3x3/2 with
// padding 1, and a 2x2/2 without padding, both through the unrolled kernel.
TEST(CudaPooling, ChannelsLastLarge) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (int64_t k : {3, 2})
    for (DataType dt : float_types())
      EXPECT_TRUE(check_op("Pooling", {randf({4, 56, 56, 64}, dt)}, [&](ir::Attrs& a) {
        a.set("type", int64_t{0});
        a.set("window", Ints{k, k});
        a.set("stride", Ints{2, 2});
        a.set("pre_padding", Ints{k - 2, k - 2});
        a.set("post_padding", Ints{k - 2, k - 2});
        a.set("channels_last", int64_t{1});
      })) << dtype_name(dt) << " window " << k;
}

TEST(CudaGlobalPooling, Types) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (const Dims& x : std::vector<Dims>{{2, 3, 1}, {2, 3, 7}, {1, 4, 33, 35}, {2, 2, 3, 4, 5}})
      for (int64_t type : {0, 1, 64})
        for (double p : {2.0, 3.0}) {
          if (type != 64 && p != 2.0) continue;
          Options opt;
          if (dt == DataType::kFLOAT) opt.tol = 2e-5;
          EXPECT_TRUE(check_op("GlobalPooling", {randf(x, dt)}, [&](ir::Attrs& a) {
            a.set("type", type);
            a.set("p", p);
          }, opt)) << dtype_name(dt) << " " << dims_str(x) << " type " << type;
        }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
