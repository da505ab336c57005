// MatrixMultiply and Einsum CPU kernels against naive double-precision references written here: batch
// broadcasting, transposes, vectors, several dtypes; einsum with diagonals, ellipses, implicit outputs and
// three operands.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "math_kernel_test_util.h"

namespace kiln {
namespace {

using namespace mtest;

// ============================================ MatrixMultiply ==============================================

struct MmCase {
  Dims a, b;
  int64_t op_a, op_b;
};

std::vector<double> matmul_ref(const HostTensor& a, const HostTensor& b, int64_t op_a, int64_t op_b, Dims* out_shape) {
  const Dims& sa = a.shape();
  const Dims& sb = b.shape();
  const bool av = op_a == 2 || sa.size() == 1, bv = op_b == 2 || sb.size() == 1;
  const bool ta = !av && op_a == 1, tb = !bv && op_b == 1;
  const size_t ra = sa.size(), rb = sb.size();
  const int64_t M = av ? 1 : (ta ? sa[ra - 1] : sa[ra - 2]);
  const int64_t K = av ? sa[ra - 1] : (ta ? sa[ra - 2] : sa[ra - 1]);
  const int64_t N = bv ? 1 : (tb ? sb[rb - 2] : sb[rb - 1]);
  Dims ba(sa.begin(), sa.end() - (av ? 1 : 2)), bb(sb.begin(), sb.end() - (bv ? 1 : 2));
  Dims bo = bcast_shape(ba, bb);
  *out_shape = bo;
  if (!av) out_shape->push_back(M);
  if (!bv) out_shape->push_back(N);
  std::vector<double> out;
  for (int64_t t = 0; t < volume(bo); ++t) {
    auto idx = unravel(t, bo);
    const int64_t oa = bcast_offset(idx, ba) * M * K, ob = bcast_offset(idx, bb) * K * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double x = a.get_f64(oa + (ta ? k * M + m : m * K + k));
          const double y = b.get_f64(ob + (tb ? n * K + k : k * N + n));
          s += x * y;
        }
        out.push_back(s);
      }
  }
  return out;
}

void check_matmul(DataType dt, const MmCase& c) {
  const bool is_int = !dtype_is_float(dt);
  HostTensor a = is_int ? rand_ints(c.a, dt, -20, 20, true) : rand_float(c.a, dt, 0.1, 2.0);
  HostTensor b = is_int ? rand_ints(c.b, dt, -20, 20, true) : rand_float(c.b, dt, 0.1, 2.0);
  HostTensor y = run1("MatrixMultiply", {&a, &b}, [&](ir::Attrs& at) {
    at.set("op_a", c.op_a);
    at.set("op_b", c.op_b);
  }, test_pool());
  Dims shape;
  std::vector<double> ref = matmul_ref(a, b, c.op_a, c.op_b, &shape);
  ASSERT_EQ(y.shape(), shape) << dims_str(c.a) << " x " << dims_str(c.b);
  // Error scale of a dot product of K terms of magnitude <= 4: K * 4 * eps.
  const int64_t K = c.op_a == 1 ? c.a[c.a.size() - 2] : c.a.back();
  const double atol = dt == DataType::kFLOAT ? 4e-6 * std::sqrt(static_cast<double>(K)) * 4 : (dt == DataType::kDOUBLE ? 1e-12 * K : 0);
  EXPECT_TRUE(close(y, ref, dt == DataType::kFLOAT ? 1e-5 : (is_int ? 0 : 1e-12), atol))
      << dims_str(c.a) << " op " << c.op_a << " x " << dims_str(c.b) << " op " << c.op_b << " " << dtype_name(dt);
}

