// Bad plans never crash Kiln: every truncation, every flipped byte, random garbage, foreign files, plans
// from another format version, Kiln version or target, and hand-made plans that pass the checksum but
// break the layout's rules are all refused with a kiln::Error that says what is wrong.
#include <gtest/gtest.h>

#include <random>

#include "plan/byte_writer.h"
#include "plan/plan_format.h"
#include "plan/plan_reader.h"
#include "plan/plan_writer.h"
#include "plan_test_util.h"

namespace kiln::plan {
namespace {

using test::assemble;
using test::make_test_engine;
using test::reseal;

// The message of the kiln::Error that reading `b` throws; fails the test when reading succeeds or
// throws anything else.
std::string read_error(const std::vector<uint8_t>& b, const std::string& target = "") {
  try {
    read_plan(b.data(), b.size(), target);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a kiln::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "the plan was accepted";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<uint8_t> small_plan() { return write_plan(make_test_engine()); }

TEST(PlanCorruption, EmptyBuffer) {
  EXPECT_EQ(read_error({}), "plan is empty");
  uint8_t byte = 'K';
  EXPECT_THROW(read_plan(&byte, 0), Error);
  EXPECT_THROW(read_plan(nullptr, 0), Error);
}

TEST(PlanCorruption, EveryTruncationIsRefused) {
  std::vector<uint8_t> plan = small_plan();
  ASSERT_LT(plan.size(), 8192u);  // small enough to try every length
  PlanHeader h = read_plan_header(plan.data(), plan.size());
  for (size_t n = 0; n < plan.size(); ++n) {
    std::vector<uint8_t> cut(plan.begin(), plan.begin() + n);  // an exact-size buffer: ASan sees overreads
    std::string msg = read_error(cut);
    if (n == 0) {
      EXPECT_EQ(msg, "plan is empty");
    } else {
      EXPECT_TRUE(contains(msg, "plan is truncated")) << n << ": " << msg;
    }
    if (n >= h.header_size) {
      EXPECT_TRUE(contains(msg, "bytes of payload, only " + std::to_string(n - h.header_size) + " present")) << msg;
    }
  }
  EXPECT_EQ(read_error({plan.begin(), plan.begin() + 12}),
            "plan is truncated: needed 4 bytes for the header size at offset 12, only 0 left");
}

TEST(PlanCorruption, TrailingBytesAreRefused) {
  std::vector<uint8_t> plan = small_plan();
  size_t n = plan.size();
  plan.push_back(0);
  EXPECT_EQ(read_error(plan), "plan has 1 bytes of trailing data after its end (offset " + std::to_string(n) + ")");
  plan.resize(n + 4096, 0x55);
  EXPECT_TRUE(contains(read_error(plan), "4096 bytes of trailing data"));
}

void expect_every_flip_refused(const std::vector<uint8_t>& plan, const std::vector<size_t>& positions) {
  std::vector<uint8_t> b = plan;
  for (size_t i : positions)
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      b[i] ^= mask;
      std::string msg = read_error(b);
      EXPECT_FALSE(msg.empty()) << "flip at " << i << " mask " << int(mask);
      b[i] ^= mask;
    }
  EXPECT_EQ(b, plan);
}

TEST(PlanCorruption, EveryFlippedByteIsRefused) {
  std::vector<uint8_t> plan = small_plan();
  std::vector<size_t> all(plan.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  expect_every_flip_refused(plan, all);
}

TEST(PlanCorruption, SampledFlipsInALargePlanAreRefused) {
  std::vector<uint8_t> plan = write_plan(make_test_engine(1 << 16));  // ~256 KiB
  std::vector<size_t> pos;
  for (size_t i = 0; i < 4096; ++i) pos.push_back(i);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) pos.push_back(rng() % plan.size());
  pos.push_back(plan.size() - 1);
  expect_every_flip_refused(plan, pos);
}

TEST(PlanCorruption, FlipMessagesSayWhatIsWrong) {
  std::vector<uint8_t> plan = small_plan();
  PlanHeader h = read_plan_header(plan.data(), plan.size());
  auto flipped = [&](size_t i) {
    std::vector<uint8_t> b = plan;
    b[i] ^= 0x10;
    return read_error(b);
  };
  EXPECT_TRUE(contains(flipped(0), "not a Kiln plan (bad magic")) << flipped(0);
  EXPECT_TRUE(contains(flipped(8), "plan format version " + std::to_string(kPlanFormatVersion ^ 0x10) +
                                       " is not supported by this Kiln (supports " + std::to_string(kPlanFormatVersion) + ")"))
      << flipped(8);
  EXPECT_TRUE(contains(flipped(12), "header size field is")) << flipped(12);
  EXPECT_TRUE(contains(flipped(h.header_size + 20), "plan is corrupted: checksum mismatch"));
  EXPECT_TRUE(contains(flipped(plan.size() - 1), "plan is corrupted: checksum mismatch"));
  EXPECT_TRUE(contains(flipped(kTargetOffset + 4), "checksum mismatch"));  // the target's first character
}

TEST(PlanCorruption, RandomGarbageIsRefused) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> b(rng() % 4096);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (iter % 2 && b.size() >= 8) std::memcpy(b.data(), "KILNPLAN", 8);  // get past the magic
    if (iter % 4 == 1 && b.size() >= 12) {                                // ... and the format version
      uint32_t v = kPlanFormatVersion;
      std::memcpy(b.data() + 8, &v, 4);
    }
    EXPECT_FALSE(read_error(b).empty());
  }
}

// Behind the checksum: mutate a valid plan at random, seal it again and read it. The reader must
// either accept it (a changed number or name) or throw a kiln::Error; never crash or read out of bounds.
TEST(PlanCorruption, ResealedMutationsNeverCrash) {
  std::vector<uint8_t> plan = small_plan();
  PlanHeader h = read_plan_header(plan.data(), plan.size());
  std::mt19937_64 rng(2024);
  int refused = 0, accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> b = plan;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t i = h.header_size + rng() % (b.size() - h.header_size);
      switch (rng() % 3) {
        case 0: b[i] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: b[i] = static_cast<uint8_t>(rng()); break;
        default: b[i] = (rng() % 2) ? 0xFF : 0x00; break;
      }
    }
    reseal(b);
    try {
      EngineData e = read_plan(b.data(), b.size());
      ++accepted;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 1000);
  EXPECT_GT(accepted, 100);
}

