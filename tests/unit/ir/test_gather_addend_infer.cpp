// Gather's fused addend (input 2): the shape rules every part shares (ir/gather_addend.h: the row path's fit,
// the pass's may-fit on unknown dims, the broadcast of known shapes), and what shape inference gives (the
// broadcast of the gathered rows and the addend) and refuses, each refusal with a message that says what was
// expected.
#include <gtest/gtest.h>

#include "ir/gather_addend.h"
#include "ir/op_registry.h"

namespace kiln {
namespace {

using ir::broadcast_known;
using ir::gather_addend_fits;
using ir::gather_addend_may_fit;
using ir::TensorInfo;

TEST(GatherAddendShape, EqualOrBroadcastAlongLeadingDims) {
  // Output [2, 3, 8]: indices [2, 3], rows of [8].
  const Dims out{2, 3, 8};
  EXPECT_TRUE(gather_addend_fits({2, 3, 8}, out, 1));
  EXPECT_TRUE(gather_addend_fits({1, 3, 8}, out, 1));
  EXPECT_TRUE(gather_addend_fits({3, 8}, out, 1));
  EXPECT_TRUE(gather_addend_fits({1, 1, 8}, out, 1)) << "one row for every gathered row";
  EXPECT_TRUE(gather_addend_fits({8}, out, 1));
  // GPT-2: [1, 128, 768] gathered, the position embedding [1, 128, 768] or [128, 768].
  EXPECT_TRUE(gather_addend_fits({1, 128, 768}, {1, 128, 768}, 1));
  EXPECT_TRUE(gather_addend_fits({128, 768}, {1, 128, 768}, 1));
}

TEST(GatherAddendShape, RefusesWhatTheKernelsDoNotAdd) {
  const Dims out{2, 3, 8};
  EXPECT_FALSE(gather_addend_fits({2, 2, 3, 8}, out, 1)) << "would grow the output's rank";
  EXPECT_FALSE(gather_addend_fits({4, 3, 8}, out, 1)) << "would grow the output";
  EXPECT_FALSE(gather_addend_fits({2, 1, 8}, out, 1)) << "a broadcast dim after a real one";
  EXPECT_FALSE(gather_addend_fits({3, 1}, out, 1)) << "broadcast inside a row";
  EXPECT_FALSE(gather_addend_fits({1}, out, 1)) << "a scalar covers no whole row";
  EXPECT_FALSE(gather_addend_fits({4}, out, 1));
  EXPECT_FALSE(gather_addend_fits({}, out, 1));
  // Rows of [4, 8] (a 3-D table): the addend must cover [4, 8], not just [8].
  EXPECT_FALSE(gather_addend_fits({8}, {5, 4, 8}, 2));
  EXPECT_TRUE(gather_addend_fits({4, 8}, {5, 4, 8}, 2));
}

TEST(GatherAddendShape, OnesInsideARowOnlyWhereTheOutputHasThemToo) {
  // Rows of [1, 8]: an addend [8] equals the row (its missing leading 1 is the output's 1).
  EXPECT_TRUE(gather_addend_fits({8}, {5, 1, 8}, 2));
  EXPECT_TRUE(gather_addend_fits({1, 8}, {5, 1, 8}, 2));
  EXPECT_FALSE(gather_addend_fits({1, 8}, {5, 2, 8}, 2)) << "would broadcast along a row's dim";
}

TEST(GatherAddendShape, UnknownDimsMatchOnlyUnknownDims) {
  EXPECT_TRUE(gather_addend_fits({-1, 3, 8}, {-1, 3, 8}, 1));
  EXPECT_TRUE(gather_addend_fits({1, 3, 8}, {-1, 3, 8}, 1)) << "a 1 broadcasts over any batch";
  EXPECT_TRUE(gather_addend_fits({3, 8}, {-1, 3, 8}, 1));
  EXPECT_FALSE(gather_addend_fits({3, 8}, {2, -1, 8}, 1));
  EXPECT_FALSE(gather_addend_fits({-1, 8}, {2, 3, 8}, 1));
  EXPECT_FALSE(gather_addend_fits({1, 8}, {2, -1, 8}, 2)) << "a 1 against an unknown dim of a row";
}

TEST(GatherAddendShape, MayFitTakesUnknownDimsAsWhateverFits) {
  // Everything that fits on known dims may fit.
  EXPECT_TRUE(gather_addend_may_fit({1, 3, 8}, {2, 3, 8}, 1));
  EXPECT_TRUE(gather_addend_may_fit({8}, {5, 1, 8}, 2));
  // GPT-2 exported with dynamic dims: the position embedding [1, S, E] against [B, S, E], or a folded one.
  EXPECT_TRUE(gather_addend_may_fit({1, -1, 768}, {-1, -1, 768}, 1));
  EXPECT_TRUE(gather_addend_may_fit({1, 128, 768}, {-1, -1, 768}, 1));
  EXPECT_TRUE(gather_addend_may_fit({-1, 768}, {2, 128, 768}, 1));
  EXPECT_TRUE(gather_addend_may_fit({1, 8}, {5, -1, 8}, 2)) << "the row's unknown dim may be 1";
  // What can never fit stays out, unknown dims or not.
  EXPECT_FALSE(gather_addend_may_fit({3, 1, 8}, {3, 7, 8}, 1)) << "a broadcast dim after a real one";
  EXPECT_FALSE(gather_addend_may_fit({-1, 1, 8}, {-1, 7, 8}, 1)) << "1 against a known 7 inside the run";
  EXPECT_FALSE(gather_addend_may_fit({3, 8}, {-1, 4, 8}, 1));
  EXPECT_FALSE(gather_addend_may_fit({2, 2, 3, 8}, {-1, 3, 8}, 1)) << "would grow the output's rank";
  EXPECT_FALSE(gather_addend_may_fit({-1, 1}, {-1, -1, 8}, 1)) << "broadcast inside a known row";
}

TEST(GatherAddendShape, FirstBroadcastConflictOnKnownDimsOnly) {
  EXPECT_EQ(ir::first_broadcast_conflict({1, 7, 16}, {3, 7, 16}), -1);
  EXPECT_EQ(ir::first_broadcast_conflict({2, 5, 16}, {1, 7, 16}), 1);
  EXPECT_EQ(ir::first_broadcast_conflict({8}, {2, 7, 16}), 2) << "counted in the broadcast's rank";
  EXPECT_EQ(ir::first_broadcast_conflict({-1, 5, 16}, {3, -1, 16}), -1) << "unknown dims may be anything";
  EXPECT_EQ(ir::first_broadcast_conflict({}, {4, 16}), -1);
}

TEST(GatherAddendShape, BroadcastOfKnownShapes) {
  Dims out;
  ASSERT_TRUE(broadcast_known({1, 7, 16}, {3, 7, 16}, &out));
  EXPECT_EQ(out, (Dims{3, 7, 16}));
  ASSERT_TRUE(broadcast_known({2, 1, 16}, {5, 1}, &out));
  EXPECT_EQ(out, (Dims{2, 5, 16}));
  ASSERT_TRUE(broadcast_known({4, 16}, {}, &out));
  EXPECT_EQ(out, (Dims{4, 16}));
  EXPECT_FALSE(broadcast_known({2, 7, 16}, {3, 7, 16}, &out));
  EXPECT_FALSE(broadcast_known({7, 16}, {8}, &out));
}

TensorInfo info(DataType dt, Dims shape) {
  TensorInfo t;
  t.dtype = dt;
  t.shape = std::move(shape);
  return t;
}

// Infers a Gather node with `attrs` on `ins`; the error message, or "ok <shape>".
std::string infer(std::vector<TensorInfo> ins, int64_t axis = 0, int64_t mode = 0) {
  ir::Graph g;
  ir::Node* n = g.add_node("Gather", "emb", std::vector<ir::Value*>(ins.size(), nullptr), 1);
  n->attrs.set("axis", axis);
  n->attrs.set("mode", mode);
  try {
    const std::vector<TensorInfo> out = ir::infer_node(*n, std::move(ins));
    return "ok " + std::string(dtype_name(out.at(0).dtype)) + " " + dims_str(out.at(0).shape);
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(GatherAddendInfer, TheOutputIsTheBroadcastOfTheGatheredRowsAndTheAddend) {
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    const std::string name = dtype_name(dt);
    const TensorInfo table = info(dt, {50, 16});
    EXPECT_EQ(infer({table, info(DataType::kINT64, {1, 7}), info(dt, {1, 7, 16})}), "ok " + name + " [1, 7, 16]");
    EXPECT_EQ(infer({table, info(DataType::kINT32, {2, 7}), info(dt, {7, 16})}), "ok " + name + " [2, 7, 16]");
    EXPECT_EQ(infer({table, info(DataType::kINT64, {1, 7}), info(dt, {1, 7, 16})}, -2), "ok " + name + " [1, 7, 16]")
        << "axis -rank is axis 0";
    // Broadcasts the row path does not take: the kernels add these by elements.
    EXPECT_EQ(infer({table, info(DataType::kINT64, {1, 7}), info(dt, {3, 7, 16})}), "ok " + name + " [3, 7, 16]")
        << "the gathered side broadcast";
    EXPECT_EQ(infer({table, info(DataType::kINT64, {2, 1}), info(dt, {5, 1})}), "ok " + name + " [2, 5, 16]");
    EXPECT_EQ(infer({table, info(DataType::kINT64, {2, 7}), info(dt, {})}), "ok " + name + " [2, 7, 16]");
    // Unknown dims stay unknown unless the other side fixes them, as for the SUM.
    EXPECT_EQ(infer({table, info(DataType::kINT64, {-1, -1}), info(dt, {1, -1, 16})}), "ok " + name + " [-1, -1, 16]");
    EXPECT_EQ(infer({table, info(DataType::kINT64, {-1, -1}), info(dt, {1, 128, 16})}),
              "ok " + name + " [-1, 128, 16]");
  }
}

TEST(GatherAddendInfer, RefusalsSayWhatWasExpected) {
  const TensorInfo table = info(DataType::kFLOAT, {50, 16}), ids = info(DataType::kINT64, {1, 7});
  const TensorInfo pos = info(DataType::kFLOAT, {1, 7, 16});
  auto has = [](const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; };
  std::string e = infer({info(DataType::kFLOAT, {4, 50, 16}), ids, info(DataType::kFLOAT, {4, 1, 7, 16})}, 1);
  EXPECT_TRUE(has(e, "only supported when gathering rows along axis 0")) << e;
  e = infer({table, info(DataType::kINT64, {1, 2}), info(DataType::kFLOAT, {1, 2})}, 0, 1);
  EXPECT_TRUE(has(e, "DEFAULT mode")) << e;
  e = infer({table, ids, info(DataType::kHALF, {1, 7, 16})});
  EXPECT_TRUE(has(e, "must have the data's dtype float32, got float16")) << e;
  e = infer({info(DataType::kINT32, {50, 16}), ids, info(DataType::kINT32, {1, 7, 16})});
  EXPECT_TRUE(has(e, "needs float32, float16 or bfloat16 data, got int32")) << e;
  e = infer({table, ids, info(DataType::kFLOAT, {2, 5, 16})});
  EXPECT_TRUE(has(e, "the addend (input 2) [2, 5, 16] does not broadcast against the gathered rows [1, 7, 16] "
                     "(dim 1: 5 against 7)")) << e;
  EXPECT_TRUE(has(e, "layer 'emb'")) << e;
  e = infer({table, ids, info(DataType::kFLOAT, {7, 8})});
  EXPECT_TRUE(has(e, "does not broadcast")) << e;
  EXPECT_EQ(infer({table, ids, pos}), "ok float32 [1, 7, 16]");
}

}  // namespace
}  // namespace kiln