const std::vector<MmCase> kMmCases = {
    {{3, 4}, {4, 5}, 0, 0},            {{1, 1}, {1, 1}, 0, 0},          {{4, 3}, {4, 5}, 1, 0},
    {{3, 4}, {5, 4}, 0, 1},            {{4, 3}, {5, 4}, 1, 1},          {{2, 3, 4}, {2, 4, 5}, 0, 0},
    {{2, 3, 4}, {4, 5}, 0, 0},         {{3, 4}, {2, 4, 5}, 0, 0},       {{2, 1, 3, 4}, {3, 4, 5}, 0, 0},
    {{2, 1, 3, 4}, {1, 3, 4, 5}, 0, 0}, {{2, 4, 3}, {2, 5, 4}, 1, 1},   {{2, 4, 3}, {4, 5}, 1, 0},
    {{4}, {4, 5}, 0, 0},               {{3, 4}, {4}, 0, 0},             {{4}, {4}, 0, 0},
    {{2, 3, 4}, {4}, 0, 0},            {{4}, {2, 4, 5}, 0, 0},          {{2, 6, 4}, {2, 4}, 0, 2},
    {{2, 4}, {2, 4, 5}, 2, 0},         {{3, 2, 4}, {2, 4}, 2, 2},       {{2, 5, 7}, {2, 5, 3}, 1, 0},
    {{3, 0}, {0, 4}, 0, 0},            {{0, 3}, {3, 4}, 0, 0},          {{1, 2, 3, 4}, {2, 1, 6, 4}, 0, 1},
    {{64, 128}, {128, 96}, 0, 0},      {{12, 128, 64}, {12, 64, 128}, 0, 0},
    {{2, 12, 64, 32}, {2, 12, 64, 32}, 0, 1}, {{256, 300}, {300, 200}, 0, 0},
};

TEST(MatmulKernels, MatrixMultiplyFloat) {
  for (const MmCase& c : kMmCases) check_matmul(DataType::kFLOAT, c);
}

TEST(MatmulKernels, MatrixMultiplyDoubleAndIntegers) {
  for (DataType dt : {DataType::kDOUBLE, DataType::kINT32, DataType::kINT64})
    for (const MmCase& c : kMmCases) {
      if (volume(c.a) * (c.b.empty() ? 1 : c.b.back()) > 3000000) continue;
      check_matmul(dt, c);
    }
}

// ================================================= Einsum =================================================

// Naive reference over explicit letter-only equations ("ab,bc->ac"); size-1 dims broadcast.
std::vector<double> einsum_ref(const std::string& eq, const std::vector<const HostTensor*>& ins, Dims* out_shape) {
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow), rhs = eq.substr(arrow + 2);
  std::vector<std::string> terms;
  size_t st = 0;
  for (;;) {
    size_t c = lhs.find(',', st);
    terms.push_back(lhs.substr(st, c == std::string::npos ? std::string::npos : c - st));
    if (c == std::string::npos) break;
    st = c + 1;
  }
  std::map<char, int64_t> size;
  for (size_t i = 0; i < terms.size(); ++i)
    for (size_t k = 0; k < terms[i].size(); ++k) size[terms[i][k]] = std::max(size[terms[i][k]], ins[i]->shape()[k]);
  std::vector<char> labels;
  Dims dims;
  for (auto& [l, s] : size) {
    labels.push_back(l);
    dims.push_back(s);
  }
  out_shape->clear();
  for (char l : rhs) out_shape->push_back(size[l]);
  std::vector<double> out(static_cast<size_t>(volume(*out_shape)), 0.0);
  auto pos = [&](char l) { return std::find(labels.begin(), labels.end(), l) - labels.begin(); };
  for (int64_t t = 0; t < volume(dims); ++t) {
    auto idx = unravel(t, dims);
    double p = 1;
    for (size_t i = 0; i < terms.size(); ++i) {
      int64_t off = 0;
      const Dims& s = ins[i]->shape();
      for (size_t k = 0; k < terms[i].size(); ++k) off = off * s[k] + (s[k] == 1 ? 0 : idx[pos(terms[i][k])]);
      p *= ins[i]->get_f64(off);
    }
    int64_t o = 0;
    for (size_t k = 0; k < rhs.size(); ++k) o = o * (*out_shape)[k] + idx[pos(rhs[k])];
    if (!out.empty()) out[o] += p;
  }
  return out;
}

struct EinCase {
  std::string eq;      // what the kernel gets
  std::string ref_eq;  // the same, explicit and with ellipses spelled as capitals
  std::vector<Dims> shapes;
};