TEST(PlanCorruption, WrongMagic) {
  std::vector<uint8_t> plan = small_plan();
  plan[4] = 'X';
  EXPECT_EQ(read_error(plan),
            "not a Kiln plan (bad magic: file starts with 4b 49 4c 4e 58 4c 41 4e, expected \"KILNPLAN\")");
  EXPECT_EQ(read_error({'K', 'I', 'L', 'N'}), "plan is truncated: needed 8 bytes for the magic at offset 0, only 4 left");
  EXPECT_EQ(read_error({'K', 'I', 'X'}), "not a Kiln plan (bad magic: file starts with 4b 49 58, expected \"KILNPLAN\")");
}

TEST(PlanCorruption, ForeignFiles) {
  std::vector<std::vector<uint8_t>> files = {
      {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0},               // ELF
      {0x08, 0x07, 0x12, 0x07, 'p', 'y', 't', 'o', 'r', 'c', 'h', 0x1a, 0x03, '2', '.', '1'},  // ONNX ModelProto
      {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13},                              // PNG
      {'P', 'K', 3, 4, 20, 0, 0, 0, 8, 0},                                                     // zip / .pt
      {'f', 't', 'r', 't', 0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde},                                // TensorRT-like
      {'{', '"', 'n', 'a', 'm', 'e', '"', ':', ' ', '1', '}', '\n'},                           // text
  };
  for (auto& f : files) EXPECT_TRUE(contains(read_error(f), "not a Kiln plan (bad magic: file starts with ")) << read_error(f);
  EXPECT_EQ(read_error(files[0]),
            "not a Kiln plan (bad magic: file starts with 7f 45 4c 46 02 01 01 00, expected \"KILNPLAN\")");
}

