// The wire reader on its own: every wire type, packed and unpacked repeated scalars, nesting,
// unknown fields, and the error paths (each must be a ParseError with a useful message).
#include "onnx/wire_reader.h"

#include <gtest/gtest.h>

#include <limits>

#include "proto_writer.h"

namespace kiln::onnx {
namespace {

using test::ProtoWriter;

constexpr FieldName kOuterFields[] = {{1, "a"}, {2, "child"}, {3, "list"}};
const MessageInfo kOuter{"Outer", kOuterFields};
constexpr FieldName kInnerFields[] = {{1, "payload"}};
const MessageInfo kInner{"Inner", kInnerFields};

std::vector<Field> read_all(std::string_view bytes) {
  WireReader r(bytes, kOuter);
  std::vector<Field> out;
  for (Field f; r.next(f);) out.push_back(f);
  return out;
}

// Runs `fn` and returns the ParseError message; fails the test if nothing (or something else) is thrown.
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ParseError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ParseError";
  return {};
}

TEST(WireReader, EmptyMessageHasNoFields) { EXPECT_TRUE(read_all("").empty()); }

TEST(WireReader, DecodesEveryWireType) {
  ProtoWriter w;
  w.varint(1, 150).fixed64(2, 0x0102030405060708ull).bytes(3, "hello").fixed32(4, 0xdeadbeef);
  const std::string bytes = w.str();
  const auto fields = read_all(bytes);
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].number, 1u);
  EXPECT_EQ(fields[0].type, WireType::kVarint);
  EXPECT_EQ(fields[0].scalar, 150u);
  EXPECT_EQ(fields[0].offset, 0u);
  EXPECT_EQ(fields[1].type, WireType::kFixed64);
  EXPECT_EQ(fields[1].scalar, 0x0102030405060708ull);
  EXPECT_EQ(fields[2].type, WireType::kLen);
  EXPECT_EQ(fields[2].bytes, "hello");
  EXPECT_EQ(fields[3].type, WireType::kFixed32);
  EXPECT_EQ(fields[3].scalar, 0xdeadbeefu);
}

TEST(WireReader, LengthDelimitedIsZeroCopy) {
  const std::string bytes = ProtoWriter().bytes(1, "abc").str();
  const auto fields = read_all(bytes);
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].bytes.data(), bytes.data() + 2);
  EXPECT_EQ(fields[0].payload_offset, 2u);
}

TEST(WireReader, TypedAccessors) {
  ProtoWriter w;
  w.int64(1, -5).int32(2, -7).float32(3, 1.5f).float64(4, -2.25).bytes(5, "x").varint(6, ~0ull);
  const std::string bytes = w.str();
  WireReader r(bytes, kOuter);
  Field f;
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.int64(f), -5);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.int32(f), -7);  // encoded as a 10-byte sign-extended varint
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.float32(f), 1.5f);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.float64(f), -2.25);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.bytes(f), "x");
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(r.uint64(f), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(r.next(f));
}

TEST(WireReader, WrongWireTypeForAccessorIsAnError) {
  const std::string bytes = ProtoWriter().varint(1, 3).str();
  WireReader r(bytes, kOuter);
  Field f;
  ASSERT_TRUE(r.next(f));
  const std::string msg = error_of([&] { r.bytes(f); });
  EXPECT_NE(msg.find("Outer.a: expected wire type LEN, got VARINT at offset 0"), std::string::npos) << msg;
  EXPECT_THROW(r.float32(f), ParseError);
  EXPECT_THROW(r.float64(f), ParseError);
}

TEST(WireReader, LargestVarintAndOverlongVarint) {
  // 10 bytes with a final 0x01: the largest legal value.
  std::string ok = "\x08" + std::string(9, '\xff') + "\x01";
  EXPECT_EQ(read_all(ok)[0].scalar, std::numeric_limits<uint64_t>::max());
  // A 10th byte above 1 sets bits beyond 64.
  std::string too_big = "\x08" + std::string(9, '\xff') + "\x02";
  EXPECT_NE(error_of([&] { read_all(too_big); }).find("longer than 10 bytes"), std::string::npos);
  // An 11th byte.
  std::string eleven = "\x08" + std::string(10, '\x80') + "\x00";
  EXPECT_THROW(read_all(eleven), ParseError);
}

TEST(WireReader, TruncationsAreErrors) {
  EXPECT_NE(error_of([] { read_all("\x08"); }).find("Outer.a: truncated varint at offset 1"), std::string::npos);
  EXPECT_NE(error_of([] { read_all("\x80"); }).find("truncated varint in field tag at offset 0"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_all(std::string("\x09\x01\x02\x03", 4)); })
                .find("truncated I64: needs 8 bytes, 3 remain"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_all(std::string("\x0d\x01", 2)); }).find("truncated I32: needs 4 bytes, 1 remain"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_all("\x0a"); }).find("truncated varint in length"), std::string::npos);
}

