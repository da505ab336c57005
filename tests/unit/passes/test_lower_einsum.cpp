// LowerEinsum: Einsum layers become Shuffle + MatrixMultiply (+ Reduce) computing the same values (CPU
// backend, random inputs); diagonals, broadcasting and unknown dims keep the Einsum.
#include <gtest/gtest.h>

#include "fusion_test_util.h"
#include "passes/lower_einsum.h"

using namespace kiln;

namespace {

struct Case {
  std::string equation;
  std::vector<Dims> shapes;
  Dims out;
  bool lowered;
};

::testing::AssertionResult check(const Case& c) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < c.shapes.size(); ++i) ins.push_back(g.add_input("x" + std::to_string(i), DataType::kFLOAT, c.shapes[i]));
  ir::Node* n = g.add_node("Einsum", "einsum", ins, 1);
  n->attrs.set("equation", c.equation);
  n->outputs[0]->shape = c.out;
  n->outputs[0]->name = "y";
  g.mark_output(n->outputs[0]);
  passes::LowerEinsum pass;
  bool changed = false;
  auto r = fusetest::run_and_compare(g, pass, 1e-5, &changed);
  if (!r) return r << " for " << c.equation;
  if (changed != c.lowered) return ::testing::AssertionFailure() << c.equation << ": lowered " << changed;
  if (c.lowered && fusetest::count_op(g, "Einsum") != 0) return ::testing::AssertionFailure() << "an Einsum is left";
  if (g.outputs()[0]->name != "y") return ::testing::AssertionFailure() << "the output lost its name";
  if (g.outputs()[0]->shape != c.out) return ::testing::AssertionFailure() << "output shape " << dims_str(g.outputs()[0]->shape);
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(LowerEinsum, ContractionsBecomeOneBatchedMatMul) {
  const std::vector<Case> cases = {
      {"bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}, {2, 3, 5}, true},
      {"ij,jk", {{3, 4}, {4, 5}}, {3, 5}, true},                      // implicit output
      {"bhqd,bhkd->bhqk", {{2, 3, 4, 8}, {2, 3, 5, 8}}, {2, 3, 4, 5}, true},  // K transposed
      {"ik,kj->ji", {{3, 4}, {4, 2}}, {2, 3}, true},                  // output transposed
      {"i,i", {{6}, {6}}, {}, true},                                  // inner product: a scalar
      {"i,j->ij", {{3}, {4}}, {3, 4}, true},                          // outer product: K empty
      {"abc,cd->abd", {{2, 3, 4}, {4, 5}}, {2, 3, 5}, true},
      {"ijk,jl->il", {{2, 3, 4}, {3, 5}}, {2, 5}, true},              // k summed out of the first operand
      {"bn,anm->bam", {{2, 3}, {4, 3, 5}}, {2, 4, 5}, true},
  };
  for (const Case& c : cases) EXPECT_TRUE(check(c));
}

TEST(LowerEinsum, OneOperandPermutesAndSums) {
  EXPECT_TRUE(check({"ij->ji", {{3, 4}}, {4, 3}, true}));
  EXPECT_TRUE(check({"ijk->ki", {{2, 3, 4}}, {4, 2}, true}));
  EXPECT_TRUE(check({"ij->", {{3, 4}}, {}, true}));
}

TEST(LowerEinsum, KeepsWhatItCannotLower) {
  EXPECT_TRUE(check({"ii->i", {{3, 3}}, {3}, false}));                  // a diagonal
  EXPECT_TRUE(check({"bij,bjk->bik", {{1, 3, 4}, {2, 4, 5}}, {2, 3, 5}, false}));  // size-1 broadcast
  EXPECT_TRUE(check({"ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 5}}, {2, 5}, false}));  // three operands
}
