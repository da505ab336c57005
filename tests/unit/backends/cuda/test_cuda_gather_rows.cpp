// The CUDA Gather's row path (kernels/gather.cu, k_gather_rows: ONNX Gather copying whole rows of at least 64
// bytes, one warp per row chunk, in the widest unit of 16/8/4/2/1 bytes that the row size and both pointers
// allow), byte for byte against a host reference with the kernel's semantics (negative indices count from
// the end, out-of-range ones give zero rows), and against the CPU kernel for in-range indices. Cases: the
// embedding lookup it was written for, row sizes that pick every unit, misaligned data and output, a gather
// along an inner axis (rows split into (outer, index)), rows longer than one warp's chunk, more rows than
// the grid's y dimension covers at once, out-of-range indices on the device only, and rows one byte short
// of the threshold (the element kernel). Element sizes 1, 2, 4 and 8 bytes; int32 and int64 indices.
#ifdef KILN_WITH_CUDA
#include <cstring>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cuda_run_placed.h"

namespace kiln {
namespace {

using namespace cudatest;

const std::vector<DataType>& size_types() {
  static const std::vector<DataType> t = {DataType::kUINT8, DataType::kHALF, DataType::kFLOAT, DataType::kINT64};
  return t;
}

HostTensor any(Dims shape, DataType dt) {
  if (dt == DataType::kUINT8) return rand_ints(std::move(shape), dt, 0, 250);
  return rand_ints(std::move(shape), dt, -1000, 1000);
}

// ONNX Gather along `axis` with the CUDA kernels' handling of bad indices: index v < 0 counts from the end,
// and a v outside [-N, N) gives a row of zero bytes.
HostTensor gather_ref(const HostTensor& data, const HostTensor& idx, int64_t axis) {
  const Dims& ds = data.shape();
  const int64_t r = static_cast<int64_t>(ds.size());
  if (axis < 0) axis += r;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= ds[d];
  for (int64_t d = axis + 1; d < r; ++d) inner *= ds[d];
  const int64_t N = ds[axis], nidx = idx.numel();
  Dims ys(ds.begin(), ds.begin() + axis);
  ys.insert(ys.end(), idx.shape().begin(), idx.shape().end());
  ys.insert(ys.end(), ds.begin() + axis + 1, ds.end());
  HostTensor y(data.dtype(), ys);
  const size_t row = static_cast<size_t>(inner) * dtype_size(data.dtype());
  const char* x = static_cast<const char*>(data.raw());
  char* out = static_cast<char*>(y.mutable_raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < nidx; ++j) {
      int64_t v = idx.get_i64(j);
      char* dst = out + (o * nidx + j) * row;
      if (v < -N || v >= N) {
        std::memset(dst, 0, row);
        continue;
      }
      if (v < 0) v += N;
      std::memcpy(dst, x + (o * N + v) * row, row);
    }
  return y;
}

// Runs Gather with data and output at element offsets and compares with gather_ref byte for byte.
::testing::AssertionResult check_rows(const HostTensor& data, const HostTensor& idx, int64_t axis, int64_t data_off = 0,
                                      int64_t out_off = 0, bool host_copies = true) {
  HostTensor got;
  ::testing::AssertionResult r = run_placed("Gather", {data, idx}, [&](ir::Attrs& a) { a.set("axis", axis); },
                                            {data_off, 0}, out_off, &got, host_copies);
  if (!r) return r;
  const HostTensor want = gather_ref(data, idx, axis);
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << dims_str(got.shape()) << ", expected " << dims_str(want.shape());
  const unsigned char* g = static_cast<const unsigned char*>(got.raw());
  const unsigned char* w = static_cast<const unsigned char*>(want.raw());
  for (size_t i = 0; i < want.nbytes(); ++i)
    if (g[i] != w[i]) return ::testing::AssertionFailure() << "byte " << i << " of " << want.nbytes() << " differs";
  return ::testing::AssertionSuccess();
}

TEST(CudaGatherRows, EmbeddingLookupMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : size_types())
    for (DataType it : {DataType::kINT32, DataType::kINT64}) {
      const HostTensor table = any({50, 768}, dt);
      const HostTensor ids = rand_ints({4, 33}, it, -50, 49);  // negative ids count from the end
      Options opt;
      opt.tol = 0;  // a copy: exact
      EXPECT_TRUE(check_op("Gather", {table, ids}, {}, opt)) << dtype_name(dt) << " " << dtype_name(it);
      EXPECT_TRUE(check_rows(table, ids, 0)) << dtype_name(dt) << " " << dtype_name(it);
    }
}

TEST(CudaGatherRows, EveryCopyUnitAndMisalignedPointers) {
  KILN_REQUIRE_CUDA_DEVICE();
  // Row lengths in elements; with 1-byte elements the units are 16, 1, 2, 4, 8, 16, 1 and 4 bytes. Data or
  // output offsets of a few elements narrow the unit further.
  for (DataType dt : size_types())
    for (int64_t inner : {64, 65, 66, 68, 72, 80, 97, 100})
      for (int64_t data_off : {0, 1, 2, 4})
        for (int64_t out_off : {0, 1, 3}) {
          const HostTensor data = any({9, inner}, dt);
          const HostTensor ids = rand_ints({3, 5}, DataType::kINT64, -9, 8);
          EXPECT_TRUE(check_rows(data, ids, 0, data_off, out_off))
              << dtype_name(dt) << " rows of " << inner << ", data offset " << data_off << ", output offset " << out_off;
        }
}

TEST(CudaGatherRows, InnerAxisLongRowsAndManyRows) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : size_types()) {
    // Rows split into (outer, index): data [3, 10, 64] along axis 1 (and -2), indices [2, 5].
    const HostTensor d3 = any({3, 10, 64}, dt);
    for (int64_t axis : {1, -2})
      EXPECT_TRUE(check_rows(d3, rand_ints({2, 5}, DataType::kINT32, -10, 9), axis)) << dtype_name(dt) << " axis " << axis;
    // Axis 0 of a rank-4 tensor with rows that span two dims.
    EXPECT_TRUE(check_rows(any({4, 3, 2, 40}, dt), rand_ints({6}, DataType::kINT64, -4, 3), 0)) << dtype_name(dt);
    // Rows longer than one warp's chunk (32 lanes x 4 units): 5000 elements.
    EXPECT_TRUE(check_rows(any({6, 5000}, dt), rand_ints({7}, DataType::kINT64, -6, 5), 0)) << dtype_name(dt);
    EXPECT_TRUE(check_rows(any({6, 5000}, dt), rand_ints({7}, DataType::kINT64, -6, 5), 0, 1, 1)) << dtype_name(dt);
  }
  // More rows than 65535 blocks x 8 rows: the grid-stride loop over rows (64-byte rows of float16).
  EXPECT_TRUE(check_rows(any({10, 32}, DataType::kHALF), rand_ints({530000}, DataType::kINT32, -10, 9), 0));
}

