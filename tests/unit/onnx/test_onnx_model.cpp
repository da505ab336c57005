// ONNX decoding over hand-encoded models: the schema mapping, protobuf semantics (packed/unpacked,
// unknown fields, merging), hostile input (truncation at every byte, random mutations, deep
// nesting), tensor bytes from every source, external data and the file loader.
#include "onnx/onnx_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <list>
#include <set>

#include "proto_writer.h"

namespace kiln::onnx {
namespace {

namespace fs = std::filesystem;
using test::ProtoWriter;

// ---- Builders for the pieces of a model ----

ProtoWriter dim_value(int64_t v) { return std::move(ProtoWriter().int64(1, v)); }
ProtoWriter dim_param(std::string_view p) { return std::move(ProtoWriter().bytes(2, p)); }

ProtoWriter tensor_type(int32_t elem, const std::vector<ProtoWriter>& dims) {
  ProtoWriter shape;
  for (const auto& d : dims) shape.message(1, d);
  ProtoWriter tt;
  tt.int32(1, elem).message(2, shape);
  return std::move(ProtoWriter().message(1, tt));
}

ProtoWriter value_info(std::string_view name, const ProtoWriter& type) {
  return std::move(ProtoWriter().bytes(1, name).message(2, type));
}

std::string float_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// A small model touching every decoded message type, with unknown fields at several levels.
std::string sample_model() {
  std::vector<float> w(18);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i);
  ProtoWriter w_init, b_init, shape_init;
  w_init.packed_varints<int64_t>(1, {2, 1, 3, 3}).int32(2, 1).bytes(8, "W").bytes(9, float_bytes(w));
  b_init.int64(1, 2).int32(2, 1).packed_floats(4, {0.5f, -1.0f}).bytes(8, "B").varint(1000, 5);
  shape_init.int64(1, 2).int32(2, 7).int64(7, -1).int64(7, 25).bytes(8, "shape");

  ProtoWriter conv;
  conv.bytes(1, "X").bytes(1, "W").bytes(1, "B").bytes(2, "Y").bytes(3, "conv0").bytes(4, "Conv")
      .message(5, ProtoWriter().bytes(1, "kernel_shape").int32(20, 7).packed_varints<int64_t>(8, {3, 3}))
      .message(5, ProtoWriter().bytes(1, "strides").int32(20, 7).int64(8, 1).int64(8, 2))
      .message(5, ProtoWriter().bytes(1, "alpha").int32(20, 1).float32(2, 0.5f))
      .message(5, ProtoWriter().bytes(1, "auto_pad").int32(20, 3).bytes(4, "NOTSET"))
      .bytes(6, "a conv")
      .fixed32(50, 1);  // unknown
  ProtoWriter relu;
  relu.bytes(1, "Y").bytes(2, "Z").bytes(4, "Relu").bytes(7, "");
  ProtoWriter then_graph;
  then_graph.message(1, ProtoWriter().bytes(1, "Z").bytes(2, "T").bytes(4, "Identity"))
      .bytes(2, "then")
      .message(12, value_info("T", tensor_type(1, {})));
  ProtoWriter iff;
  iff.bytes(1, "cond").bytes(2, "Out").bytes(4, "If")
      .message(5, ProtoWriter().bytes(1, "then_branch").int32(20, 5).message(6, then_graph));
  ProtoWriter constant;
  constant.bytes(2, "C").bytes(4, "Constant").bytes(7, "ai.onnx")
      .message(5, ProtoWriter().bytes(1, "value").int32(20, 4).message(
                      5, ProtoWriter().int64(1, 3).int32(2, 1).packed_floats(4, {1, 2, 3})));

