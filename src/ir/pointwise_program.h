// The program of a FusedPointwise node: a straight-line expression DAG over the node's inputs, evaluated
// once per output element (inputs numpy-broadcast onto the output). Written by passes/fuse_pointwise,
// interpreted by the CPU kernel, turned into CUDA C++ (NVRTC) by the CUDA backend.
//
// Serialized as two attributes, so plans, graph clones and attribute equality need nothing new:
//   `program`    ints, kFields per instruction: opcode, sub-op, dtype, a, b, c
//   `immediates` floats: alpha/beta of activations and the values of float constants
// Instruction i defines register i; operands a, b, c name earlier registers. The node's output is the
// last register. Opcodes and their fields:
//   kInput       a = node input index; dtype = that input's dtype
//   kConst       float dtypes: a = index into immediates; integer/bool dtypes: a = the value itself
//   kElementWise sub = ElementWiseOperation, a and b operands, c = the `fmod` flag of MOD (0/1)
//   kUnary       sub = UnaryOperation, a operand
//   kActivation  sub = ActivationType, a operand, b = index of alpha in immediates (beta follows it)
//   kCast        a operand, dtype = the target type
//   kSelect      a = condition (bool), b and c the values
// Every instruction carries the dtype of the value it defines (the unfused graph's dtype); the semantics
// are those of the IR ops (ir/OPS.md). Values of dtype float32/float16/bfloat16 are computed in float32
// and only rounded to their dtype by an explicit kCast and by the final store: intermediates keep float32
// precision (at least as accurate as the unfused graph, which rounded every intermediate). float64
// computes in double, integers in their own type (wrapping), bool as bool.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/activation_params.h"
#include "ir/attrs.h"

namespace kiln::ir::pw {

enum Opcode : int64_t {
  kInput = 0,
  kConst = 1,
  kElementWise = 2,
  kUnary = 3,
  kActivation = 4,
  kCast = 5,
  kSelect = 6,
};
constexpr int kFields = 6;

// Sub-op codes (the IR's enum values, ir/OPS.md).
enum EwOp : int64_t {
  kSum = 0, kProd = 1, kMax = 2, kMin = 3, kSub = 4, kDiv = 5, kPow = 6, kFloorDiv = 7, kAnd = 8, kOr = 9,
  kXor = 10, kEqual = 11, kGreater = 12, kLess = 13, kMod = 64, kGreaterEqual = 65, kLessEqual = 66,
  kShiftLeft = 67, kShiftRight = 68
};
enum UnOp : int64_t {
  kExp = 0, kLog = 1, kSqrt = 2, kRecip = 3, kAbs = 4, kNeg = 5, kSin = 6, kCos = 7, kTan = 8, kSinh = 9,
  kCosh = 10, kAsin = 11, kAcos = 12, kAtan = 13, kAsinh = 14, kAcosh = 15, kAtanh = 16, kCeil = 17,
  kFloor = 18, kErf = 19, kNot = 20, kSign = 21, kRound = 22, kIsInf = 23, kIsNan = 24
};
enum ActOp : int64_t {
  kRelu = 0, kSigmoid = 1, kTanh = 2, kLeakyRelu = 3, kElu = 4, kSelu = 5, kSoftsign = 6, kSoftplus = 7,
  kClip = 8, kHardSigmoid = 9, kScaledTanh = 10, kThresholdedRelu = 11, kGeluErf = 12, kGeluTanh = 13,
  kHardSwish = 64, kSilu = 65, kMish = 66, kCelu = 67, kShrink = 68
};

inline bool ew_is_logic(int64_t op) { return op == kAnd || op == kOr || op == kXor; }
inline bool ew_is_compare(int64_t op) {
  return op == kEqual || op == kGreater || op == kLess || op == kGreaterEqual || op == kLessEqual;
}
inline bool ew_is_arith(int64_t op) { return (op >= kSum && op <= kFloorDiv) || op == kMod; }
inline bool ew_is_shift(int64_t op) { return op == kShiftLeft || op == kShiftRight; }
inline bool act_is_known(int64_t t) { return (t >= kRelu && t <= kGeluTanh) || (t >= kHardSwish && t <= kShrink); }

struct Instr {
  int64_t op = kInput;
  int64_t sub = 0;
  DataType dtype = DataType::kFLOAT;
  int64_t a = -1, b = -1, c = -1;
};

struct Program {
  std::vector<Instr> code;
  std::vector<double> imm;

  // Builders; each returns the new register.
  int64_t add(const Instr& in);
  int64_t input(int64_t index, DataType dt) { return add({kInput, 0, dt, index, -1, -1}); }
  int64_t constant(DataType dt, double value);  // any program dtype (integers: value must be integral)
  int64_t constant_int(DataType dt, int64_t value);

  DataType out_dtype() const { return code.empty() ? DataType::kFLOAT : code.back().dtype; }
  // Float value of a kConst register (float dtypes from the immediates, integers from the field).
  double const_value(int64_t reg) const;

  std::vector<int64_t> encode() const;
  void to_attrs(Attrs& a) const;
  // Throws kiln::Error when the attributes are not a well-formed encoding (validate() checks the rest).
  static Program decode(const std::vector<int64_t>& ints, const std::vector<double>& imm);
  static Program from_attrs(const Attrs& a);
};

// The dtypes a program computes on.
bool is_program_type(DataType t);
bool is_float_type(DataType t);  // float32, float16, bfloat16, float64
bool is_int_type(DataType t);    // int8, uint8, int32, int64

// Checks operand order and the type rules of every instruction against the node's input dtypes;
// throws kiln::Error naming the instruction. num_inputs = input_dtypes.size().
void validate(const Program& p, const std::vector<DataType>& input_dtypes);

// ONNX defaults of alpha/beta for an ActivationType (ir/activation_params.h).
using ir::activation_defaults;

// An integer Activation's CLIP bound rounded into [lo, hi] (up: ceil for a lower bound, else floor).
int64_t int_clip_bound(double v, bool up, int64_t lo, int64_t hi);
// The range of an integer program dtype.
void int_range(DataType t, int64_t* lo, int64_t* hi);

// "r3 = elementwise.4(r1, r2) : float16" lines, for logs and test failures.
std::string to_string(const Program& p);

}  // namespace kiln::ir::pw
