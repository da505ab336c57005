// libFuzzer entry point for the ONNX decoder. Not built by default; for example:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     src/onnx/wire_reader.cpp src/onnx/onnx_model.cpp tests/fuzz/fuzz_onnx_model.cpp -o fuzz_onnx
//   ./fuzz_onnx corpus/   (seed the corpus with a few small .onnx files)
// Any exception other than ParseError, any sanitizer report or any crash is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "onnx/onnx_model.h"

namespace {

// Also exercises tensor_bytes on everything that parsed. "/nonexistent" makes every external
// location fail to open: the fuzzer must never read files from the machine it runs on.
void touch_tensors(const kiln::onnx::GraphProto& g, int depth) {
  using namespace kiln::onnx;
  if (depth > 8) return;
  ExternalDataCache cache;
  auto touch = [&](const TensorProto& t) {
    try {
      (void)tensor_bytes(t, "/nonexistent-kiln-fuzz-dir", cache);
    } catch (const ParseError&) {
    }
  };
  for (const TensorProto& t : g.initializer) touch(t);
  for (const NodeProto& n : g.node) {
    for (const AttributeProto& a : n.attribute) {
      if (a.t) touch(*a.t);
      for (const TensorProto& t : a.tensors) touch(t);
      if (a.g) touch_tensors(*a.g, depth + 1);
      for (const GraphProto& sub : a.graphs) touch_tensors(sub, depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const kiln::onnx::Model model = kiln::onnx::parse_model(bytes);
    touch_tensors(model.graph, 0);
  } catch (const kiln::onnx::ParseError&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  try {
    (void)kiln::onnx::parse_tensor(bytes);
  } catch (const kiln::onnx::ParseError&) {
  }
  return 0;
}