  ProtoWriter graph;
  graph.message(1, conv).message(1, relu).message(1, iff).message(1, constant).bytes(2, "main")
      .message(5, w_init).message(5, b_init).message(5, shape_init).bytes(10, "graph doc")
      .message(11, value_info("X", tensor_type(1, {dim_param("N"), dim_value(1), dim_value(5), dim_value(5)})))
      .message(11, value_info("cond", tensor_type(9, {})))
      .message(12, value_info("Out", ProtoWriter().message(1, ProtoWriter().int32(1, 1))))
      .message(13, value_info("Y", ProtoWriter().message(4, ProtoWriter().message(1, tensor_type(1, {})))))
      .message(14, ProtoWriter().bytes(1, "Y"))  // quantization_annotation: skipped
      .fixed64(77, 1);                           // unknown
  ProtoWriter model;
  model.int64(1, 8)
      .message(8, ProtoWriter().bytes(1, "").int64(2, 17))
      .message(8, ProtoWriter().bytes(1, "com.microsoft").int64(2, 1))
      .bytes(2, "kiln-test").bytes(3, "0.1").bytes(4, "ai.kiln").int64(5, 3).bytes(6, "model doc")
      .message(7, graph)
      .message(14, ProtoWriter().bytes(1, "k").bytes(2, "v"))  // metadata: skipped
      .varint(99, 1);                                          // unknown
  return model.str();
}

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

const AttributeProto* find_attr(const NodeProto& n, std::string_view name) {
  for (const auto& a : n.attribute)
    if (a.name == name) return &a;
  return nullptr;
}

// ---- Decoding ----

TEST(OnnxModel, ParsesSampleModel) {
  const std::string bytes = sample_model();
  const Model m = parse_model(bytes);
  EXPECT_EQ(m.ir_version, 8);
  ASSERT_EQ(m.opset_import.size(), 2u);
  EXPECT_EQ(m.opset_import[0].domain, "");
  EXPECT_EQ(m.opset_import[0].version, 17);
  EXPECT_EQ(m.opset_import[1].domain, "com.microsoft");
  EXPECT_EQ(m.producer_name, "kiln-test");
  EXPECT_EQ(m.producer_version, "0.1");
  EXPECT_EQ(m.domain, "ai.kiln");
  EXPECT_EQ(m.model_version, 3);
  EXPECT_EQ(m.doc_string, "model doc");
  ASSERT_TRUE(m.has_graph);

  const GraphProto& g = m.graph;
  EXPECT_EQ(g.name, "main");
  EXPECT_EQ(g.doc_string, "graph doc");
  // Zero-copy: names point into the input buffer.
  EXPECT_GE(g.name.data(), bytes.data());
  EXPECT_LT(g.name.data(), bytes.data() + bytes.size());

  ASSERT_EQ(g.node.size(), 4u);
  const NodeProto& conv = g.node[0];
  EXPECT_EQ(conv.op_type, "Conv");
  EXPECT_EQ(conv.name, "conv0");
  EXPECT_EQ(conv.doc_string, "a conv");
  EXPECT_EQ(conv.input, (std::vector<std::string_view>{"X", "W", "B"}));
  EXPECT_EQ(conv.output, (std::vector<std::string_view>{"Y"}));
  ASSERT_EQ(conv.attribute.size(), 4u);
  EXPECT_EQ(find_attr(conv, "kernel_shape")->type, AttributeType::kInts);
  EXPECT_EQ(find_attr(conv, "kernel_shape")->ints, (std::vector<int64_t>{3, 3}));  // packed
  EXPECT_EQ(find_attr(conv, "strides")->ints, (std::vector<int64_t>{1, 2}));       // unpacked
  EXPECT_EQ(find_attr(conv, "alpha")->type, AttributeType::kFloat);
  EXPECT_EQ(find_attr(conv, "alpha")->f, 0.5f);
  EXPECT_EQ(find_attr(conv, "auto_pad")->s, "NOTSET");

  EXPECT_EQ(g.node[1].op_type, "Relu");
  EXPECT_EQ(g.node[1].domain, "");

  const AttributeProto* then_branch = find_attr(g.node[2], "then_branch");
  ASSERT_NE(then_branch, nullptr);
  EXPECT_EQ(then_branch->type, AttributeType::kGraph);
  ASSERT_TRUE(then_branch->g);
  EXPECT_EQ(then_branch->g->name, "then");
  ASSERT_EQ(then_branch->g->node.size(), 1u);
  EXPECT_EQ(then_branch->g->node[0].op_type, "Identity");
  ASSERT_EQ(then_branch->g->output.size(), 1u);
  EXPECT_EQ(then_branch->g->output[0].name, "T");

  const AttributeProto* value = find_attr(g.node[3], "value");
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(g.node[3].domain, "ai.onnx");
  ASSERT_TRUE(value->t);
  EXPECT_EQ(value->t->float_data, (std::vector<float>{1, 2, 3}));

  ASSERT_EQ(g.initializer.size(), 3u);
  const TensorProto& w = g.initializer[0];
  EXPECT_EQ(w.name, "W");
  EXPECT_EQ(w.dims, (std::vector<int64_t>{2, 1, 3, 3}));
  EXPECT_EQ(w.data_type, 1);
  EXPECT_TRUE(w.has_raw_data);
  EXPECT_EQ(w.raw_data.size(), 72u);
  EXPECT_EQ(g.initializer[1].float_data, (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(g.initializer[2].int64_data, (std::vector<int64_t>{-1, 25}));

  ASSERT_EQ(g.input.size(), 2u);
  const ValueInfoProto& x = g.input[0];
  EXPECT_EQ(x.name, "X");
  ASSERT_TRUE(x.has_type);
  EXPECT_TRUE(x.type.is_tensor());
  EXPECT_EQ(x.type.elem_type, 1);
  ASSERT_TRUE(x.type.has_shape);
  ASSERT_EQ(x.type.shape.dim.size(), 4u);
  EXPECT_EQ(x.type.shape.dim[0].kind, TensorShapeProto::Dimension::kParam);
  EXPECT_EQ(x.type.shape.dim[0].param, "N");
  EXPECT_EQ(x.type.shape.dim[3].kind, TensorShapeProto::Dimension::kValue);
  EXPECT_EQ(x.type.shape.dim[3].value, 5);
  // A present but empty shape is a scalar; an absent shape is unknown rank.
  EXPECT_TRUE(g.input[1].type.has_shape);
  EXPECT_TRUE(g.input[1].type.shape.dim.empty());
  ASSERT_EQ(g.output.size(), 1u);
  EXPECT_FALSE(g.output[0].type.has_shape);
  ASSERT_EQ(g.value_info.size(), 1u);
  EXPECT_EQ(g.value_info[0].type.kind, TypeProto::kSequence);
}

TEST(OnnxModel, EmptyInputIsAnEmptyModel) {
  const Model m = parse_model("");
  EXPECT_FALSE(m.has_graph);
  EXPECT_EQ(m.ir_version, 0);
}

TEST(OnnxModel, AttributesOfEveryKind) {
  ProtoWriter sub;
  sub.bytes(2, "body");
  ProtoWriter node;
  node.bytes(4, "Op")
      .message(5, ProtoWriter().bytes(1, "i").int32(20, 2).int64(3, -9))
      .message(5, ProtoWriter().bytes(1, "floats").int32(20, 6).float32(7, 1).packed_floats(7, {2, 3}))
      .message(5, ProtoWriter().bytes(1, "ints").int32(20, 7).packed_varints<int64_t>(8, {-1, 1 << 20}).int64(8, 4))
      .message(5, ProtoWriter().bytes(1, "strings").int32(20, 8).bytes(9, "a").bytes(9, "bc"))
      .message(5, ProtoWriter().bytes(1, "tensors").int32(20, 9).message(10, ProtoWriter().bytes(8, "t0")).message(10, ProtoWriter().bytes(8, "t1")))
      .message(5, ProtoWriter().bytes(1, "graphs").int32(20, 10).message(11, sub).message(11, sub))
      .message(5, ProtoWriter().bytes(1, "ref").int32(20, 2).bytes(21, "parent_attr").bytes(13, "doc"))
      .message(5, ProtoWriter().bytes(1, "sparse").int32(20, 11).bytes(22, "\x0a\x00"))
      .message(5, ProtoWriter().bytes(1, "untyped_f").float32(2, 2.5f))   // IR v1: no type field
      .message(5, ProtoWriter().bytes(1, "untyped_g").message(6, sub))
      .message(5, ProtoWriter().bytes(1, "untyped_ints").int64(8, 1));
  const std::string bytes = ProtoWriter().message(7, ProtoWriter().message(1, node)).str();
  const Model m = parse_model(bytes);
  const NodeProto& n = m.graph.node.at(0);
  EXPECT_EQ(find_attr(n, "i")->i, -9);
  EXPECT_EQ(find_attr(n, "floats")->floats, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(find_attr(n, "ints")->ints, (std::vector<int64_t>{-1, 1 << 20, 4}));
  EXPECT_EQ(find_attr(n, "strings")->strings, (std::vector<std::string_view>{"a", "bc"}));
  ASSERT_EQ(find_attr(n, "tensors")->tensors.size(), 2u);
  EXPECT_EQ(find_attr(n, "tensors")->tensors[1].name, "t1");
  ASSERT_EQ(find_attr(n, "graphs")->graphs.size(), 2u);
  EXPECT_EQ(find_attr(n, "graphs")->graphs[1].name, "body");
  EXPECT_EQ(find_attr(n, "ref")->ref_attr_name, "parent_attr");
  EXPECT_EQ(find_attr(n, "ref")->doc_string, "doc");
  EXPECT_EQ(find_attr(n, "sparse")->type, AttributeType::kSparseTensor);
  EXPECT_EQ(find_attr(n, "untyped_f")->type, AttributeType::kFloat);
  EXPECT_EQ(find_attr(n, "untyped_f")->f, 2.5f);
  EXPECT_EQ(find_attr(n, "untyped_g")->type, AttributeType::kGraph);
  EXPECT_EQ(find_attr(n, "untyped_ints")->type, AttributeType::kInts);

  // Structs stay copyable: subgraphs are shared.
  const Model copy = m;
  EXPECT_EQ(find_attr(copy.graph.node[0], "untyped_g")->g->name, "body");
}

TEST(OnnxModel, RepeatedSingularMessagesMerge) {
  // Protobuf merges a singular message field that occurs twice; scalars: the last one wins.
  const std::string bytes = ProtoWriter()
                                .message(7, ProtoWriter().bytes(2, "first").message(1, ProtoWriter().bytes(4, "A")))
                                .message(7, ProtoWriter().bytes(2, "second").message(1, ProtoWriter().bytes(4, "B")))
                                .int64(1, 3)
                                .int64(1, 9)
                                .str();
  const Model m = parse_model(bytes);
  EXPECT_EQ(m.ir_version, 9);
  EXPECT_EQ(m.graph.name, "second");
  ASSERT_EQ(m.graph.node.size(), 2u);
  EXPECT_EQ(m.graph.node[1].op_type, "B");
}

TEST(OnnxModel, TypeProtoKinds) {
  std::list<std::string> buffers;  // the parsed views point into these
  auto type_of = [&](const ProtoWriter& type) {
    buffers.push_back(ProtoWriter().message(7, ProtoWriter().message(11, value_info("v", type))).str());
    return parse_model(buffers.back()).graph.input.at(0).type;
  };
  EXPECT_EQ(type_of(ProtoWriter().message(5, ProtoWriter().int32(1, 8))).kind, TypeProto::kMap);
  EXPECT_EQ(type_of(ProtoWriter().message(9, ProtoWriter())).kind, TypeProto::kOptional);
  EXPECT_EQ(type_of(ProtoWriter().message(7, ProtoWriter())).kind, TypeProto::kOpaque);
  const TypeProto sparse = type_of(ProtoWriter().message(8, ProtoWriter().int32(1, 1).message(2, ProtoWriter().message(1, dim_value(4)))));
  EXPECT_EQ(sparse.kind, TypeProto::kSparseTensor);
  EXPECT_EQ(sparse.elem_type, 1);
  EXPECT_EQ(sparse.shape.dim.at(0).value, 4);
  // Oneof: a later member replaces an earlier one; denotation survives.
  ProtoWriter switched = tensor_type(1, {dim_value(2)});
  switched.bytes(6, "IMAGE").message(4, ProtoWriter());
  const TypeProto t = type_of(switched);
  EXPECT_EQ(t.kind, TypeProto::kSequence);
  EXPECT_EQ(t.elem_type, 0);
  EXPECT_FALSE(t.has_shape);
  EXPECT_EQ(t.denotation, "IMAGE");
  // Dimension oneof: the last of dim_value / dim_param wins.
  const TypeProto d = type_of(tensor_type(1, {std::move(ProtoWriter().int64(1, 3).bytes(2, "S").bytes(3, "BATCH"))}));
  EXPECT_EQ(d.shape.dim.at(0).kind, TensorShapeProto::Dimension::kParam);
  EXPECT_EQ(d.shape.dim.at(0).param, "S");
  EXPECT_EQ(d.shape.dim.at(0).denotation, "BATCH");
  // A dimension with neither set is unknown.
  EXPECT_EQ(type_of(tensor_type(1, {ProtoWriter()})).shape.dim.at(0).kind, TensorShapeProto::Dimension::kUnknown);
}

TEST(OnnxModel, TensorFieldsAllDecoded) {
  ProtoWriter t;
  t.int64(1, 2).int32(2, 13).message(3, ProtoWriter().int64(1, 4).int64(2, 8)).int32(5, -3)
      .bytes(6, "s0").bytes(6, "s1").bytes(8, "name").bytes(12, "doc").packed_doubles(10, {1.5})
      .packed_varints<uint64_t>(11, {~0ull, 7})
      .message(13, ProtoWriter().bytes(1, "location").bytes(2, "w.bin"))
      .int32(14, 1)
      .bytes(9, "");
  const TensorProto p = parse_tensor(t.str());
  EXPECT_EQ(p.dims, (std::vector<int64_t>{2}));
  EXPECT_EQ(p.data_type, 13);
  EXPECT_TRUE(p.has_segment);
  EXPECT_EQ(p.segment_begin, 4);
  EXPECT_EQ(p.segment_end, 8);
  EXPECT_EQ(p.int32_data, (std::vector<int32_t>{-3}));
  EXPECT_EQ(p.string_data, (std::vector<std::string_view>{"s0", "s1"}));
  EXPECT_EQ(p.name, "name");
  EXPECT_EQ(p.doc_string, "doc");
  EXPECT_EQ(p.double_data, (std::vector<double>{1.5}));
  EXPECT_EQ(p.uint64_data, (std::vector<uint64_t>{~0ull, 7}));
  ASSERT_EQ(p.external_data.size(), 1u);
  EXPECT_EQ(p.external_data[0].key, "location");
  EXPECT_EQ(p.external_data[0].value, "w.bin");
  EXPECT_TRUE(p.is_external());
  EXPECT_TRUE(p.has_raw_data);
  EXPECT_TRUE(p.raw_data.empty());
}

// ---- Errors ----

TEST(OnnxModel, SparseInitializerIsRejected) {
  const std::string bytes = ProtoWriter().message(7, ProtoWriter().bytes(2, "g").message(15, ProtoWriter())).str();
  const std::string msg = error_of([&] { parse_model(bytes); });
  EXPECT_NE(msg.find("GraphProto.sparse_initializer: sparse initializers are not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(in ModelProto.graph > GraphProto)"), std::string::npos) << msg;
}

TEST(OnnxModel, WrongWireTypeNamesFieldAndPath) {
  const std::string bytes = ProtoWriter().message(7, ProtoWriter().message(1, ProtoWriter().varint(3, 5))).str();
  const std::string msg = error_of([&] { parse_model(bytes); });
  EXPECT_EQ(msg, "NodeProto.name: expected wire type LEN, got VARINT at offset 4 "
                 "(in ModelProto.graph > GraphProto.node > NodeProto)");
}

TEST(OnnxModel, OversizeRawDataLength) {
  ProtoWriter t;
  t.bytes(8, "w").tag(9, 2).raw(ProtoWriter::varint_bytes(4000)).raw(std::string(12, 'x'));
  const std::string bytes = ProtoWriter().message(7, ProtoWriter().message(5, t)).str();
  const std::string msg = error_of([&] { parse_model(bytes); });
  EXPECT_NE(msg.find("TensorProto.raw_data: length 4000 exceeds remaining 12 bytes at offset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GraphProto.initializer > TensorProto"), std::string::npos) << msg;
}

// Top-level field boundaries of a serialized message: the only prefixes that are valid messages.
std::set<size_t> top_level_boundaries(std::string_view bytes) {
  static constexpr FieldName kNone[] = {{1, "x"}};
  const MessageInfo info{"Top", kNone};
  WireReader r(bytes, info);
  std::set<size_t> out{0, bytes.size()};
  for (Field f; r.next(f);) out.insert(f.offset);
  return out;
}

TEST(OnnxModel, TruncationAtEveryByteFailsCleanly) {
  const std::string bytes = sample_model();
  const auto boundaries = top_level_boundaries(bytes);
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::string prefix = bytes.substr(0, len);  // a copy, so ASan catches any overread
    if (boundaries.count(len)) {
      EXPECT_NO_THROW(parse_model(prefix)) << "prefix " << len;
    } else {
      EXPECT_THROW(parse_model(prefix), ParseError) << "prefix " << len;
    }
  }
}

TEST(OnnxModel, TruncatedGraphPayloadAtEveryByteNeverCrashes) {
  // Cut the graph's payload but keep its length prefix consistent, so the damage is found by the
  // nested decoders rather than by the outermost length check.
  const std::string bytes = sample_model();
  const Model whole = parse_model(bytes);
  std::string_view graph_payload;
  {
    static constexpr FieldName kNone[] = {{7, "graph"}};
    const MessageInfo info{"Top", kNone};
    WireReader r(bytes, info);
    for (Field f; r.next(f);)
      if (f.number == 7) graph_payload = f.bytes;
  }
  ASSERT_FALSE(graph_payload.empty());
  size_t failures = 0;
  for (size_t len = 0; len < graph_payload.size(); ++len) {
    const std::string cut = ProtoWriter().bytes(7, graph_payload.substr(0, len)).str();
    try {
      parse_model(cut);
    } catch (const ParseError&) {
      ++failures;
    }
  }
  EXPECT_GT(failures, graph_payload.size() / 2);
}

TEST(OnnxModel, RandomMutationsParseOrThrowParseError) {
  const std::string original = sample_model();
  std::mt19937 rng(20240601);
  const fs::path empty_dir = fs::temp_directory_path() / ("kiln_onnx_mut_" + std::to_string(::getpid()));
  fs::create_directories(empty_dir);
  size_t parsed = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes = original;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 5) {
        case 0: bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << (rng() % 8))); break;
        case 1: bytes[pos] = static_cast<char>(rng()); break;
        case 2: bytes[pos] = '\xff'; break;
        case 3: bytes.insert(pos, 1, static_cast<char>(rng())); break;
        case 4: bytes.erase(pos, 1); break;
      }
    }
    try {
      const Model m = parse_model(bytes);
      ++parsed;
      // Whatever parsed must also be safe to pull tensor bytes from.
      ExternalDataCache cache;
      auto touch = [&](const TensorProto& t) {
        try {
          (void)tensor_bytes(t, empty_dir.string(), cache);
        } catch (const ParseError&) {
        }
      };
      for (const auto& t : m.graph.initializer) touch(t);
      for (const auto& n : m.graph.node)
        for (const auto& a : n.attribute)
          if (a.t) touch(*a.t);
    } catch (const ParseError&) {
      ++rejected;
    }
  }
  fs::remove_all(empty_dir);
  EXPECT_EQ(parsed + rejected, 2000u);
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(parsed, 0u);
}