TEST(WireReader, OversizeLengthIsAnErrorWithOffsetAndField) {
  std::string bytes = ProtoWriter().varint(1, 1).tag(3, 2).raw(ProtoWriter::varint_bytes(4000)).raw("abc").str();
  const std::string msg = error_of([&] { read_all(bytes); });
  EXPECT_NE(msg.find("Outer.list: length 4000 exceeds remaining 3 bytes at offset 3"), std::string::npos) << msg;
  // A length near 2^64 must not wrap around when added to the position.
  std::string huge = ProtoWriter().tag(3, 2).raw(ProtoWriter::varint_bytes(~0ull)).raw("x").str();
  EXPECT_THROW(read_all(huge), ParseError);
}

TEST(WireReader, GroupsAndInvalidWireTypesAreRejected) {
  EXPECT_NE(error_of([] { read_all(ProtoWriter().tag(1, 3).str()); }).find("group wire types"), std::string::npos);
  EXPECT_NE(error_of([] { read_all(ProtoWriter().tag(1, 4).str()); }).find("group wire types"), std::string::npos);
  EXPECT_NE(error_of([] { read_all(ProtoWriter().tag(1, 6).str()); }).find("invalid wire type 6"), std::string::npos);
  EXPECT_NE(error_of([] { read_all(ProtoWriter().tag(1, 7).str()); }).find("invalid wire type 7"), std::string::npos);
}

TEST(WireReader, BadTagsAreRejected) {
  EXPECT_NE(error_of([] { read_all(ProtoWriter().tag(0, 0).raw("\x01").str()); }).find("field number 0"),
            std::string::npos);
  const std::string wide_tag = ProtoWriter::varint_bytes(uint64_t{1} << 35) + "\x01";
  EXPECT_NE(error_of([&] { read_all(wide_tag); }).find("does not fit in 32 bits"), std::string::npos);
}

TEST(WireReader, LargestFieldNumberIsAccepted) {
  const uint32_t max_field = (1u << 29) - 1;
  const auto fields = read_all(ProtoWriter().varint(max_field, 9).str());
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(fields[0].number, max_field);
}

TEST(WireReader, NestedMessagesReportAbsoluteOffsetsAndPath) {
  ProtoWriter inner;
  inner.bytes(1, "zz");
  ProtoWriter outer;
  outer.varint(1, 7).message(2, inner);
  const std::string bytes = outer.str();
  WireReader r(bytes, kOuter);
  Field f;
  ASSERT_TRUE(r.next(f));
  ASSERT_TRUE(r.next(f));
  WireReader child(r, f, kInner);
  EXPECT_EQ(child.depth(), 1);
  EXPECT_EQ(child.path(), "Outer.child > Inner");
  Field g;
  ASSERT_TRUE(child.next(g));
  EXPECT_EQ(g.bytes, "zz");
  EXPECT_EQ(g.offset, 4u);  // 2 bytes of field 1, then tag + length of field 2
  EXPECT_FALSE(child.next(g));

  // An error inside the child names the whole chain.
  const std::string bad = ProtoWriter().message(2, ProtoWriter().tag(1, 2).raw("\x09")).str();
  WireReader r2(bad, kOuter);
  ASSERT_TRUE(r2.next(f));
  WireReader c2(r2, f, kInner);
  const std::string msg = error_of([&] { c2.next(g); });
  EXPECT_EQ(msg, "Inner.payload: length 9 exceeds remaining 0 bytes at offset 3 (in Outer.child > Inner)");
}

TEST(WireReader, ChildOfNonLenFieldIsAnError) {
  const std::string bytes = ProtoWriter().varint(2, 1).str();
  WireReader r(bytes, kOuter);
  Field f;
  ASSERT_TRUE(r.next(f));
  EXPECT_THROW(WireReader(r, f, kInner), ParseError);
}

TEST(WireReader, NestingDepthIsLimited) {
  // Build 100 levels of field 2 nested in field 2.
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes = ProtoWriter().bytes(2, bytes).str();
  // Recurse like a decoder would.
  struct Walk {
    static int go(WireReader& r) {
      int deepest = r.depth();
      for (Field f; r.next(f);) {
        WireReader c(r, f, kOuter);
        deepest = std::max(deepest, go(c));
      }
      return deepest;
    }
  };
  WireReader root(bytes, kOuter);
  const std::string msg = error_of([&] { Walk::go(root); });
  EXPECT_NE(msg.find("nested deeper than 64"), std::string::npos) << msg.substr(0, 200);

  std::string shallow;
  for (int i = 0; i < kMaxNestingDepth; ++i) shallow = ProtoWriter().bytes(2, shallow).str();
  WireReader ok(shallow, kOuter);
  EXPECT_EQ(Walk::go(ok), kMaxNestingDepth);
}

