#include "ir/pointwise_program.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace kiln::ir::pw {

int64_t Program::add(const Instr& in) {
  code.push_back(in);
  return static_cast<int64_t>(code.size()) - 1;
}

int64_t Program::constant(DataType dt, double value) {
  if (is_float_type(dt)) {
    imm.push_back(value);
    return add({kConst, 0, dt, static_cast<int64_t>(imm.size()) - 1, -1, -1});
  }
  if (dt == DataType::kBOOL) return constant_int(dt, value != 0.0);
  return constant_int(dt, static_cast<int64_t>(value));
}

int64_t Program::constant_int(DataType dt, int64_t value) {
  if (is_float_type(dt)) return constant(dt, static_cast<double>(value));
  return add({kConst, 0, dt, value, -1, -1});
}

double Program::const_value(int64_t reg) const {
  const Instr& in = code.at(static_cast<size_t>(reg));
  if (in.op != kConst) throw Error("register " + std::to_string(reg) + " is not a constant");
  if (is_float_type(in.dtype)) return imm.at(static_cast<size_t>(in.a));
  return static_cast<double>(in.a);
}

std::vector<int64_t> Program::encode() const {
  std::vector<int64_t> v;
  v.reserve(code.size() * kFields);
  for (const Instr& in : code) {
    v.push_back(in.op);
    v.push_back(in.sub);
    v.push_back(static_cast<int64_t>(in.dtype));
    v.push_back(in.a);
    v.push_back(in.b);
    v.push_back(in.c);
  }
  return v;
}

void Program::to_attrs(Attrs& a) const {
  a.set("program", encode());
  a.set("immediates", imm);
}

Program Program::decode(const std::vector<int64_t>& ints, const std::vector<double>& imm) {
  if (ints.empty() || ints.size() % kFields != 0)
    throw Error("attribute 'program' must hold a multiple of " + std::to_string(kFields) + " ints (at least one instruction), got " +
                std::to_string(ints.size()));
  Program p;
  p.imm = imm;
  for (size_t i = 0; i < ints.size(); i += kFields) {
    const int64_t dt = ints[i + 2];
    if (dt < std::numeric_limits<int32_t>::min() || dt > std::numeric_limits<int32_t>::max() ||
        !dtype_is_valid(static_cast<int32_t>(dt)))
      throw Error("program instruction " + std::to_string(i / kFields) + ": " + std::to_string(dt) + " is not a DataType");
    p.code.push_back({ints[i], ints[i + 1], static_cast<DataType>(dt), ints[i + 3], ints[i + 4], ints[i + 5]});
  }
  return p;
}

Program Program::from_attrs(const Attrs& a) {
  if (!a.has("program")) throw Error("attribute 'program' is required");
  return decode(a.ints("program"), a.floats("immediates"));
}

bool is_float_type(DataType t) {
  return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16 || t == DataType::kDOUBLE;
}
bool is_int_type(DataType t) {
  return t == DataType::kINT8 || t == DataType::kUINT8 || t == DataType::kINT32 || t == DataType::kINT64;
}
bool is_program_type(DataType t) { return is_float_type(t) || is_int_type(t) || t == DataType::kBOOL; }

void int_range(DataType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case DataType::kINT8: *lo = -128; *hi = 127; return;
    case DataType::kUINT8: *lo = 0; *hi = 255; return;
    case DataType::kINT32: *lo = std::numeric_limits<int32_t>::min(); *hi = std::numeric_limits<int32_t>::max(); return;
    case DataType::kBOOL: *lo = 0; *hi = 1; return;
    default: *lo = std::numeric_limits<int64_t>::min(); *hi = std::numeric_limits<int64_t>::max(); return;
  }
}

int64_t int_clip_bound(double v, bool up, int64_t lo, int64_t hi) {
  const double r = up ? std::ceil(v) : std::floor(v);
  if (!(r > static_cast<double>(lo))) return lo;
  if (!(r < static_cast<double>(hi))) return hi;
  return static_cast<int64_t>(r);
}


