// .npy / .npz reading and writing (tools/npy.h): round trips of every dtype, files written by numpy
// (Fortran order, big-endian, format versions 2 and 3, stored and deflated .npz), and malformed input,
// which must throw kiln::Error with a clear message and never crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

// tools/ is not part of kiln_core: compile the reader into the test directly (no CMake change needed).
#include "../../../tools/npy.cpp"

namespace kiln::npy {
namespace {

// Fixtures written by numpy 2.4 (python3 -c "np.save(...)"), as hex.
const char* const kNumpyNpzStored =
    "504b03042d0000000000000021004fe9002affffffffffffffff05001400612e6e7079010010009800000000000000980000"
    "0000000000934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020202020202020"
    "20202020202020202020202020202020202020202020202020202020202020200a000000000000803f000000400000404000"
    "0080400000a040504b03042d00000000000000210016938cbbffffffffffffffff09001400666c6167732e6e707901001000"
    "83000000000000008300000000000000934e554d5059010076007b276465736372273a20277c6231272c2027666f72747261"
    "6e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a010001504b03"
    "042d0000000000000021000f10488bffffffffffffffff05001400632e6e7079010010008300000000000000830000000000"
    "0000934e554d5059010076007b276465736372273a20277c6931272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028332c292c207d20202020202020202020202020202020202020202020202020202020202020"
    "20202020202020202020202020202020202020202020202020202020200aff02fd504b01022d032d0000000000000021004f"
    "e9002a9800000098000000050000000000000000000000800100000000612e6e7079504b01022d032d000000000000002100"
    "16938cbb83000000830000000900000000000000000000008001cf000000666c6167732e6e7079504b01022d032d00000000"
    "00000021000f10488b830000008300000005000000000000000000000080018d010000632e6e7079504b0506000000000300"
    "03009d000000470200000000"
    ;
const char* const kNumpyNpzDeflated =
    "504b03042d0000000800000021004fe9002affffffffffffffff05001400612e6e7079010010009800000000000000550000"
    "00000000009bec17ea1b10c9c850c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc"
    "294e058a17672416a402f91a463a0ac69a3a0ab50a64032e063068b007120e4004c40d40bcc00100504b03042d0000000800"
    "00002100bc91558effffffffffffffff05001400622e6e70790100100098000000000000004d000000000000009bec17ea1b"
    "10c9c850c650ad9e925a9c5ca46ea5a06e9369a1aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402"
    "f91ac63a9a3a0ab50a14002e4606086082d2cc501a00504b01022d032d0000000800000021004fe9002a5500000098000000"
    "050000000000000000000000800100000000612e6e7079504b01022d032d000000080000002100bc91558e4d000000980000"
    "0005000000000000000000000080018c000000622e6e7079504b0506000000000200020066000000100100000000"
    ;
const char* const kNumpyFortran =
    "934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a20547275652c20"
    "277368617065273a2028322c20332c2034292c207d2020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020200a000000000c0000000400000010000000080000001400"
    "0000010000000d00000005000000110000000900000015000000020000000e00000006000000120000000a00000016000000"
    "030000000f00000007000000130000000b00000017000000"
    ;
const char* const kNumpyBigEndian =
    "934e554d5059010076007b276465736372273a20273e6934272c2027666f727472616e5f6f72646572273a2046616c73652c"
    "20277368617065273a2028352c292c207d202020202020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020200a0000000000000001000000020000000300000004"
    ;
const char* const kNumpyV2 =
    "934e554d50590200740000007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028332c292c207d20202020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020200a0000003c0040"
    ;
const char* const kNumpyV3 =
    "934e554d50590300740000007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028332c292c207d20202020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020200a0000003c0040"
    ;
const char* const kNumpyScalar =
    "934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c"
    "20277368617065273a2028292c207d2020202020202020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020200a0000000000000440"
    ;

std::vector<uint8_t> unhex(const char* h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(h + i, 2), nullptr, 16)));
  return out;
}

template <class T>
std::vector<T> values_of(const Array& a) {
  EXPECT_EQ(a.data.size(), static_cast<size_t>(a.numel()) * sizeof(T));
  std::vector<T> v(static_cast<size_t>(a.numel()));
  if (!v.empty()) std::memcpy(v.data(), a.data.data(), a.data.size());
  return v;
}