// Nested If/Loop-style subgraphs: graph > node > attribute > graph > ...
std::string nested_subgraphs(int levels) {
  ProtoWriter g;
  g.bytes(2, "leaf");
  for (int i = 0; i < levels; ++i) {
    ProtoWriter attr;
    attr.bytes(1, "body").int32(20, 5).message(6, g);
    ProtoWriter node;
    node.bytes(4, "Loop").message(5, attr);
    g = ProtoWriter();
    g.message(1, node);
  }
  return ProtoWriter().message(7, g).str();
}

TEST(OnnxModel, NestingDepthLimit) {
  // Model is depth 0, its graph 1, and each subgraph level adds 3: 1 + 3 * 21 = 64.
  EXPECT_NO_THROW(parse_model(nested_subgraphs(21)));
  const std::string msg = error_of([] { parse_model(nested_subgraphs(22)); });
  EXPECT_NE(msg.find("nested deeper than 64 levels"), std::string::npos) << msg.substr(0, 300);
}

TEST(OnnxModel, HostileDeepNestingDoesNotOverflowTheStack) {
  // 100000 levels of graph > node > attribute > graph ..., built inside-out by computing each
  // wrapper's length first (building it by repeated wrapping would be quadratic).
  const std::vector<uint32_t> cycle = {1, 5, 6};  // node, attribute, g
  const size_t levels = 300000;
  std::vector<std::string> prefixes(levels);
  uint64_t inner = 0;
  for (size_t i = levels; i-- > 0;) {
    const uint32_t field = cycle[i % cycle.size()];
    prefixes[i] = ProtoWriter().tag(field, 2).str() + ProtoWriter::varint_bytes(inner);
    inner += prefixes[i].size();
  }
  std::string graph;
  graph.reserve(inner);
  for (const auto& p : prefixes) graph += p;
  const std::string bytes = ProtoWriter().bytes(7, graph).str();
  EXPECT_THROW(parse_model(bytes), ParseError);
}

