// The CUDA Gather with a fused addend (kernels/gather_addend.cu): rows gathered along axis 0 plus the addend,
// summed in float32 and rounded once. Against the CPU kernel on float32 copies within the dtype's tolerance
// (the harness), and bit for bit against a host reference of the kernel's own rounding and bad-index rule (a
// row whose index is out of range is the addend's row: a zero row plus the addend, as the unfused Gather and
// SUM give). Cases: GPT-2's lookup, every addend shape the row path takes and the broadcasts the element path
// takes (the gathered side broadcast among them), row sizes and misaligned tensors that pick
// each copy unit (16, 8, 4, 2 bytes), rows longer than a warp's chunk, more rows than the grid covers at once,
// out-of-range indices on the device (and their host check when the indices have a host copy). The `supports`
// test needs no device.
#ifdef KILN_WITH_CUDA
#include <cstring>

#include "backends/cuda/cuda_op_harness.h"
#include "backends/cuda/cuda_run_placed.h"
#include "backends/gather_addend_reference.h"

namespace kiln {
namespace {

using namespace cudatest;

auto axis0 = [](ir::Attrs& a) { a.set("axis", int64_t{0}); };

using gather_addend_test::reference;

// Runs the fused Gather with each tensor at an element offset (table, ids, addend; output) and compares with
// the reference byte for byte.
::testing::AssertionResult check_exact(const HostTensor& table, const HostTensor& ids, const HostTensor& addend,
                                       std::vector<int64_t> in_offsets = {}, int64_t out_offset = 0,
                                       bool host_copies = true) {
  HostTensor got;
  ::testing::AssertionResult r =
      run_placed("Gather", {table, ids, addend}, axis0, in_offsets, out_offset, &got, host_copies);
  if (!r) return r;
  const HostTensor want = reference(table, ids, addend);
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << dims_str(got.shape()) << ", expected "
                                         << dims_str(want.shape());
  const unsigned char* g = static_cast<const unsigned char*>(got.raw());
  const unsigned char* w = static_cast<const unsigned char*>(want.raw());
  for (size_t i = 0; i < want.nbytes(); ++i)
    if (g[i] != w[i]) return ::testing::AssertionFailure() << "byte " << i << " of " << want.nbytes() << " differs";
  return ::testing::AssertionSuccess();
}

TEST(CudaGatherAddend, EmbeddingLookupMatchesCpu) {
  KILN_REQUIRE_CUDA_DEVICE();
  // GPT-2's shapes with a smaller vocabulary: [V, 768] rows by [1, 128] ids plus the [1, 128, 768] positions.
  for (DataType dt : float_types())
    for (DataType it : {DataType::kINT32, DataType::kINT64}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dtype_name(it));
      const HostTensor table = randf({500, 768}, dt);
      const HostTensor ids = rand_ints({1, 128}, it, -500, 499);  // negative ids count from the end
      const HostTensor pos = randf({1, 128, 768}, dt);
      EXPECT_TRUE(check_op("Gather", {table, ids, pos}, axis0));
      EXPECT_TRUE(check_exact(table, ids, pos));
    }
}

TEST(CudaGatherAddend, EveryAddendShape) {
  KILN_REQUIRE_CUDA_DEVICE();
  // Ids [3, 7] (output [3, 7, 96]): the addend as the output, one sequence, one row; ids [5]: per row, one row.
  struct Case {
    Dims ids, addend;
  };
  const Case cases[] = {{{3, 7}, {3, 7, 96}}, {{3, 7}, {1, 7, 96}}, {{3, 7}, {7, 96}}, {{3, 7}, {1, 1, 96}},
                        {{3, 7}, {96}},       {{5}, {5, 96}},       {{5}, {1, 96}}};
  for (DataType dt : float_types())
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " ids " + dims_str(c.ids) + " addend " + dims_str(c.addend));
      const HostTensor table = randf({40, 96}, dt);
      const HostTensor ids = rand_ints(c.ids, DataType::kINT64, -40, 39);
      const HostTensor addend = randf(c.addend, dt);
      EXPECT_TRUE(check_op("Gather", {table, ids, addend}, axis0));
      EXPECT_TRUE(check_exact(table, ids, addend));
    }
  // A table of three dims: rows of [3, 40] and an addend of whole rows.
  for (DataType dt : float_types()) {
    const HostTensor table = randf({9, 3, 40}, dt), ids = rand_ints({2, 4}, DataType::kINT32, -9, 8);
    const HostTensor addend = randf({4, 3, 40}, dt);
    EXPECT_TRUE(check_op("Gather", {table, ids, addend}, axis0)) << dtype_name(dt);
    EXPECT_TRUE(check_exact(table, ids, addend)) << dtype_name(dt);
  }
}