// Expects parse to throw kiln::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a kiln::Error: " << e.what();
  }
}

// Builds a .npy v1 file from a header dict and raw data bytes.
std::vector<uint8_t> make_npy(const std::string& dict, const std::vector<uint8_t>& data, int major = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  std::string h = dict + "\n";
  if (major == 1) {
    out.push_back(static_cast<uint8_t>(h.size()));
    out.push_back(static_cast<uint8_t>(h.size() >> 8));
  } else {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<uint8_t>(h.size() >> (8 * k)));
  }
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Array random_array(DataType dt, Dims shape, uint32_t seed) {
  Array a(dt, std::move(shape));
  std::mt19937 rng(seed);
  for (auto& b : a.data) b = static_cast<uint8_t>(rng() | 1);
  if (dt == DataType::kBOOL)
    for (auto& b : a.data) b &= 1;
  return a;
}

const DataType kAllDtypes[] = {DataType::kFLOAT, DataType::kHALF,  DataType::kDOUBLE, DataType::kINT8,
                               DataType::kUINT8, DataType::kINT32, DataType::kINT64,  DataType::kBOOL};

TEST(Npy, RoundTripEveryDtypeAndShape) {
  const Dims shapes[] = {{2, 3}, {7}, {}, {0}, {2, 0, 3}, {1, 2, 3, 4, 5}};
  uint32_t seed = 1;
  for (DataType dt : kAllDtypes) {
    for (const Dims& s : shapes) {
      Array a = random_array(dt, s, seed++);
      std::vector<uint8_t> bytes = serialize_npy(a);
      // numpy's layout: magic, version 1.0, header padded with spaces to a multiple of 64, ending in '\n'.
      ASSERT_GE(bytes.size(), 10u);
      EXPECT_EQ(bytes[6], 1);
      size_t hlen = bytes[8] | bytes[9] << 8;
      EXPECT_EQ((10 + hlen) % 64, 0u);
      EXPECT_EQ(bytes[10 + hlen - 1], '\n');
      Array b = parse_npy(bytes.data(), bytes.size(), "rt.npy");
      EXPECT_EQ(b.dtype, dt) << dtype_name(dt);
      EXPECT_EQ(b.shape, s) << dims_str(s);
      EXPECT_EQ(b.data, a.data) << dtype_name(dt) << " " << dims_str(s);
    }
  }
}

TEST(Npy, HeaderTextMatchesNumpy) {
  Array a(DataType::kFLOAT, {2, 3});
  auto bytes = serialize_npy(a);
  std::string header(bytes.begin() + 10, bytes.begin() + 10 + (bytes[8] | bytes[9] << 8));
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u) << header;
  Array one(DataType::kBOOL, {4});
  bytes = serialize_npy(one);
  header.assign(bytes.begin() + 10, bytes.begin() + 10 + (bytes[8] | bytes[9] << 8));
  EXPECT_NE(header.find("'descr': '|b1'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (4,)"), std::string::npos) << header;
  // The whole file written by numpy for the same array is byte-identical to ours (stored npz entry 'a').
  auto npz = unhex(kNumpyNpzStored);
  Array f(DataType::kFLOAT, {2, 3});
  for (int i = 0; i < 6; ++i) reinterpret_cast<float*>(f.data.data())[i] = static_cast<float>(i);
  auto ours = serialize_npy(f);
  auto it = std::search(npz.begin(), npz.end(), ours.begin(), ours.end());
  EXPECT_NE(it, npz.end()) << "our .npy bytes for arange(6).reshape(2,3) differ from numpy's";
}

TEST(Npy, DtypeDescr) {
  EXPECT_EQ(dtype_descr(DataType::kFLOAT), "<f4");
  EXPECT_EQ(dtype_descr(DataType::kHALF), "<f2");
  EXPECT_EQ(dtype_descr(DataType::kINT64), "<i8");
  EXPECT_EQ(dtype_descr(DataType::kUINT8), "|u1");
  EXPECT_FALSE(dtype_supported(DataType::kBF16));
  expect_error([] { dtype_descr(DataType::kBF16); }, "bfloat16");
  expect_error([] { serialize_npy(Array(DataType::kFP8, {2})); }, "no .npy equivalent");
}

