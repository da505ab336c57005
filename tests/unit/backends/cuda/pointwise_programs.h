// FusedPointwise programs covering every opcode, sub-op and dtype, shared by the NVRTC compile test (no GPU
// needed) and the GPU kernel tests.
#pragma once
#include <string>
#include <vector>

#include "ir/pointwise_program.h"

namespace kiln::pwtest {

using namespace ir::pw;

struct TestProgram {
  std::string name;
  Program program;
  std::vector<DataType> inputs;
};

inline const std::vector<DataType>& all_types() {
  static const std::vector<DataType> t = {DataType::kFLOAT, DataType::kHALF,  DataType::kBF16,  DataType::kDOUBLE,
                                          DataType::kINT8,  DataType::kUINT8, DataType::kINT32, DataType::kINT64,
                                          DataType::kBOOL};
  return t;
}

inline int64_t act(Program& p, int64_t type, DataType dt, int64_t x) {
  double a, b;
  activation_defaults(type, &a, &b);
  if (type == kClip) {
    a = -1.5;
    b = 2.5;
  }
  p.imm.push_back(a);
  p.imm.push_back(b);
  return p.add({kActivation, type, dt, x, static_cast<int64_t>(p.imm.size()) - 2, -1});
}

// Float dtype dt: every float unary op, activation, arithmetic and comparison, reduced into one value.
// Inputs: x, y (dt), c (bool).
inline TestProgram float_program(DataType dt) {
  TestProgram t{std::string("float_") + dtype_name(dt), {}, {dt, dt, DataType::kBOOL}};
  Program& p = t.program;
  const int64_t x = p.input(0, dt), y = p.input(1, dt), c = p.input(2, DataType::kBOOL);
  int64_t acc = p.constant(dt, 0.25);
  auto add = [&](int64_t v) { acc = p.add({kElementWise, kSum, dt, acc, v, 0}); };
  for (int64_t op = kExp; op <= kRound; ++op) {
    if (op == kNot || op == kIsInf) continue;
    add(p.add({kUnary, op, dt, x, -1, -1}));
  }
  for (int64_t ty : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64, 65, 66, 67, 68}) add(act(p, ty, dt, y));
  for (int64_t op : {kSum, kProd, kMax, kMin, kSub, kDiv, kPow, kFloorDiv, kMod})
    add(p.add({kElementWise, op, dt, x, y, op == kMod ? 1 : 0}));
  add(p.add({kElementWise, kMod, dt, x, y, 0}));
  for (double e : {2.0, 3.0, 0.5, 1.0, -1.0, 1.5}) add(p.add({kElementWise, kPow, dt, x, p.constant(dt, e), 0}));
  int64_t cond = c;
  for (int64_t op : {kEqual, kGreater, kLess, kGreaterEqual, kLessEqual}) {
    const int64_t b = p.add({kElementWise, op, DataType::kBOOL, x, y, 0});
    cond = p.add({kElementWise, kXor, DataType::kBOOL, cond, b, 0});
  }
  cond = p.add({kElementWise, kOr, DataType::kBOOL, cond, p.add({kUnary, kIsInf, DataType::kBOOL, x, -1, -1}), 0});
  cond = p.add({kElementWise, kAnd, DataType::kBOOL, cond, p.add({kUnary, kNot, DataType::kBOOL, p.add({kUnary, kIsNan, DataType::kBOOL, y, -1, -1}), -1, -1}), 0});
  add(p.add({kSelect, 0, dt, cond, x, y}));
  for (double v : {1e30, -1e30}) add(p.constant(dt, v));
  // A NaN and infinities as immediates must print as valid literals.
  const int64_t inf = p.constant(dt, 1.0 / 0.0), ninf = p.constant(dt, -1.0 / 0.0), nan = p.constant(dt, 0.0 / 0.0);
  add(p.add({kSelect, 0, dt, c, inf, p.add({kSelect, 0, dt, cond, ninf, nan})}));
  return t;
}