TEST(PlanCorruption, OtherFormatVersions) {
  std::vector<uint8_t> plan = small_plan();
  for (uint32_t v : {0u, kPlanFormatVersion - 1, kPlanFormatVersion + 1, 7u, 0xFFFFFFFFu}) {
    std::vector<uint8_t> b = plan;
    std::memcpy(b.data() + kFormatVersionOffset, &v, 4);
    reseal(b);
    std::string msg = read_error(b);
    EXPECT_TRUE(contains(msg, "plan format version " + std::to_string(v) + " is not supported by this Kiln (supports " +
                                  std::to_string(kPlanFormatVersion) + ")"))
        << msg;
    EXPECT_TRUE(contains(msg, v > kPlanFormatVersion ? "a newer Kiln" : "an older Kiln")) << msg;
  }
  EXPECT_THROW(read_plan_header(plan.data(), 11), Error);
}

TEST(PlanCorruption, OtherKilnVersions) {
  const std::string mine = KILN_VERSION;
  EngineData e = make_test_engine();
  e.kiln_version = "99.3.1";
  std::vector<uint8_t> b = write_plan(e);
  EXPECT_EQ(read_error(b), "plan was built by Kiln 99.3.1, this is Kiln " + mine +
                               ": plans are only compatible within one major.minor version, rebuild the engine");
  // Another patch release of this major.minor is accepted.
  e = make_test_engine();
  e.kiln_version = mine.substr(0, mine.rfind('.')) + ".999";
  b = write_plan(e);
  EXPECT_EQ(read_plan(b.data(), b.size()).kiln_version, e.kiln_version);
  e = make_test_engine();
  e.kiln_version = "garbage";
  b = write_plan(e);
  EXPECT_TRUE(contains(read_error(b), "plan was built by Kiln garbage, this is Kiln " + mine));
}

TEST(PlanCorruption, TargetMismatch) {
  EngineData e = make_test_engine();
  e.target = "cuda:sm_80";
  std::vector<uint8_t> b = write_plan(e);
  EXPECT_EQ(read_error(b, "cuda:sm_90"), "plan was built for cuda:sm_80, this device is cuda:sm_90");
  EXPECT_EQ(read_error(b, "cpu"), "plan was built for cuda:sm_80, this device is cpu");
  EXPECT_NO_THROW(read_plan(b.data(), b.size(), "cuda:sm_80"));
  EXPECT_NO_THROW(read_plan(b.data(), b.size(), "cuda"));
  EXPECT_NO_THROW(read_plan(b.data(), b.size()));
  std::vector<uint8_t> c = small_plan();
  EXPECT_EQ(read_error(c, "cuda:sm_90"), "plan was built for cpu, this device is cuda:sm_90");
}

// --- Hand-assembled plans: each breaks one rule behind the checksum. -------------------------------

std::vector<uint8_t> meta_section(int32_t num_profiles = 1) {
  ByteWriter w;
  w.str("m");
  w.i32(num_profiles);
  w.u64(0);
  w.u64(0);
  w.u64(0);
  w.str("");  // target_libraries
  w.str("");  // tactics
  return w.take();
}

std::vector<uint8_t> empty_io() {
  ByteWriter w;
  w.u32(0);
  return w.take();
}

// WGTS content for a plan whose WGTS section header ends at file offset `at`: padding, then `blob`.
std::vector<uint8_t> weights_section(size_t at, const std::vector<uint8_t>& blob = {}) {
  std::vector<uint8_t> c(align_up(at, 64) - at, 0);
  c.insert(c.end(), blob.begin(), blob.end());
  return c;
}

std::vector<uint8_t> plan_with_graph(const std::vector<uint8_t>& graph, const std::vector<uint8_t>& blob = {}) {
  auto meta = meta_section();
  auto io = empty_io();
  size_t hs = plan_header_size(3, std::string(KILN_VERSION).size());
  size_t wgts_content_at = hs + 16 * 4 + meta.size() + io.size() + graph.size();
  return assemble({{kSectionMeta, meta},
                   {kSectionIO, io},
                   {kSectionGraph, graph},
                   {kSectionWeights, weights_section(wgts_content_at, blob)}});
}

// A graph: one input "x" (value 0); node "n" (PlanTestOp) reading `node_inputs`, writing `node_outputs`,
// with extra values and attributes supplied raw.
struct GraphSpec {
  uint32_t num_values = 2;
  int32_t value_dtype = 0;
  std::vector<uint32_t> inputs = {0};
  std::vector<uint32_t> outputs = {1};
  std::string op = "PlanTestOp";
  std::vector<uint32_t> node_inputs = {0, kNoValue};
  std::vector<uint32_t> node_outputs = {1};
  uint32_t num_attrs = 0;
  std::vector<uint8_t> attrs;  // raw encoded attributes
};

