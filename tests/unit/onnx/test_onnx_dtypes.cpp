// ONNX tensor contents of the narrow and wide dtypes (to_kiln_dtype / tensor_to_host): 4- and 2-bit types
// unpacked one element per byte (signed ones sign-extended) from raw_data and from int32_data, 16-bit types
// from int32_data, uint32/uint64 from uint64_data, float8 codes as they are; unsupported types named.
#include <gtest/gtest.h>

#include <string>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using OT = onnx::DataType;

HostTensor host(TensorProto& t) {
  ExternalDataCache cache;
  return tensor_to_host(t, "", cache, "initializer 't'");
}

TensorProto proto(OT type, std::vector<int64_t> dims) {
  TensorProto t;
  t.data_type = static_cast<int32_t>(type);
  t.dims = std::move(dims);
  return t;
}

TEST(OnnxDtypes, MapsEveryNumericType) {
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kUint16)), kiln::DataType::kUINT16);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kInt16)), kiln::DataType::kINT16);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kUint64)), kiln::DataType::kUINT64);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kFloat8E4M3FN)), kiln::DataType::kFP8);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kFloat8E5M2FNUZ)), kiln::DataType::kFP8E5M2FNUZ);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kFloat4E2M1)), kiln::DataType::kFP4);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kFloat8E8M0)), kiln::DataType::kE8M0);
  EXPECT_EQ(to_kiln_dtype(static_cast<int32_t>(OT::kInt2)), kiln::DataType::kINT2);
  EXPECT_FALSE(to_kiln_dtype(static_cast<int32_t>(OT::kComplex64)).has_value());
  EXPECT_FALSE(to_kiln_dtype(static_cast<int32_t>(OT::kString)).has_value());
}

TEST(OnnxDtypes, Int4FromRawDataIsUnpackedAndSignExtended) {
  // Elements 1, -1, 7, -8, 3 packed low nibble first; the last byte's high nibble is padding.
  const std::string raw = {static_cast<char>(0xF1), static_cast<char>(0x87), static_cast<char>(0x03)};
  TensorProto t = proto(OT::kInt4, {5});
  t.has_raw_data = true;
  t.raw_data = raw;
  HostTensor h = host(t);
  ASSERT_EQ(h.dtype(), kiln::DataType::kINT4);
  ASSERT_EQ(h.numel(), 5);
  const int want[] = {1, -1, 7, -8, 3};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(h.data<int8_t>()[i], want[i]) << i;
  EXPECT_EQ(h.to_i64(), (std::vector<int64_t>{1, -1, 7, -8, 3}));
}

TEST(OnnxDtypes, Uint4AndFloat4FromInt32Data) {
  TensorProto t = proto(OT::kUint4, {2, 2});
  t.int32_data = {0xF1, 0x7A};  // one packed byte per value
  HostTensor h = host(t);
  const int want[] = {1, 15, 10, 7};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h.data<uint8_t>()[i], want[i]) << i;
  TensorProto f = proto(OT::kFloat4E2M1, {3});
  f.int32_data = {0xF2, 0x07};  // codes 2 (1.0), 15 (-6.0), 7 (6.0)
  HostTensor hf = host(f);
  EXPECT_EQ(hf.dtype(), kiln::DataType::kFP4);
  EXPECT_EQ(hf.get_f64(0), 1.0);
  EXPECT_EQ(hf.get_f64(1), -6.0);
  EXPECT_EQ(hf.get_f64(2), 6.0);
}

TEST(OnnxDtypes, TwoBitTypesPackFourPerByte) {
  TensorProto t = proto(OT::kInt2, {5});
  t.has_raw_data = true;
  const std::string raw = {static_cast<char>(0b11100100), static_cast<char>(0b00000010)};  // 0,1,2,3 | 2
  t.raw_data = raw;
  HostTensor h = host(t);
  const int want[] = {0, 1, -2, -1, -2};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(h.data<int8_t>()[i], want[i]) << i;
  t.data_type = static_cast<int32_t>(OT::kUint2);
  HostTensor u = host(t);
  const int wantu[] = {0, 1, 2, 3, 2};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(u.data<uint8_t>()[i], wantu[i]) << i;
}

TEST(OnnxDtypes, WideIntegersFromTypedFields) {
  TensorProto a = proto(OT::kUint16, {3});
  a.int32_data = {0, 40000, 65535};
  HostTensor ha = host(a);
  EXPECT_EQ(ha.data<uint16_t>()[1], 40000);
  EXPECT_EQ(ha.data<uint16_t>()[2], 65535);
  TensorProto b = proto(OT::kInt16, {2});
  b.int32_data = {-32768, 1234};
  EXPECT_EQ(host(b).data<int16_t>()[0], -32768);
  TensorProto c = proto(OT::kUint64, {2});
  c.uint64_data = {18446744073709551615ull, 5};
  HostTensor hc = host(c);
  EXPECT_EQ(hc.data<uint64_t>()[0], 18446744073709551615ull);
  EXPECT_EQ(hc.get_f64(0), 18446744073709551615.0);
  TensorProto d = proto(OT::kUint32, {1});
  d.uint64_data = {4000000000u};
  EXPECT_EQ(host(d).data<uint32_t>()[0], 4000000000u);
}

TEST(OnnxDtypes, Float8CodesAreKept) {
  TensorProto t = proto(OT::kFloat8E4M3FN, {2});
  t.int32_data = {0x7e, 0xb8};  // 448, -1.0
  HostTensor h = host(t);
  EXPECT_EQ(h.dtype(), kiln::DataType::kFP8);
  EXPECT_EQ(h.get_f64(0), 448.0);
  EXPECT_EQ(h.get_f64(1), -1.0);
}

TEST(OnnxDtypes, WrongPackedSizeAndUnsupportedTypesAreNamed) {
  TensorProto t = proto(OT::kInt4, {5});
  t.has_raw_data = true;
  t.raw_data = "\x01\x02";  // 5 int4 need 3 bytes
  try {
    host(t);
    FAIL() << "no error";
  } catch (const ImportError& e) {
    EXPECT_NE(std::string(e.what()).find("need 3"), std::string::npos) << e.what();
  }
  TensorProto c = proto(OT::kComplex64, {1});
  c.float_data = {1.0f, 2.0f};
  try {
    host(c);
    FAIL() << "no error";
  } catch (const ImportError& e) {
    EXPECT_EQ(e.code(), ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE);
    EXPECT_NE(std::string(e.what()).find("COMPLEX64"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("initializer 't'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::onnx