TEST(CudaGatherAddend, EveryOtherBroadcastByElements) {
  KILN_REQUIRE_CUDA_DEVICE();
  // The shared element-path shapes (gather_addend_reference.h), misaligned too, and with bad indices on the
  // device (a zero row plus the addend).
  for (DataType dt : float_types())
    for (const gather_addend_test::ElementCase& c : gather_addend_test::element_path_cases(96)) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " ids " + dims_str(c.ids) + " addend " + dims_str(c.addend));
      const HostTensor table = randf({40, 96}, dt);
      HostTensor ids = rand_ints(c.ids, DataType::kINT64, -40, 39);
      const HostTensor addend = randf(c.addend, dt);
      EXPECT_TRUE(check_op("Gather", {table, ids, addend}, axis0));
      EXPECT_TRUE(check_exact(table, ids, addend));
      EXPECT_TRUE(check_exact(table, ids, addend, {1, 0, 1}, 1)) << "misaligned";
      mtest::set_elem(ids, 0, 40.0);  // out of range: without host copies the device reads a zero row
      EXPECT_TRUE(check_exact(table, ids, addend, {}, 0, false));
    }
}

TEST(CudaGatherAddend, EveryCopyUnitAndMisalignedPointers) {
  KILN_REQUIRE_CUDA_DEVICE();
  // Row lengths in elements: for float16 the units are 16, 8, 4, 2, 16, 8, 4 and 2 bytes (float32: from 16 down
  // to 4). Offsets of one or two elements on the table, the addend or the output narrow the unit further.
  for (DataType dt : float_types())
    for (int64_t inner : {8, 4, 2, 1, 24, 20, 18, 17})
      for (int64_t table_off : {0, 1})
        for (int64_t addend_off : {0, 2})
          for (int64_t out_off : {0, 1, 3}) {
            SCOPED_TRACE(std::string(dtype_name(dt)) + " rows of " + std::to_string(inner) + ", offsets " +
                         std::to_string(table_off) + " / " + std::to_string(addend_off) + " / " +
                         std::to_string(out_off));
            const HostTensor table = randf({9, inner}, dt);
            const HostTensor ids = rand_ints({3, 5}, DataType::kINT64, -9, 8);
            const HostTensor addend = randf({5, inner}, dt);
            EXPECT_TRUE(check_exact(table, ids, addend, {table_off, 0, addend_off}, out_off));
          }
}

TEST(CudaGatherAddend, LongRowsAndManyRows) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types()) {
    // Rows longer than one warp's chunk (32 lanes x 4 units): 5000 elements, aligned and not.
    const HostTensor table = randf({6, 5000}, dt), ids = rand_ints({7}, DataType::kINT64, -6, 5);
    const HostTensor addend = randf({7, 5000}, dt);
    EXPECT_TRUE(check_exact(table, ids, addend)) << dtype_name(dt);
    EXPECT_TRUE(check_exact(table, ids, addend, {1, 0, 1}, 1)) << dtype_name(dt);
  }
  // More rows than 65535 blocks x 8 rows: the grid-stride loop over rows; the addend's rows repeat every 265000.
  const HostTensor table = randf({10, 32}, DataType::kHALF);
  const HostTensor ids = rand_ints({2, 265000}, DataType::kINT32, -10, 9);
  EXPECT_TRUE(check_exact(table, ids, randf({265000, 32}, DataType::kHALF)));
  EXPECT_TRUE(check_exact(table, ids, randf({32}, DataType::kHALF)));
}