std::vector<uint8_t> graph_section(const GraphSpec& s) {
  ByteWriter w;
  w.u32(s.num_values);
  for (uint32_t i = 0; i < s.num_values && i < 16; ++i) {
    std::string name = "v";  // (not "v" + to_string: GCC 12 warns falsely about it)
    name += std::to_string(i);
    w.str(name);
    w.i32(i == 0 ? s.value_dtype : 0);
    w.dims({1, 2});
  }
  w.u32(static_cast<uint32_t>(s.inputs.size()));
  for (auto i : s.inputs) w.u32(i);
  w.u32(static_cast<uint32_t>(s.outputs.size()));
  for (auto i : s.outputs) w.u32(i);
  w.u32(1);
  w.str("n");
  w.str(s.op);
  w.u32(static_cast<uint32_t>(s.node_inputs.size()));
  for (auto i : s.node_inputs) w.u32(i);
  w.u32(static_cast<uint32_t>(s.node_outputs.size()));
  for (auto i : s.node_outputs) w.u32(i);
  w.u8(0);                                                                    // no precision
  w.u32(static_cast<uint32_t>(s.node_outputs.size()));                        // output types
  for (size_t i = 0; i < s.node_outputs.size(); ++i) w.u8(0);
  w.u32(s.num_attrs);
  w.raw(s.attrs.data(), s.attrs.size());
  return w.take();
}

std::vector<uint8_t> tensor_attr(const std::string& key, int32_t dtype, Dims shape, uint64_t offset, uint64_t nbytes) {
  ByteWriter w;
  w.str(key);
  w.u8(kAttrTensor);
  w.u8(1);
  w.i32(dtype);
  w.dims(shape);
  w.u64(offset);
  w.u64(nbytes);
  return w.take();
}

TEST(PlanMalformed, HandAssembledValidPlanIsAccepted) {
  EngineData e = read_plan(plan_with_graph(graph_section({})).data(), plan_with_graph(graph_section({})).size());
  ASSERT_EQ(e.graph->num_nodes(), 1u);
  EXPECT_EQ(e.graph->node(0)->inputs[1], nullptr);
  GraphSpec s;
  s.num_attrs = 1;
  s.attrs = tensor_attr("w", 0, {2, 3}, 64, 24);
  std::vector<uint8_t> blob(128, 1);
  auto b = plan_with_graph(graph_section(s), blob);
  e = read_plan(b.data(), b.size());
  EXPECT_EQ(e.graph->node(0)->attrs.tensor("w").nbytes(), 24u);
}

TEST(PlanMalformed, BadReferencesAndStructure) {
  auto err = [](const GraphSpec& s) { return read_error(plan_with_graph(graph_section(s))); };
  GraphSpec s;
  s.node_inputs = {0, 5};
  EXPECT_TRUE(contains(err(s), "a layer input refers to tensor #5, the graph has 2")) << err(s);
  s = {};
  s.outputs = {2};
  EXPECT_TRUE(contains(err(s), "a network output refers to tensor #2")) << err(s);
  s = {};
  s.node_outputs = {kNoValue};
  EXPECT_TRUE(contains(err(s), "a layer output refers to tensor #4294967295")) << err(s);
  s = {};
  s.node_outputs = {0};
  EXPECT_TRUE(contains(err(s), "tensor 'v0' is an output of layer 'n' but is also a network input")) << err(s);
  s = {};
  s.inputs = {0, 0};
  EXPECT_TRUE(contains(err(s), "tensor 'v0' is listed twice as a network input")) << err(s);
  s = {};
  s.node_outputs = {};
  EXPECT_TRUE(contains(err(s), "plan is invalid: tensor 'v1' is neither a network input nor produced by a layer"))
      << err(s);
  s = {};
  s.value_dtype = 33;
  EXPECT_TRUE(contains(err(s), "a tensor's data type is not a valid data type (33)")) << err(s);
  s = {};
  s.op = "NoSuchOp";
  EXPECT_TRUE(contains(err(s), "plan uses op 'NoSuchOp' (layer 'n')")) << err(s);
  s = {};
  s.op = "PlanTestConst";  // takes no inputs
  EXPECT_TRUE(contains(err(s), "layer 'n' (PlanTestConst) has 2 inputs, the op takes 0 to 0")) << err(s);
}