TEST(WireReader, RepeatedScalarsPackedAndUnpacked) {
  ProtoWriter w;
  w.int64(3, -1).packed_varints<int64_t>(3, {2, 300, -4}).int64(3, 5);
  const std::string bytes = w.str();
  WireReader r(bytes, kOuter);
  std::vector<int64_t> v;
  for (Field f; r.next(f);) r.append(f, v);
  EXPECT_EQ(v, (std::vector<int64_t>{-1, 2, 300, -4, 5}));
}

TEST(WireReader, RepeatedInt32AndUint64) {
  const std::string bytes =
      ProtoWriter().packed_varints<int32_t>(3, {-1, 7}).int32(3, 65535).varint(4, ~0ull).packed_varints<uint64_t>(4, {1, ~1ull}).str();
  WireReader r(bytes, kOuter);
  std::vector<int32_t> i32;
  std::vector<uint64_t> u64;
  for (Field f; r.next(f);) f.number == 3 ? r.append(f, i32) : r.append(f, u64);
  EXPECT_EQ(i32, (std::vector<int32_t>{-1, 7, 65535}));
  EXPECT_EQ(u64, (std::vector<uint64_t>{~0ull, 1, ~1ull}));
}

TEST(WireReader, RepeatedFloatsAndDoublesPackedAndUnpacked) {
  const std::string bytes = ProtoWriter()
                                .float32(3, 1.0f)
                                .packed_floats(3, {2.5f, -3.0f})
                                .packed_doubles(4, {1e300, -0.5})
                                .float64(4, 4.0)
                                .str();
  WireReader r(bytes, kOuter);
  std::vector<float> fl;
  std::vector<double> db;
  for (Field f; r.next(f);) f.number == 3 ? r.append(f, fl) : r.append(f, db);
  EXPECT_EQ(fl, (std::vector<float>{1.0f, 2.5f, -3.0f}));
  EXPECT_EQ(db, (std::vector<double>{1e300, -0.5, 4.0}));
}

TEST(WireReader, EmptyPackedRunAddsNothing) {
  const std::string bytes = ProtoWriter().bytes(3, "").str();
  WireReader r(bytes, kOuter);
  std::vector<float> fl;
  std::vector<int64_t> iv;
  Field f;
  ASSERT_TRUE(r.next(f));
  r.append(f, fl);
  r.append(f, iv);
  EXPECT_TRUE(fl.empty());
  EXPECT_TRUE(iv.empty());
}

TEST(WireReader, MalformedPackedRunsAreErrors) {
  auto append_floats = [](const std::string& bytes) {
    WireReader r(bytes, kOuter);
    std::vector<float> v;
    for (Field f; r.next(f);) r.append(f, v);
  };
  auto append_ints = [](const std::string& bytes) {
    WireReader r(bytes, kOuter);
    std::vector<int64_t> v;
    for (Field f; r.next(f);) r.append(f, v);
  };
  EXPECT_NE(error_of([&] { append_floats(ProtoWriter().bytes(3, "abcde").str()); })
                .find("Outer.list: packed length 5 is not a multiple of 4"),
            std::string::npos);
  // The last varint in the run is cut: the reported offset points inside the payload.
  const std::string msg = error_of([&] { append_ints(ProtoWriter().bytes(3, "\x01\x80").str()); });
  EXPECT_NE(msg.find("truncated varint in packed field at offset 3"), std::string::npos) << msg;
  // Wrong element wire type for an unpacked element.
  EXPECT_NE(error_of([&] { append_floats(ProtoWriter().varint(3, 1).str()); }).find("expected wire type I32 or packed LEN"),
            std::string::npos);
  EXPECT_THROW(append_ints(ProtoWriter().fixed32(3, 1).str()), ParseError);
}

TEST(WireReader, UnknownFieldsOfEveryTypeAreReturnedAndSkippable) {
  ProtoWriter w;
  w.varint(99, 1).fixed64(98, 2).bytes(97, "junk").fixed32(96, 3).varint(1, 42);
  const auto fields = read_all(w.str());
  ASSERT_EQ(fields.size(), 5u);
  EXPECT_EQ(fields.back().number, 1u);
  EXPECT_EQ(fields.back().scalar, 42u);
  // Unknown field names are worded by number.
  const std::string msg = error_of([] { read_all(ProtoWriter().tag(77, 1).str()); });
  EXPECT_NE(msg.find("Outer.field 77: truncated I64"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kiln::onnx