TEST(CudaGatherAddend, OutOfRangeIndicesOnTheDeviceGiveTheAddendRow) {
  KILN_REQUIRE_CUDA_DEVICE();
  for (DataType dt : float_types())
    for (DataType it : {DataType::kINT32, DataType::kINT64}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dtype_name(it));
      HostTensor ids = rand_ints({2, 6}, it, -12, 11);
      // The first and last valid ids and the nearest invalid ones on each side.
      const std::vector<int64_t> edges = {-12, 11, -13, 12, 1000, -1000};
      for (size_t i = 0; i < edges.size(); ++i)
        mtest::set_elem(ids, static_cast<int64_t>(i), static_cast<double>(edges[i]));
      const HostTensor table = randf({12, 96}, dt);
      for (Dims a : {Dims{2, 6, 96}, Dims{96}}) {
        const HostTensor addend = randf(a, dt);
        // Without host copies the kernel cannot check the ids first.
        EXPECT_TRUE(check_exact(table, ids, addend, {}, 0, false)) << dims_str(a);
        // With them it fails naming the index, as the CPU does and as the Gather without an addend does.
        HostTensor unused;
        const ::testing::AssertionResult r = run_placed("Gather", {table, ids, addend}, axis0, {}, 0, &unused, true);
        EXPECT_FALSE(r);
        EXPECT_NE(std::string(r.message()).find("out of range for axis 0 of size 12"), std::string::npos)
            << r.message();
      }
    }
}

ir::TensorInfo info(DataType dt, Dims shape) {
  ir::TensorInfo t;
  t.dtype = dt;
  t.shape = std::move(shape);
  return t;
}

bool supported(std::vector<ir::TensorInfo> ins, int64_t axis = 0, int64_t mode = 0) {
  ir::Graph g;
  std::vector<ir::Value*> vals;
  for (size_t i = 0; i < ins.size(); ++i)
    vals.push_back(g.add_input("in" + std::to_string(i), ins[i].dtype, ins[i].shape));
  ir::Node* n = g.add_node("Gather", "node", vals, 1);
  n->attrs.set("axis", axis);
  n->attrs.set("mode", mode);
  return cuda::supports(*n, ins);
}

TEST(CudaGatherAddend, SupportsWhatTheFusionWritesAndNothingElse) {
  const auto ids = info(DataType::kINT64, {-1, 128});
  for (DataType dt : float_types()) {
    const auto table = info(dt, {50257, 768});
    EXPECT_TRUE(supported({table, ids, info(dt, {1, 128, 768})})) << dtype_name(dt);
    EXPECT_TRUE(supported({table, ids, info(dt, {128, 768})})) << dtype_name(dt);
    EXPECT_TRUE(supported({table, ids, info(dt, {-1, 128, 768})})) << dtype_name(dt);
    EXPECT_TRUE(supported({table, info(DataType::kINT32, {1, 128}), info(dt, {768})}, -2)) << dtype_name(dt);
    // Broadcasts the row path does not take go by elements.
    EXPECT_TRUE(supported({table, ids, info(dt, {2, 128, 768})})) << "the gathered batch broadcast";
    EXPECT_TRUE(supported({table, ids, info(dt, {128, 1})})) << "broadcasts inside a row";
    EXPECT_FALSE(supported({table, ids, info(dt, {3, 768})})) << "3 against 128: no broadcast";
    EXPECT_FALSE(supported({table, ids, info(dt, {1, 128, 700})})) << "700 against 768: no broadcast";
  }
  const auto f32 = info(DataType::kFLOAT, {50, 16}), ids2 = info(DataType::kINT64, {1, 7});
  EXPECT_FALSE(supported({f32, ids2, info(DataType::kHALF, {1, 7, 16})})) << "dtypes differ";
  EXPECT_FALSE(supported({info(DataType::kINT32, {50, 16}), ids2, info(DataType::kINT32, {1, 7, 16})})) << "int32";
  EXPECT_FALSE(supported({info(DataType::kDOUBLE, {50, 16}), ids2, info(DataType::kDOUBLE, {1, 7, 16})})) << "float64";
  EXPECT_FALSE(supported({info(DataType::kFLOAT, {4, 50, 16}), ids2, info(DataType::kFLOAT, {4, 1, 7, 16})}, 1))
      << "axis 1";
  EXPECT_FALSE(supported({f32, info(DataType::kINT64, {3, 16}), info(DataType::kFLOAT, {3, 16})}, 0, 1)) << "ELEMENT";
  EXPECT_TRUE(supported({f32, ids2})) << "without an addend, as before";
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
