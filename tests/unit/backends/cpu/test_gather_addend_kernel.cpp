// The CPU Gather with a fused addend (input 2; backends/cpu/kernels/gather_addend.h) bit for bit against a
// reference written here (each sum in float32, rounded once to the dtype), in float32, float16 and bfloat16,
// for addends added by rows and by elements (every other broadcast, the gathered side broadcast included),
// int32 and int64 indices with negative ones, and rows split over the thread pool; float32 also against the
// unfused Gather then ElementWise SUM. Out-of-range indices fail as they do without an addend, and an addend
// that does not broadcast fails naming both shapes.
#include <gtest/gtest.h>

#include <string>

#include "backends/cpu/math_kernel_test_util.h"
#include "backends/gather_addend_reference.h"

namespace kiln {
namespace {

using mtest::rand_float;
using mtest::rand_ints;

constexpr int64_t kSum = 0;  // ElementWise SUM

using gather_addend_test::reference;

HostTensor gather_with_addend(const HostTensor& table, const HostTensor& ids, const HostTensor& addend,
                              int64_t axis = 0, cpu::ThreadPool* pool = nullptr) {
  return mtest::run1("Gather", {&table, &ids, &addend}, [&](ir::Attrs& a) { a.set("axis", axis); }, pool);
}

TEST(GatherAddendKernel, EveryAddendShapeAndDtypeBitForBit) {
  struct Case {
    Dims ids, addend;
  };
  const Case cases[] = {{{1, 7}, {1, 7, 24}}, {{1, 7}, {7, 24}}, {{3, 7}, {7, 24}}, {{3, 7}, {1, 1, 24}},
                        {{3, 7}, {24}},       {{3, 7}, {3, 7, 24}}, {{5}, {5, 24}},  {{5}, {1, 24}}};
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    for (DataType it : {DataType::kINT32, DataType::kINT64})
      for (const Case& c : cases) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dtype_name(it) + " ids " + dims_str(c.ids) + " addend " +
                     dims_str(c.addend));
        const HostTensor table = rand_float({11, 24}, dt);
        const HostTensor ids = rand_ints(c.ids, it, -11, 10);  // negative ids count from the end
        const HostTensor addend = rand_float(c.addend, dt);
        const HostTensor got = gather_with_addend(table, ids, addend);
        const HostTensor want = reference(table, ids, addend);
        ASSERT_EQ(got.shape(), want.shape());
        EXPECT_TRUE(got.same_bytes(want));
        EXPECT_EQ(gather_with_addend(table, ids, addend, -2).shape(), want.shape()) << "axis -2 is axis 0";
      }
}

TEST(GatherAddendKernel, RowsOfSeveralDimsAndManyRowsOverThePool) {
  // A 3-D table: rows of [3, 8]; the addend covers whole rows.
  const HostTensor t3 = rand_float({6, 3, 8});
  const HostTensor i3 = rand_ints({2, 4}, DataType::kINT64, -6, 5);
  for (Dims a : {Dims{2, 4, 3, 8}, Dims{4, 3, 8}, Dims{3, 8}}) {
    const HostTensor addend = rand_float(a);
    EXPECT_TRUE(gather_with_addend(t3, i3, addend).same_bytes(reference(t3, i3, addend))) << dims_str(a);
  }
  // 256 rows of 2 KiB: the pool splits them; the addend's row repeats every 32 rows.
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF}) {
    const HostTensor table = rand_float({300, 512}, dt);
    const HostTensor ids = rand_ints({8, 32}, DataType::kINT64, 0, 299);
    const HostTensor addend = rand_float({32, 512}, dt);
    EXPECT_TRUE(gather_with_addend(table, ids, addend, 0, mtest::test_pool()).same_bytes(reference(table, ids, addend)))
        << dtype_name(dt);
  }
}

TEST(GatherAddendKernel, Float32MatchesTheUnfusedGatherAndSum) {
  const HostTensor table = rand_float({40, 32});
  const HostTensor ids = rand_ints({2, 9}, DataType::kINT64, -40, 39);
  for (Dims a : {Dims{2, 9, 32}, Dims{1, 9, 32}, Dims{9, 32}, Dims{32}}) {
    const HostTensor addend = rand_float(a);
    const HostTensor gathered = mtest::run1("Gather", {&table, &ids});
    for (bool addend_first : {false, true}) {
      const HostTensor* lhs = addend_first ? &addend : &gathered;
      const HostTensor* rhs = addend_first ? &gathered : &addend;
      const HostTensor unfused = mtest::run1("ElementWise", {lhs, rhs}, [](ir::Attrs& at) { at.set("op", kSum); });
      EXPECT_TRUE(gather_with_addend(table, ids, addend).same_bytes(unfused))
          << dims_str(a) << (addend_first ? ", addend first" : ", gathered first");
    }
  }
}

using gather_addend_test::ElementCase;
using gather_addend_test::element_path_cases;

TEST(GatherAddendKernel, EveryOtherBroadcastByElementsBitForBit) {
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
    for (const ElementCase& c : element_path_cases(24)) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " ids " + dims_str(c.ids) + " addend " + dims_str(c.addend));
      const HostTensor table = rand_float({11, 24}, dt);
      const HostTensor ids = rand_ints(c.ids, DataType::kINT64, -11, 10);
      const HostTensor addend = rand_float(c.addend, dt);
      const HostTensor want = reference(table, ids, addend);
      const HostTensor got = gather_with_addend(table, ids, addend, 0, mtest::test_pool());
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_TRUE(got.same_bytes(want));
    }
  // float32 against the unfused Gather and SUM, in both operand orders.
  for (const ElementCase& c : element_path_cases(24)) {
    const HostTensor table = rand_float({11, 24});
    const HostTensor ids = rand_ints(c.ids, DataType::kINT32, -11, 10);
    const HostTensor addend = rand_float(c.addend);
    const HostTensor gathered = mtest::run1("Gather", {&table, &ids});
    const HostTensor unfused = mtest::run1("ElementWise", {&addend, &gathered}, [](ir::Attrs& at) { at.set("op", kSum); });
    EXPECT_TRUE(gather_with_addend(table, ids, addend).same_bytes(unfused)) << dims_str(c.ids) << " + " << dims_str(c.addend);
  }
}

TEST(GatherAddendKernel, AnAddendThatDoesNotBroadcastFailsNamingBothShapes) {
  const HostTensor table = rand_float({10, 16});
  const HostTensor ids = rand_ints({2, 7}, DataType::kINT64, 0, 9);
  for (Dims a : {Dims{3, 7, 16}, Dims{2, 5, 16}, Dims{8}}) {
    try {
      gather_with_addend(table, ids, rand_float(a));
      ADD_FAILURE() << "addend " << dims_str(a) << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("the addend (input 2) " + dims_str(a) +
                                           " does not broadcast against the gathered rows [2, 7, 16]"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(GatherAddendKernel, OutOfRangeIndicesFailAsWithoutAnAddend) {
  const HostTensor table = rand_float({10, 16});
  const HostTensor addend = rand_float({1, 3, 16});
  for (int64_t bad : {10, -11, 1000}) {
    HostTensor ids = rand_ints({1, 3}, DataType::kINT64, 0, 9);
    mtest::set_elem(ids, 1, static_cast<double>(bad));
    try {
      gather_with_addend(table, ids, addend);
      ADD_FAILURE() << "index " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("index " + std::to_string(bad) + " is out of range for axis 0 of size 10"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace kiln