// Integer dtype dt: arithmetic, shifts, comparisons, ABS/NEG/SIGN (signed), RELU/CLIP. Inputs: a, b (dt).
inline TestProgram int_program(DataType dt) {
  TestProgram t{std::string("int_") + dtype_name(dt), {}, {dt, dt}};
  Program& p = t.program;
  const int64_t a = p.input(0, dt), b = p.input(1, dt);
  int64_t acc = p.constant_int(dt, 3);
  auto add = [&](int64_t v) { acc = p.add({kElementWise, kSum, dt, acc, v, 0}); };
  for (int64_t op : {kSum, kProd, kMax, kMin, kSub, kDiv, kPow, kFloorDiv, kMod, kShiftLeft, kShiftRight})
    add(p.add({kElementWise, op, dt, a, b, 0}));
  add(p.add({kElementWise, kMod, dt, a, b, 1}));
  if (dt != DataType::kUINT8)
    for (int64_t op : {kAbs, kNeg, kSign}) add(p.add({kUnary, op, dt, a, -1, -1}));
  add(act(p, kRelu, dt, a));
  add(act(p, kClip, dt, b));
  int64_t cond = p.add({kElementWise, kEqual, DataType::kBOOL, a, b, 0});
  for (int64_t op : {kGreater, kLess, kGreaterEqual, kLessEqual})
    cond = p.add({kElementWise, kXor, DataType::kBOOL, cond, p.add({kElementWise, op, DataType::kBOOL, a, b, 0}), 0});
  int64_t lo, hi;
  int_range(dt, &lo, &hi);
  add(p.add({kSelect, 0, dt, cond, p.constant_int(dt, lo), p.constant_int(dt, hi)}));
  return t;
}

// Casts from dtype `from` to every program dtype, each cast back to float32 and summed. Input: x (from).
inline TestProgram cast_program(DataType from) {
  TestProgram t{std::string("cast_from_") + dtype_name(from), {}, {from}};
  Program& p = t.program;
  const int64_t x = p.input(0, from);
  int64_t acc = p.constant(DataType::kFLOAT, 0.0);
  for (DataType to : all_types()) {
    const int64_t c = p.add({kCast, 0, to, x, -1, -1});
    const int64_t f = p.add({kCast, 0, DataType::kFLOAT, c, -1, -1});
    acc = p.add({kElementWise, kSum, DataType::kFLOAT, acc, f, 0});
  }
  if (from == DataType::kBOOL) {
    const int64_t n = p.add({kUnary, kNot, DataType::kBOOL, x, -1, -1});
    const int64_t e = p.add({kElementWise, kEqual, DataType::kBOOL, n, p.constant_int(DataType::kBOOL, 1), 0});
    acc = p.add({kSelect, 0, DataType::kFLOAT, e, acc, p.constant(DataType::kFLOAT, -1.0)});
  }
  return t;
}

// A program whose output has dtype `out` (a cast at the end), for stores of every dtype. Input: x (float32).
inline TestProgram store_program(DataType out) {
  TestProgram t{std::string("store_") + dtype_name(out), {}, {DataType::kFLOAT}};
  Program& p = t.program;
  const int64_t x = p.input(0, DataType::kFLOAT);
  const int64_t s = p.add({kElementWise, kProd, DataType::kFLOAT, x, p.constant(DataType::kFLOAT, 3.0), 0});
  p.add({kCast, 0, out, s, -1, -1});
  return t;
}

inline std::vector<TestProgram> all_programs() {
  std::vector<TestProgram> v;
  for (DataType dt : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kDOUBLE}) v.push_back(float_program(dt));
  for (DataType dt : {DataType::kINT8, DataType::kUINT8, DataType::kINT32, DataType::kINT64}) v.push_back(int_program(dt));
  for (DataType dt : all_types()) v.push_back(cast_program(dt));
  for (DataType dt : all_types()) v.push_back(store_program(dt));
  return v;
}

}  // namespace kiln::pwtest