const std::vector<EinCase> kEinsum = {
    {"ij,jk->ik", "ij,jk->ik", {{3, 4}, {4, 5}}},
    {"ij,jk", "ij,jk->ik", {{3, 4}, {4, 5}}},
    {"bij,bjk->bik", "bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}},
    {"bij,bkj->bik", "bij,bkj->bik", {{2, 3, 4}, {2, 5, 4}}},
    {"bji,bjk->bik", "bji,bjk->bik", {{2, 4, 3}, {2, 4, 5}}},
    {"bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", {{2, 3, 5, 8}, {2, 3, 6, 8}}},
    {"bhqk,bhkd->bqhd", "bhqk,bhkd->bqhd", {{2, 3, 5, 6}, {2, 3, 6, 8}}},
    {"ii->i", "ii->i", {{4, 4}}},
    {"ii", "ii->", {{5, 5}}},
    {"ij->", "ij->", {{3, 7}}},
    {"ij->ji", "ij->ji", {{3, 7}}},
    {"ij->j", "ij->j", {{3, 7}}},
    {"i,i", "i,i->", {{6}, {6}}},
    {"i,j->ij", "i,j->ij", {{3}, {4}}},
    {"i,j", "i,j->ij", {{3}, {4}}},
    {"ij,ij->ij", "ij,ij->ij", {{3, 4}, {3, 4}}},
    {"ij,ij", "ij,ij->", {{3, 4}, {3, 4}}},
    {"ijk,ikl,ilm->ijm", "ijk,ikl,ilm->ijm", {{2, 3, 4}, {2, 4, 5}, {2, 5, 3}}},
    {"ab,bc,cd", "ab,bc,cd->ad", {{2, 3}, {3, 4}, {4, 5}}},
    {"...ij,...jk->...ik", "Aij,Ajk->Aik", {{2, 3, 4}, {2, 4, 5}}},
    {"...ij,...jk->...ik", "ABij,Bjk->ABik", {{3, 2, 3, 4}, {2, 4, 5}}},
    {"...ij,...jk", "ABij,ABjk->ABik", {{3, 1, 3, 4}, {1, 2, 4, 5}}},
    {"i...->...", "iA->A", {{3, 4}}},
    {"...ii->...i", "Aii->Ai", {{2, 3, 3}}},
    {"bn,anm,bm->ba", "bn,anm,bm->ba", {{2, 3}, {4, 3, 5}, {2, 5}}},
    {"ij,jk,kl->il", "ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 5}}},
    {"iij,jk->ik", "iij,jk->ik", {{3, 3, 4}, {4, 2}}},
    {"ijk,jk->i", "ijk,jk->i", {{3, 4, 5}, {4, 5}}},
    {"abc,cd->abd", "abc,cd->abd", {{2, 3, 4}, {4, 5}}},
    {"bsh,hd->bsd", "bsh,hd->bsd", {{4, 64, 96}, {96, 80}}},
    {"ij,jk->ik", "ij,jk->ik", {{3, 0}, {0, 4}}},
};

TEST(MatmulKernels, Einsum) {
  for (DataType dt : {DataType::kFLOAT, DataType::kDOUBLE, DataType::kINT64})
    for (const EinCase& c : kEinsum) {
      std::vector<HostTensor> ts;
      for (const Dims& s : c.shapes)
        ts.push_back(dtype_is_float(dt) ? rand_float(s, dt, 0.1, 2.0) : rand_ints(s, dt, -9, 9, true));
      std::vector<const HostTensor*> ptrs;
      for (auto& t : ts) ptrs.push_back(&t);
      HostTensor y = run1("Einsum", ptrs, [&](ir::Attrs& a) { a.set("equation", c.eq); }, test_pool());
      Dims shape;
      std::vector<double> ref = einsum_ref(c.ref_eq, ptrs, &shape);
      ASSERT_EQ(y.shape(), shape) << c.eq;
      const double tol = dt == DataType::kFLOAT ? 1e-5 : (dt == DataType::kDOUBLE ? 1e-12 : 0);
      EXPECT_TRUE(close(y, ref, tol, tol * 10)) << c.eq << " " << dtype_name(dt);
    }
}

}  // namespace
}  // namespace kiln
