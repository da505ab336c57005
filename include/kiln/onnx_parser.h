// ONNX import: parses ONNX bytes or files into a Network with Kiln's own protobuf reader.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/logger.h"
#include "kiln/network.h"

namespace kiln {

// Values follow TensorRT's onnx ErrorCode.
enum class ParserErrorCode : int32_t {
  kSUCCESS = 0, kINTERNAL_ERROR = 1, kMEM_ALLOC_FAILED = 2, kMODEL_DESERIALIZE_FAILED = 3, kINVALID_VALUE = 4,
  kINVALID_GRAPH = 5, kINVALID_NODE = 6, kUNSUPPORTED_GRAPH = 7, kUNSUPPORTED_NODE = 8,
  kUNSUPPORTED_NODE_ATTR = 9, kUNSUPPORTED_NODE_INPUT = 10, kUNSUPPORTED_NODE_DATATYPE = 11,
  kUNSUPPORTED_NODE_DYNAMIC = 12, kUNSUPPORTED_NODE_SHAPE = 13, kREFIT_FAILED = 14
};

struct ParserError {
  ParserErrorCode code = ParserErrorCode::kSUCCESS;
  std::string desc;
  std::string file;
  int line = 0;
  std::string func;
  int node = -1;            // index of the ONNX node at fault, -1 when none
  std::string node_name;
  std::string node_operator;
  std::string str() const;  // one line naming the node, its op and the reason
};

class OnnxParser {
 public:
  OnnxParser(Network& network, ILogger* logger);
  ~OnnxParser();
  // Parse a serialized ModelProto. `path` (optional) locates external data files.
  bool parse(const void* data, size_t size, const std::string& path = "");
  bool parse_from_file(const std::string& path);
  int num_errors() const { return static_cast<int>(errors_.size()); }
  const ParserError& error(int i) const { return errors_.at(i); }
  void clear_errors() { errors_.clear(); }
  bool supports_operator(const std::string& op_type, const std::string& domain = "") const;
  Network& network() { return network_; }

 private:
  Network& network_;
  ILogger* logger_;
  std::vector<ParserError> errors_;
  bool parse_impl(const void* data, size_t size, const std::string& model_dir);
};

}  // namespace kiln