TEST(PlanMalformed, HugeCountsAreRefusedBeforeAllocating) {
  auto err = [](const GraphSpec& s) { return read_error(plan_with_graph(graph_section(s))); };
  GraphSpec s;
  s.num_values = 0xFFFFFFFFu;
  EXPECT_TRUE(contains(err(s), "the tensor count 4294967295 needs at least 51539607540 bytes")) << err(s);
  s = {};
  s.num_attrs = 0x40000000u;
  EXPECT_TRUE(contains(err(s), "a layer's attribute count 1073741824 needs at least")) << err(s);
  s = {};
  s.num_attrs = 1;
  ByteWriter w;
  w.str("list");
  w.u8(kAttrInts);
  w.u32(0x7FFFFFFF);
  s.attrs = w.take();
  EXPECT_TRUE(contains(err(s), "an integer list attribute's length 2147483647 needs at least")) << err(s);
  s.attrs = {0xFF, 0xFF, 0xFF, 0x7F, 'k', 'k', 'k', 'k', 'k'};  // a key 2 GiB long
  EXPECT_TRUE(contains(err(s), "needed 2147483647 bytes for an attribute name")) << err(s);
  s.attrs = tensor_attr("t", 0, {1LL << 40, 1LL << 40, 1LL << 40}, 0, 0);
  EXPECT_TRUE(contains(err(s), "impossibly large shape")) << err(s);
}

TEST(PlanMalformed, BadAttributes) {
  auto err = [](const GraphSpec& s, const std::vector<uint8_t>& blob = {}) {
    return read_error(plan_with_graph(graph_section(s), blob));
  };
  std::vector<uint8_t> blob(256, 7);
  GraphSpec s;
  s.num_attrs = 1;
  s.attrs = tensor_attr("t", 0, {2, 3}, 64, 20);
  EXPECT_TRUE(contains(err(s, blob), "tensor attribute 't' of layer 'n' stores 20 bytes, its shape [2, 3] of float32 needs 24"))
      << err(s, blob);
  s.attrs = tensor_attr("t", 0, {2, 3}, 32, 24);
  EXPECT_TRUE(contains(err(s, blob), "is at weights offset 32, not a multiple of 64")) << err(s, blob);
  s.attrs = tensor_attr("t", 0, {2, 3}, 256, 24);
  EXPECT_TRUE(contains(err(s, blob), "spans weights bytes 256..280, the weights hold 256")) << err(s, blob);
  s.attrs = tensor_attr("t", 0, {2, 3}, 0xFFFFFFFFFFFFFFC0ull, 24);
  EXPECT_TRUE(contains(err(s, blob), "the weights hold 256")) << err(s, blob);
  s.attrs = tensor_attr("t", 0, {-2, 3}, 0, 0);
  EXPECT_TRUE(contains(err(s, blob), "has a negative dimension in shape [-2, 3]")) << err(s, blob);
  s.attrs = tensor_attr("t", 99, {1}, 0, 4);
  EXPECT_TRUE(contains(err(s, blob), "a tensor's data type is not a valid data type (99)")) << err(s, blob);

  ByteWriter w;
  w.str("b");
  w.u8(kAttrInt);
  w.i64(1);
  w.str("a");  // out of order
  w.u8(kAttrInt);
  w.i64(2);
  s.num_attrs = 2;
  s.attrs = w.take();
  EXPECT_TRUE(contains(err(s), "attribute 'a' of layer 'n' is out of order or repeated")) << err(s);
  ByteWriter w2;
  w2.str("a");
  w2.u8(9);
  w2.zeros(8);
  s.num_attrs = 1;
  s.attrs = w2.take();
  EXPECT_TRUE(contains(err(s), "attribute 'a' of layer 'n' has unknown kind 9")) << err(s);
}