TEST(CudaGatherRows, OutOfRangeIndicesOnTheDeviceGiveZeroRows) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : size_types())
    for (DataType it : {DataType::kINT32, DataType::kINT64}) {
      HostTensor ids = rand_ints({2, 6}, it, -12, 11);
      // Explicit edge values: the first and last valid ones and the nearest invalid ones on each side.
      const std::vector<int64_t> edges = {-12, 11, -13, 12, 1000, -1000};
      for (size_t i = 0; i < edges.size(); ++i) mtest::set_elem(ids, static_cast<int64_t>(i), static_cast<double>(edges[i]));
      // Without host copies the kernel cannot check them first (with them it fails, as the CPU does).
      EXPECT_TRUE(check_rows(any({12, 96}, dt), ids, 0, 0, 0, false)) << dtype_name(dt) << " " << dtype_name(it);
      EXPECT_TRUE(check_rows(any({2, 12, 80}, dt), ids, 1, 1, 0, false)) << dtype_name(dt) << " " << dtype_name(it);
    }
}

TEST(CudaGatherRows, RowsBelowThresholdTakeTheElementKernel) {
  KILN_REQUIRE_CUDA_DEVICE();
  // Rows just under the 64-byte row path (63, 62, 60 and 56 bytes by element size) and exactly at it.
  for (DataType dt : size_types()) {
    const int64_t es = static_cast<int64_t>(dtype_size(dt));
    const int64_t below = std::max<int64_t>(1, 63 / es), above = 64 / es;
    for (int64_t inner : {below, above})
      for (int64_t out_off : {0, 1}) {
        const HostTensor data = any({7, inner}, dt);
        const HostTensor ids = rand_ints({3, 4}, DataType::kINT64, -7, 6);
        EXPECT_TRUE(check_rows(data, ids, 0, 0, out_off)) << dtype_name(dt) << " rows of " << inner;
        Options opt;
        opt.tol = 0;
        EXPECT_TRUE(check_op("Gather", {data, ids}, {}, opt)) << dtype_name(dt) << " rows of " << inner;
      }
  }
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