void validate(const Program& p, const std::vector<DataType>& input_dtypes) {
  if (p.code.empty()) throw Error("the program is empty");
  const int64_t num_inputs = static_cast<int64_t>(input_dtypes.size());
  const int64_t num_imm = static_cast<int64_t>(p.imm.size());
  for (size_t i = 0; i < p.code.size(); ++i) {
    const Instr& in = p.code[i];
    const int64_t reg = static_cast<int64_t>(i);
    auto fail = [&](const std::string& msg) {
      throw Error("program instruction " + std::to_string(i) + " (opcode " + std::to_string(in.op) + "): " + msg);
    };
    auto operand = [&](int64_t r, const char* what) -> DataType {
      if (r < 0 || r >= reg) fail(std::string("operand ") + what + " " + std::to_string(r) + " is not an earlier register");
      return p.code[static_cast<size_t>(r)].dtype;
    };
    auto expect = [&](bool ok, const std::string& msg) {
      if (!ok) fail(msg);
    };
    const DataType dt = in.dtype;
    expect(is_program_type(dt), std::string("dtype ") + dtype_name(dt) + " is not supported in fused pointwise programs");
    switch (in.op) {
      case kInput:
        expect(in.a >= 0 && in.a < num_inputs, "input index " + std::to_string(in.a) + " is out of range");
        expect(input_dtypes[static_cast<size_t>(in.a)] == dt,
               std::string("input ") + std::to_string(in.a) + " has dtype " + dtype_name(input_dtypes[static_cast<size_t>(in.a)]) +
                   ", the program reads " + dtype_name(dt));
        break;
      case kConst:
        if (is_float_type(dt)) {
          expect(in.a >= 0 && in.a < num_imm, "immediate index " + std::to_string(in.a) + " is out of range");
        } else {
          int64_t lo, hi;
          int_range(dt, &lo, &hi);
          expect(in.a >= lo && in.a <= hi, "constant " + std::to_string(in.a) + " is out of range for " + dtype_name(dt));
        }
        break;
      case kElementWise: {
        const DataType a = operand(in.a, "a"), b = operand(in.b, "b");
        expect(a == b, std::string("operands have dtypes ") + dtype_name(a) + " and " + dtype_name(b));
        const int64_t op = in.sub;
        if (ew_is_logic(op)) {
          expect(a == DataType::kBOOL && dt == DataType::kBOOL, "AND/OR/XOR take and give bool");
        } else if (ew_is_compare(op)) {
          expect(dt == DataType::kBOOL, "comparisons give bool");
          expect(a != DataType::kBOOL || op == kEqual, "only EQUAL compares bools");
        } else if (ew_is_arith(op)) {
          expect(a != DataType::kBOOL && dt == a, "arithmetic keeps its operands' numeric dtype");
          expect(in.c == 0 || in.c == 1 || op != kMod, "the fmod flag must be 0 or 1");
        } else if (ew_is_shift(op)) {
          expect(is_int_type(a) && dt == a, "bit shifts take and give integers");
        } else {
          fail("unknown ElementWiseOperation " + std::to_string(op));
        }
        break;
      }
      case kUnary: {
        const DataType a = operand(in.a, "a");
        const int64_t op = in.sub;
        if (op == kNot) {
          expect(a == DataType::kBOOL && dt == DataType::kBOOL, "NOT takes and gives bool");
        } else if (op == kAbs || op == kNeg || op == kSign) {
          expect(is_float_type(a) || a == DataType::kINT8 || a == DataType::kINT32 || a == DataType::kINT64,
                 "ABS/NEG/SIGN take floats or signed integers");
          expect(dt == a, "ABS/NEG/SIGN keep the dtype");
        } else if (op == kIsInf || op == kIsNan) {
          expect(is_float_type(a) && dt == DataType::kBOOL, "ISINF/ISNAN take floats and give bool");
        } else if (op >= kExp && op <= kRound) {
          expect(is_float_type(a) && dt == a, "float unary ops take and give floats");
        } else {
          fail("unknown UnaryOperation " + std::to_string(op));
        }
        break;
      }
      case kActivation: {
        const DataType a = operand(in.a, "a");
        expect(act_is_known(in.sub), "unknown ActivationType " + std::to_string(in.sub));
        expect(dt == a, "activations keep the dtype");
        expect(is_float_type(a) || (is_int_type(a) && (in.sub == kRelu || in.sub == kClip)),
               "only RELU and CLIP take integers");
        expect(in.b >= 0 && in.b + 1 < num_imm, "alpha/beta immediates are out of range");
        break;
      }
      case kCast:
        operand(in.a, "a");
        break;
      case kSelect: {
        const DataType c = operand(in.a, "a"), a = operand(in.b, "b"), b = operand(in.c, "c");
        expect(c == DataType::kBOOL, "the condition must be bool");
        expect(a == b && dt == a, "both values and the result share a dtype");
        break;
      }
      default: fail("unknown opcode");
    }
  }
}

std::string to_string(const Program& p) {
  static const char* kNames[] = {"input", "const", "elementwise", "unary", "activation", "cast", "select"};
  std::ostringstream s;
  for (size_t i = 0; i < p.code.size(); ++i) {
    const Instr& in = p.code[i];
    s << "r" << i << " = " << (in.op >= 0 && in.op <= kSelect ? kNames[in.op] : "?");
    switch (in.op) {
      case kInput: s << "(" << in.a << ")"; break;
      case kConst: s << "(" << (is_float_type(in.dtype) && in.a >= 0 && in.a < static_cast<int64_t>(p.imm.size()) ? p.imm[in.a] : static_cast<double>(in.a)) << ")"; break;
      case kElementWise: s << "." << in.sub << "(r" << in.a << ", r" << in.b << ")"; break;
      case kUnary: s << "." << in.sub << "(r" << in.a << ")"; break;
      case kActivation: s << "." << in.sub << "(r" << in.a << ")"; break;
      case kCast: s << "(r" << in.a << ")"; break;
      case kSelect: s << "(r" << in.a << ", r" << in.b << ", r" << in.c << ")"; break;
      default: break;
    }
    s << " : " << dtype_name(in.dtype) << "\n";
  }
  return s.str();
}

}  // namespace kiln::ir::pw