TEST(PlanMalformed, BadSections) {
  auto graph = graph_section({});
  size_t hs = plan_header_size(3, std::string(KILN_VERSION).size());
  auto meta = meta_section();
  auto io = empty_io();
  size_t wat = hs + 64 + meta.size() + io.size() + graph.size();
  auto wgts = weights_section(wat);

  std::string msg = read_error(assemble({{kSectionMeta, meta}, {kSectionGraph, graph}, {kSectionIO, io}}));
  EXPECT_TRUE(contains(msg, "plan is malformed in the payload: section 1 is 'GRPH', expected 'IOTB'")) << msg;
  msg = read_error(assemble({{kSectionMeta, meta}, {kSectionIO, io}, {kSectionGraph, graph}}));
  EXPECT_TRUE(contains(msg, "needed 4 bytes for a section tag")) << msg;
  msg = read_error(
      assemble({{kSectionMeta, meta}, {kSectionIO, io}, {kSectionGraph, graph}, {kSectionWeights, wgts}, {0x01020304, {}}}));
  EXPECT_TRUE(contains(msg, "the payload has 16 unread bytes at its end")) << msg;
  msg = read_error(assemble({{kSectionMeta, meta_section(-3)}, {kSectionIO, io}, {kSectionGraph, graph}, {kSectionWeights, wgts}}));
  EXPECT_TRUE(contains(msg, "section META: num_profiles is negative (-3)")) << msg;
  auto long_meta = meta;
  long_meta.push_back(0);
  msg = read_error(assemble({{kSectionMeta, long_meta}, {kSectionIO, io}, {kSectionGraph, graph},
                             {kSectionWeights, weights_section(wat + 1)}}));
  EXPECT_TRUE(contains(msg, "section META has 1 unread bytes at its end")) << msg;
  auto bad_pad = wgts;
  ASSERT_FALSE(bad_pad.empty());
  bad_pad[0] = 1;
  msg = read_error(assemble({{kSectionMeta, meta}, {kSectionIO, io}, {kSectionGraph, graph}, {kSectionWeights, bad_pad}}));
  EXPECT_TRUE(contains(msg, "the weights' alignment padding is not zero")) << msg;
  msg = read_error(assemble({{kSectionMeta, meta}, {kSectionIO, io}, {kSectionGraph, graph}, {kSectionWeights, {}}}));
  EXPECT_TRUE(contains(msg, "for the weights' alignment padding")) << msg;

  // A bad is_input flag and a bad dtype in the I/O table.
  ByteWriter w;
  w.u32(1);
  w.str("x");
  w.u8(2);
  w.zeros(16);
  auto bad_io = w.take();
  msg = read_error(assemble({{kSectionMeta, meta}, {kSectionIO, bad_io}, {kSectionGraph, graph}, {kSectionWeights, wgts}}));
  EXPECT_TRUE(contains(msg, "is_input flag must be 0 or 1, got 2")) << msg;
  // A reserved field that is not zero.
  std::vector<uint8_t> b = plan_with_graph(graph);
  b[hs + 4] = 1;
  reseal(b);
  EXPECT_TRUE(contains(read_error(b), "reserved field of 'META' is 1, expected 0")) << read_error(b);
  // A section size beyond the payload.
  b = plan_with_graph(graph);
  b[hs + 12] = 0x10;
  reseal(b);
  EXPECT_TRUE(contains(read_error(b), "section META announces")) << read_error(b);
}

TEST(PlanMalformed, HeaderFields) {
  std::vector<uint8_t> plan = small_plan();
  // A target string longer than allowed.
  std::vector<uint8_t> b = plan;
  uint32_t huge = 1000;
  std::memcpy(b.data() + kTargetOffset, &huge, 4);
  EXPECT_TRUE(contains(read_error(b), "the target name is 1000 bytes long, at most 256 allowed")) << read_error(b);
  // The payload size field claims more than there is.
  b = plan;
  PlanHeader h = read_plan_header(plan.data(), plan.size());
  size_t psize_at = plan_checksum_offset(h.target.size(), h.kiln_version.size()) - 8;
  uint64_t big = 1ull << 60;
  std::memcpy(b.data() + psize_at, &big, 8);
  EXPECT_TRUE(contains(read_error(b), "plan is truncated: the header announces 1152921504606846976 bytes of payload"))
      << read_error(b);
}

}  // namespace
}  // namespace kiln::plan