// ---- Data types ----

TEST(OnnxModel, DataTypeHelpers) {
  EXPECT_EQ(data_type_name(1), "FLOAT");
  EXPECT_EQ(data_type_name(16), "BFLOAT16");
  EXPECT_EQ(data_type_name(26), "INT2");
  EXPECT_EQ(data_type_name(27), "UNKNOWN");
  EXPECT_EQ(data_type_name(-1), "UNKNOWN");
  EXPECT_EQ(data_type_size(1), 4u);
  EXPECT_EQ(data_type_size(9), 1u);
  EXPECT_EQ(data_type_size(10), 2u);
  EXPECT_EQ(data_type_size(15), 16u);
  EXPECT_EQ(data_type_size(8), 0u);   // STRING
  EXPECT_EQ(data_type_size(22), 0u);  // INT4: sub-byte
  EXPECT_EQ(data_type_bits(22), 4);
  EXPECT_EQ(data_type_bits(25), 2);
  EXPECT_EQ(data_type_bits(1000), 0);
}

// ---- Tensor bytes ----

TensorProto make_tensor(DataType dt, std::vector<int64_t> dims) {
  TensorProto t;
  t.name = "t";
  t.data_type = static_cast<int32_t>(dt);
  t.dims = std::move(dims);
  return t;
}