TEST(Npy, ReadsNumpyFortranOrder) {
  auto bytes = unhex(kNumpyFortran);
  Array a = parse_npy(bytes.data(), bytes.size(), "f.npy");
  EXPECT_EQ(a.dtype, DataType::kINT32);
  EXPECT_EQ(a.shape, (Dims{2, 3, 4}));
  auto v = values_of<int32_t>(a);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(v[i], i);  // arange(24).reshape(2, 3, 4) in C order
}

TEST(Npy, FortranOrderHandMade) {
  // [[0, 1, 2], [3, 4, 5]] stored column by column.
  std::vector<float> col = {0, 3, 1, 4, 2, 5};
  std::vector<uint8_t> raw(24);
  std::memcpy(raw.data(), col.data(), 24);
  auto bytes = make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", raw);
  Array a = parse_npy(bytes.data(), bytes.size(), "f.npy");
  EXPECT_EQ(values_of<float>(a), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  // 1-d and 0-size Fortran arrays are the same as C ones.
  bytes = make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", raw);
  EXPECT_EQ(values_of<float>(parse_npy(bytes.data(), bytes.size(), "f.npy")), col);
  bytes = make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", {});
  EXPECT_EQ(parse_npy(bytes.data(), bytes.size(), "f.npy").numel(), 0);
}

TEST(Npy, ReadsBigEndianVersionsAndScalars) {
  auto be = unhex(kNumpyBigEndian);
  Array a = parse_npy(be.data(), be.size(), "be.npy");
  EXPECT_EQ(a.dtype, DataType::kINT32);
  EXPECT_EQ(values_of<int32_t>(a), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  for (const char* hex : {kNumpyV2, kNumpyV3}) {
    auto bytes = unhex(hex);
    Array h = parse_npy(bytes.data(), bytes.size(), "v.npy");
    EXPECT_EQ(h.dtype, DataType::kHALF);
    EXPECT_EQ(h.shape, (Dims{3}));
    EXPECT_EQ(values_of<uint16_t>(h), (std::vector<uint16_t>{0x0000, 0x3C00, 0x4000}));  // 0, 1, 2 in fp16
  }
  auto sc = unhex(kNumpyScalar);
  Array s = parse_npy(sc.data(), sc.size(), "s.npy");
  EXPECT_EQ(s.dtype, DataType::kDOUBLE);
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(values_of<double>(s), (std::vector<double>{2.5}));
}

TEST(Npy, HugeHeaderUsesVersion2) {
  Array a(DataType::kUINT8, Dims(30000, 1));  // "(1, 1, ...)" is over 64 KiB: format version 2
  auto bytes = serialize_npy(a);
  EXPECT_EQ(bytes[6], 2);
  // Ranks above 64 are refused on reading.
  expect_error([&] { parse_npy(bytes.data(), bytes.size(), "r.npy"); }, "rank 30000 is too large");
}

TEST(Npy, ReadsNumpyNpzStored) {
  auto bytes = unhex(kNumpyNpzStored);
  auto arrays = parse_npz(bytes.data(), bytes.size(), "s.npz");
  ASSERT_EQ(arrays.size(), 3u);
  EXPECT_EQ(arrays[0].first, "a");
  EXPECT_EQ(arrays[0].second.shape, (Dims{2, 3}));
  EXPECT_EQ(values_of<float>(arrays[0].second), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(arrays[1].first, "flags");
  EXPECT_EQ(arrays[1].second.dtype, DataType::kBOOL);
  EXPECT_EQ(values_of<uint8_t>(arrays[1].second), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(arrays[2].first, "c");
  EXPECT_EQ(values_of<int8_t>(arrays[2].second), (std::vector<int8_t>{-1, 2, -3}));
}

TEST(Npy, NumpyNpzDeflated) {
  auto bytes = unhex(kNumpyNpzDeflated);
  if (!deflate_supported()) {
    expect_error([&] { parse_npz(bytes.data(), bytes.size(), "c.npz"); }, "without zlib");
    GTEST_SKIP() << "built without zlib: compressed .npz gives a clear error (checked)";
  }
  auto arrays = parse_npz(bytes.data(), bytes.size(), "c.npz");
  ASSERT_EQ(arrays.size(), 2u);
  EXPECT_EQ(values_of<float>(arrays[0].second), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(arrays[1].first, "b");
  EXPECT_EQ(values_of<int64_t>(arrays[1].second), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Npy, NpzRoundTrip) {
  std::vector<NamedArray> in;
  uint32_t seed = 7;
  for (DataType dt : kAllDtypes) in.emplace_back(std::string("t_") + dtype_name(dt), random_array(dt, {3, 2}, seed++));
  in.emplace_back("scope/with:odd names", random_array(DataType::kFLOAT, {}, seed++));
  in.emplace_back("empty", Array(DataType::kINT64, {0, 4}));
  auto bytes = serialize_npz(in);
  auto out = parse_npz(bytes.data(), bytes.size(), "rt.npz");
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.dtype, in[i].second.dtype);
    EXPECT_EQ(out[i].second.shape, in[i].second.shape);
    EXPECT_EQ(out[i].second.data, in[i].second.data);
  }
  EXPECT_TRUE(parse_npz(serialize_npz({}).data(), serialize_npz({}).size(), "e.npz").empty());
}

TEST(Npy, TruncatedFilesGiveClearErrors) {
  Array a = random_array(DataType::kFLOAT, {4, 5}, 3);
  auto npy = serialize_npy(a);
  for (size_t n = 0; n < npy.size(); ++n) EXPECT_THROW(parse_npy(npy.data(), n, "t.npy"), Error) << n;
  expect_error([&] { parse_npy(npy.data(), npy.size() - 1, "t.npy"); }, "t.npy: truncated .npy file");
  expect_error([&] { parse_npy(npy.data(), 0, "t.npy"); }, "empty");
  expect_error([&] { parse_npy(npy.data(), 20, "t.npy"); }, "truncated");

  auto npz = serialize_npz({{"x", a}, {"y", random_array(DataType::kINT64, {3}, 4)}});
  for (size_t n = 0; n < npz.size(); ++n) EXPECT_THROW(parse_npz(npz.data(), n, "t.npz"), Error) << n;
  for (const char* hex : {kNumpyNpzStored, kNumpyNpzDeflated}) {
    auto z = unhex(hex);
    for (size_t n = 0; n < z.size(); ++n) EXPECT_THROW(parse_npz(z.data(), n, "t.npz"), Error) << n;
  }
}

TEST(Npy, CorruptFilesNeverCrash) {
  // Every single-byte change either still parses or throws kiln::Error; nothing else.
  std::mt19937 rng(99);
  std::vector<std::vector<uint8_t>> files = {serialize_npy(random_array(DataType::kINT32, {3, 4}, 5)), unhex(kNumpyFortran),
                                             unhex(kNumpyV3)};
  for (auto& f : files) {
    for (size_t i = 0; i < f.size(); ++i) {
      for (uint8_t v : {uint8_t(0), uint8_t(0xFF), static_cast<uint8_t>(f[i] ^ (1u << (rng() % 8)))}) {
        auto g = f;
        g[i] = v;
        try {
          parse_npy(g.data(), g.size(), "c.npy");
        } catch (const Error&) {
        }
      }
    }
  }
  for (const char* hex : {kNumpyNpzStored, kNumpyNpzDeflated}) {
    auto z = unhex(hex);
    for (size_t i = 0; i < z.size(); ++i) {
      for (uint8_t v : {uint8_t(0), uint8_t(0xFF), static_cast<uint8_t>(z[i] ^ (1u << (rng() % 8)))}) {
        auto g = z;
        g[i] = v;
        try {
          parse_npz(g.data(), g.size(), "c.npz");
        } catch (const Error&) {
        }
      }
    }
  }
}

TEST(Npy, CorruptNpzDataIsDetectedByCrc) {
  auto z = unhex(kNumpyNpzStored);
  // The last data byte of the first entry (a float of 'a'); its CRC no longer matches.
  const uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  auto magic = std::search(z.begin(), z.end(), std::begin(kMagic), std::end(kMagic));
  ASSERT_NE(magic, z.end());
  size_t data_byte = static_cast<size_t>(magic - z.begin()) + 128 + 23;
  z[data_byte] ^= 0x40;
  expect_error([&] { parse_npz(z.data(), z.size(), "c.npz"); }, "c.npz:a.npy: corrupt .npz entry: CRC-32 mismatch");
}

TEST(Npy, MalformedHeaders) {
  std::vector<uint8_t> four(16, 0);
  auto h = [&](const std::string& dict, const std::vector<uint8_t>& data = std::vector<uint8_t>(16, 0)) {
    return make_npy(dict, data);
  };
  auto err = [&](const std::vector<uint8_t>& f, const std::string& needle) {
    expect_error([&] { parse_npy(f.data(), f.size(), "m.npy"); }, needle);
  };
  err(h("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }"), "dtype '<c8' is not supported");
  err(h("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }"), "dtype '<U3' is not supported");
  err(h("{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }"), "not supported");
  err(h("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }"), "structured");
  err(h("{'descr': '<f4', 'shape': (1,), }"), "needs the keys");
  err(h("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }"), "fortran_order");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }"), "'shape' is not a tuple");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "negative");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), "integer too large");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }"), "too large");
  auto empty = h("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 0), }", {});
  EXPECT_EQ(parse_npy(empty.data(), empty.size(), "e.npy").numel(), 0);  // zero-size: fine
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"), "needs 20 bytes of data, only 16 present");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)"), "malformed .npy header");
  err(h("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk"), "unexpected text");
  err(h("{'descr': '<f4, 'fortran_order': False}"), "malformed");
  err(h(std::string(2000, '(')), "nesting too deep");
  err(h("[1, 2]"), "not a dict");
  auto bad_version = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four, 4);
  err(bad_version, "format version 4.0 is not supported");
  std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};
  err(elf, "not a .npy file (bad magic: starts with 7f 45 4c 46");
  // A header length beyond the file.
  auto f = h("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
  f[8] = 0xFF;
  f[9] = 0xFF;
  err(f, "header needs 65535 bytes");
}