std::string bytes_of(const TensorProto& t, const std::string& dir = ".") {
  ExternalDataCache cache;
  return std::string(tensor_bytes(t, dir, cache).bytes());
}

template <class T>
std::string le(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  return s;
}

TEST(TensorBytes, RawDataIsAView) {
  const std::string raw = le<float>({1, 2, 3, 4, 5, 6});
  TensorProto t = make_tensor(DataType::kFloat, {2, 3});
  t.has_raw_data = true;
  t.raw_data = raw;
  ExternalDataCache cache;
  const TensorData d = tensor_bytes(t, ".", cache);
  EXPECT_FALSE(d.owns());
  EXPECT_EQ(d.data(), raw.data());
  EXPECT_EQ(d.size(), 24u);
}

TEST(TensorBytes, RawDataSizeMismatch) {
  const std::string raw(12, '\0');
  TensorProto t = make_tensor(DataType::kFloat, {2, 3});
  t.has_raw_data = true;
  t.raw_data = raw;
  EXPECT_EQ(error_of([&] { bytes_of(t); }), "tensor 't': raw_data holds 12 bytes, but dims [2, 3] of FLOAT need 24");
}

TEST(TensorBytes, TypedFields) {
  TensorProto f = make_tensor(DataType::kFloat, {2});
  f.float_data = {1.5f, -2.0f};
  EXPECT_EQ(bytes_of(f), le<float>({1.5f, -2.0f}));

  TensorProto c = make_tensor(DataType::kComplex64, {1});
  c.float_data = {1.0f, 2.0f};
  EXPECT_EQ(bytes_of(c), le<float>({1.0f, 2.0f}));

  TensorProto i64 = make_tensor(DataType::kInt64, {3});
  i64.int64_data = {-1, 0, int64_t{1} << 40};
  EXPECT_EQ(bytes_of(i64), le<int64_t>({-1, 0, int64_t{1} << 40}));

  TensorProto i32 = make_tensor(DataType::kInt32, {2});
  i32.int32_data = {-7, 100000};
  EXPECT_EQ(bytes_of(i32), le<int32_t>({-7, 100000}));

  // FLOAT16 / BFLOAT16 travel as uint16 bit patterns in int32_data.
  TensorProto h = make_tensor(DataType::kFloat16, {2});
  h.int32_data = {0x3c00, 0xc000};  // 1.0, -2.0
  EXPECT_EQ(bytes_of(h), le<uint16_t>({0x3c00, 0xc000}));
  TensorProto bf = make_tensor(DataType::kBfloat16, {1});
  bf.int32_data = {0x3f80};
  EXPECT_EQ(bytes_of(bf), le<uint16_t>({0x3f80}));

  TensorProto i8 = make_tensor(DataType::kInt8, {3});
  i8.int32_data = {-1, 127, -128};
  EXPECT_EQ(bytes_of(i8), std::string("\xff\x7f\x80", 3));

  TensorProto b = make_tensor(DataType::kBool, {3});
  b.int32_data = {0, 1, 5};
  EXPECT_EQ(bytes_of(b), std::string("\x00\x01\x01", 3));

  TensorProto u32 = make_tensor(DataType::kUint32, {2});
  u32.uint64_data = {0xffffffffu, 3};
  EXPECT_EQ(bytes_of(u32), le<uint32_t>({0xffffffffu, 3}));
  TensorProto u64 = make_tensor(DataType::kUint64, {1});
  u64.uint64_data = {~0ull};
  EXPECT_EQ(bytes_of(u64), le<uint64_t>({~0ull}));

  TensorProto d = make_tensor(DataType::kDouble, {2});
  d.double_data = {0.1, -3.0};
  EXPECT_EQ(bytes_of(d), le<double>({0.1, -3.0}));

  // INT4: two elements per int32_data value; 3 elements -> 2 packed bytes.
  TensorProto i4 = make_tensor(DataType::kInt4, {3});
  i4.int32_data = {0x21, 0x03};
  EXPECT_EQ(bytes_of(i4), std::string("\x21\x03", 2));

  // A scalar (no dims) holds one element.
  TensorProto s = make_tensor(DataType::kInt64, {});
  s.int64_data = {42};
  EXPECT_EQ(bytes_of(s), le<int64_t>({42}));
}

TEST(TensorBytes, TypedFieldsFromWire) {
  // The same path, starting from bytes: packed int32 fp16 patterns and unpacked float_data.
  const TensorProto h = parse_tensor(
      ProtoWriter().int64(1, 2).int32(2, 10).packed_varints<int32_t>(5, {0x3c00, 0x7bff}).str());
  EXPECT_EQ(bytes_of(h), le<uint16_t>({0x3c00, 0x7bff}));
  const TensorProto f = parse_tensor(ProtoWriter().int64(1, 2).int32(2, 1).float32(4, 1).float32(4, 2).str());
  EXPECT_EQ(bytes_of(f), le<float>({1, 2}));
  const TensorProto i = parse_tensor(ProtoWriter().int64(1, 2).int32(2, 7).packed_varints<int64_t>(7, {-5, 5}).str());
  EXPECT_EQ(bytes_of(i), le<int64_t>({-5, 5}));
}

TEST(TensorBytes, Errors) {
  TensorProto wrong_count = make_tensor(DataType::kFloat, {3});
  wrong_count.float_data = {1, 2};
  EXPECT_EQ(error_of([&] { bytes_of(wrong_count); }),
            "tensor 't': float_data has 2 values, but dims [3] of FLOAT need 3");

  TensorProto no_data = make_tensor(DataType::kInt64, {2});
  EXPECT_NE(error_of([&] { bytes_of(no_data); }).find("int64_data has 0 values"), std::string::npos);

  EXPECT_EQ(bytes_of(make_tensor(DataType::kFloat, {0, 5})), "");  // empty tensor, no data: fine

  EXPECT_NE(error_of([] { bytes_of(make_tensor(DataType::kString, {1})); }).find("STRING tensors"), std::string::npos);
  TensorProto unknown = make_tensor(DataType::kFloat, {1});
  unknown.data_type = 99;
  EXPECT_NE(error_of([&] { bytes_of(unknown); }).find("unsupported data_type 99 (UNKNOWN)"), std::string::npos);
  EXPECT_NE(error_of([] { bytes_of(make_tensor(DataType::kFloat, {2, -1})); }).find("negative dimension"),
            std::string::npos);
  EXPECT_NE(error_of([] { bytes_of(make_tensor(DataType::kFloat, {1 << 30, 1 << 30, 1 << 30})); }).find("overflow"),
            std::string::npos);
  TensorProto seg = make_tensor(DataType::kFloat, {1});
  seg.has_segment = true;
  EXPECT_NE(error_of([&] { bytes_of(seg); }).find("segmented"), std::string::npos);
}