TEST(Npy, MalformedArchives) {
  auto err = [&](const std::vector<uint8_t>& f, const std::string& needle) {
    expect_error([&] { parse_npz(f.data(), f.size(), "m.npz"); }, needle);
  };
  err({}, "empty");
  err(std::vector<uint8_t>(100, 'x'), "not an .npz (zip) archive");
  auto npy = serialize_npy(Array(DataType::kFLOAT, {2}));
  err(npy, "not an .npz");
  // A zip holding a non-.npy entry, and one holding a duplicate name.
  auto z = serialize_npz({{"a", Array(DataType::kFLOAT, {1})}});
  auto renamed = z;
  for (size_t i = 0; i + 5 <= renamed.size(); ++i)
    if (std::memcmp(renamed.data() + i, "a.npy", 5) == 0) std::memcpy(renamed.data() + i, "a.txt", 5);
  err(renamed, "is not an .npy array");
  auto dup = serialize_npz({{"a", Array(DataType::kFLOAT, {1})}, {"a", Array(DataType::kFLOAT, {1})}});
  err(dup, "two arrays named 'a'");
  // Unsupported compression method (12 = bzip2) in the central directory.
  auto bz = z;
  size_t cd = 0;
  for (size_t i = 0; i + 4 <= bz.size(); ++i)
    if (bz[i] == 0x50 && bz[i + 1] == 0x4b && bz[i + 2] == 1 && bz[i + 3] == 2) cd = i;
  ASSERT_GT(cd, 0u);
  bz[cd + 10] = 12;
  err(bz, "compression method 12 is not supported");
  // An entry claiming to live past the end of the file.
  auto far = z;
  far[cd + 45] = 0x7F;
  err(far, "bad local header offset");
}

TEST(Npy, Files) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_npy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Array a = random_array(DataType::kINT64, {3, 3}, 11);
  std::string p = (dir / "a.npy").string();
  save_npy(p, a);
  EXPECT_EQ(load_npy(p).data, a.data);
  std::string z = (dir / "a.npz").string();
  save_npz(z, {{"a", a}});
  EXPECT_EQ(load_npz(z).at(0).second.data, a.data);
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp-kiln"));
  expect_error([&] { load_npy((dir / "missing.npy").string()); }, "missing.npy': No such file or directory");
  expect_error([&] { load_npy(dir.string()); }, "is a directory");
  expect_error([&] { save_npy((dir / "no/such/dir/x.npy").string(), a); }, "cannot write");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::npy