// ---- External data ----

class ExternalData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_onnx_ext_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "sub");
    std::string data;
    for (int i = 0; i < 64; ++i) data += static_cast<char>(i);
    std::ofstream(dir_ / "weights.bin", std::ios::binary) << data;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The strings must outlive the tensor: TensorProto holds views.
  TensorProto external(std::vector<int64_t> dims, std::string location, std::string offset = "",
                       std::string length = "") {
    TensorProto t = make_tensor(DataType::kFloat, std::move(dims));
    t.data_location = TensorProto::kExternal;
    strings_.push_back(std::move(location));
    t.external_data.push_back({"location", strings_.back()});
    if (!offset.empty()) {
      strings_.push_back(std::move(offset));
      t.external_data.push_back({"offset", strings_.back()});
    }
    if (!length.empty()) {
      strings_.push_back(std::move(length));
      t.external_data.push_back({"length", strings_.back()});
    }
    return t;
  }
  std::string dir() const { return dir_.string(); }

  fs::path dir_;
  std::list<std::string> strings_;  // stable addresses
};

TEST_F(ExternalData, ReadsOffsetAndLengthAndCachesTheMapping) {
  ExternalDataCache cache;
  const TensorData a = tensor_bytes(external({4}, "weights.bin", "0", "16"), dir(), cache);
  const TensorData b = tensor_bytes(external({2}, "sub/../weights.bin", "16", "8"), dir(), cache);
  EXPECT_FALSE(a.owns());
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a.bytes()[15], 15);
  ASSERT_EQ(b.size(), 8u);
  EXPECT_EQ(b.bytes()[0], 16);
  EXPECT_EQ(cache.size(), 1u);  // both resolve to the same file, mapped once
  // No length: the tensor's own size from the offset on.
  const TensorData c = tensor_bytes(external({1}, "./weights.bin", "60"), dir(), cache);
  EXPECT_EQ(c.bytes(), std::string("\x3c\x3d\x3e\x3f", 4));
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(ExternalData, RejectsEscapingAndAbsolutePaths) {
  ExternalDataCache cache;
  EXPECT_NE(error_of([&] { tensor_bytes(external({1}, "../weights.bin"), dir(), cache); }).find("escapes the model directory"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tensor_bytes(external({1}, "sub/../../x"), dir(), cache); }).find("escapes the model directory"),
            std::string::npos);
  const std::string abs = (dir_ / "weights.bin").string();
  EXPECT_NE(error_of([&] { tensor_bytes(external({1}, abs), dir(), cache); }).find("is absolute"), std::string::npos);
  EXPECT_NE(error_of([&] { tensor_bytes(external({1}, "sub/.."), dir(), cache); }).find("does not name a file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tensor_bytes(external({1}, std::string("a\0b", 3)), dir(), cache); }).find("'a\\x00b' contains a NUL byte"),
            std::string::npos);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(ExternalData, RejectsBadOffsetsLengthsAndFiles) {
  ExternalDataCache cache;
  auto err = [&](TensorProto t) { return error_of([&] { tensor_bytes(t, dir(), cache); }); };
  EXPECT_NE(err(external({1}, "weights.bin", "65")).find("offset 65 is beyond the end"), std::string::npos);
  EXPECT_NE(err(external({4}, "weights.bin", "60", "16")).find("offset 60 + length 16 is beyond the end"),
            std::string::npos);
  EXPECT_NE(err(external({4}, "weights.bin", "0", "18446744073709551615")).find("beyond the end"), std::string::npos);
  EXPECT_NE(err(external({1}, "weights.bin", "99999999999999999999999")).find("not a non-negative decimal"),
            std::string::npos);
  EXPECT_NE(err(external({1}, "weights.bin", "-4")).find("not a non-negative decimal"), std::string::npos);
  EXPECT_NE(err(external({1}, "weights.bin", "4x")).find("not a non-negative decimal"), std::string::npos);
  EXPECT_NE(err(external({2}, "weights.bin", "0", "4")).find("external data holds 4 bytes, but dims [2] of FLOAT need 8"),
            std::string::npos);
  const std::string missing = err(external({1}, "nope.bin"));
  EXPECT_NE(missing.find("cannot open"), std::string::npos) << missing;
  EXPECT_NE(missing.find("nope.bin"), std::string::npos) << missing;
  EXPECT_NE(err(external({1}, "sub")).find("not a regular file"), std::string::npos);
  TensorProto no_location = make_tensor(DataType::kFloat, {1});
  no_location.data_location = TensorProto::kExternal;
  EXPECT_NE(err(no_location).find("has no location"), std::string::npos);
}

// ---- Files ----

TEST_F(ExternalData, LoadModelFileMapsAndParses) {
  const std::string bytes = sample_model();
  const fs::path path = dir_ / "model.onnx";
  std::ofstream(path, std::ios::binary) << bytes;
  ModelFile file = load_model_file(path.string());
  EXPECT_EQ(file.directory(), dir());
  EXPECT_EQ(file.bytes(), bytes);
  EXPECT_EQ(file.model().graph.name, "main");
  // Moving keeps the mapping, hence every view, valid.
  ModelFile moved = std::move(file);
  EXPECT_EQ(moved.model().graph.node[0].op_type, "Conv");
  EXPECT_EQ(moved.model().graph.initializer[0].raw_data.size(), 72u);
  ExternalDataCache cache;
  EXPECT_EQ(tensor_bytes(moved.model().graph.initializer[0], moved.directory(), cache).size(), 72u);
}

TEST_F(ExternalData, LoadModelFileErrors) {
  const std::string missing = (dir_ / "missing.onnx").string();
  EXPECT_NE(error_of([&] { load_model_file(missing); }).find("cannot open '" + missing + "'"), std::string::npos);
  const fs::path bad = dir_ / "bad.onnx";
  std::ofstream(bad, std::ios::binary) << std::string("\x3a\x7f", 2);
  const std::string msg = error_of([&] { load_model_file(bad.string()); });
  EXPECT_EQ(msg.rfind(bad.string() + ": ModelProto.graph: length 127 exceeds remaining 0 bytes", 0), 0u) << msg;
  const fs::path empty = dir_ / "empty.onnx";
  std::ofstream(empty, std::ios::binary).flush();
  EXPECT_FALSE(load_model_file(empty.string()).model().has_graph);
}

TEST(ModelFileTest, BareFileNameHasDotDirectory) {
  const fs::path old = fs::current_path();
  const fs::path tmp = fs::temp_directory_path() / ("kiln_onnx_cwd_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  fs::current_path(tmp);
  std::ofstream("m.onnx", std::ios::binary) << sample_model();
  const ModelFile f = load_model_file("m.onnx");
  EXPECT_EQ(f.directory(), ".");
  fs::current_path(old);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace kiln::onnx
