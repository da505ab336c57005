// The Kiln plan file: a versioned, checksummed binary holding one kiln::EngineData (see
// runtime/engine_data.h). plan_writer.cpp writes it, plan_reader.cpp reads it; this header is the single
// description of the layout both follow.
//
// Conventions
//   * Every integer is little-endian. u8/u32/u64 are unsigned, i32/i64 two's complement, f64 is the
//     IEEE-754 bit pattern stored as a u64 (NaN payloads and -0.0 survive).
//   * str   = u32 byte length, then that many bytes (UTF-8 expected, not checked; no terminator).
//   * dims  = u32 rank, then rank x i64 (-1 = dimension unknown until run time).
//   * dtype = i32 holding a kiln::DataType value; readers reject values dtype_is_valid() refuses.
//   * bool  = u8 that must be 0 or 1.
//   * vref  = u32 index into the graph's value table; kNoValue (0xFFFFFFFF) marks an omitted optional
//             node input (Node::inputs[i] == nullptr). Allowed only for node inputs.
//   * Counts are checked against the bytes left before anything is allocated.
//
// File = header | payload, nothing after the payload.
//
// Header (starts at file offset 0):
//   magic           8 bytes  "KILNPLAN"
//   format_version  u32      kPlanFormatVersion; a reader supports exactly its own version
//   header_size     u32      bytes from the start of the file to the payload; a multiple of 64 and
//                            exactly what the fields below need, rounded up to 64
//   target          str      "cpu", "cuda:sm_90", ... (at most kMaxHeaderString bytes)
//   kiln_version    str      the Kiln that built the plan, "major.minor.patch" (at most kMaxHeaderString);
//                            a reader refuses plans whose major.minor differ from its own
//   payload_size    u64      bytes of payload; the file is exactly header_size + payload_size bytes
//   checksum        u64      plan_checksum() over the whole file with these 8 bytes left out: it covers
//                            the header fields above, the header padding and the payload, so that every
//                            single changed byte anywhere in the file is detected
//   padding                  zero bytes up to header_size
//
// Payload = four sections, in this order and no others:
//   section = tag u32 (four ASCII characters, first character in the low byte) | reserved u32 (0)
//             | size u64 | size bytes of content (each section's content is consumed exactly)
//
//   "META" engine scalars
//     name                str
//     num_profiles        i32    >= 0
//     device_memory_size  u64
//     workspace_limit     u64
//     weights_bytes       u64
//     target_libraries    str    GPU plans: the CUDA library versions the plan was built with, else ""
//     tactics             str    the serialized TimingCache of the tactics timed for this plan's layers
//                                (kiln/timing_cache.h; "" when none)
//
//   "IOTB" the I/O table (EngineData::io, in order)
//     count u32, then per entry:
//       name str | is_input bool | dtype | shape dims
//       num_profiles u32, then per profile: min dims | opt dims | max dims
//
//   "GRPH" the graph (ir::Graph), in the graph's own orders
//     num_values u32, then per value (in Graph::values() order; a value's index is its id):
//       name str | dtype | shape dims
//     num_inputs u32, then vref per graph input (Graph::inputs() order; no repeats)
//     num_outputs u32, then vref per graph output (Graph::outputs() order)
//     num_nodes u32, then per node (in Graph::nodes() order):
//       name str | op str            op must be registered (ir::find_op) in the reading Kiln
//       num_inputs u32 | vref each   (kNoValue allowed)
//       num_outputs u32 | vref each  every value is produced by at most one node and a graph input by none;
//                                    every value is a graph input or some node's output
//       has_precision bool | dtype if has_precision
//       num_output_types u32, then per entry: has bool | dtype if has
//       num_attrs u32, then per attribute, keys strictly increasing (byte order, as std::map keeps them):
//         key str | kind u8 | value:
//           kAttrInt     i64
//           kAttrFloat   f64
//           kAttrString  str
//           kAttrInts    u32 count | count x i64
//           kAttrFloats  u32 count | count x f64
//           kAttrTensor  has_data bool | dtype | shape dims (all >= 0 when has_data)
//                        | if has_data: offset u64 | nbytes u64
//                        offset is into the WGTS blob, a multiple of kTensorAlignment;
//                        nbytes == volume(shape) * dtype_size(dtype). has_data == 0 is a
//                        default-constructed HostTensor (no storage).
//
//   "WGTS" tensor bytes
//     zero bytes up to the next file offset that is a multiple of kTensorAlignment, then the blob: every
//     tensor's bytes (host byte order = little-endian), each starting at a multiple of kTensorAlignment
//     from the blob's start, zero padding in between. Because header_size is a multiple of 64 too, each
//     tensor lies 64-byte aligned in the file, so a reader can map weights in place. Tensors that share
//     storage (HostTensor copies) are stored once.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace kiln::plan {

inline constexpr char kPlanMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
inline constexpr uint32_t kPlanFormatVersion = 3;  // 2: META has target_libraries; 3: META has tactics
inline constexpr size_t kHeaderAlignment = 64;
inline constexpr size_t kTensorAlignment = 64;
inline constexpr size_t kMaxHeaderString = 256;
inline constexpr uint32_t kNoValue = 0xFFFFFFFFu;

// Offsets of the fixed header fields.
inline constexpr size_t kMagicOffset = 0;
inline constexpr size_t kFormatVersionOffset = 8;
inline constexpr size_t kHeaderSizeOffset = 12;
inline constexpr size_t kTargetOffset = 16;

constexpr uint32_t section_tag(const char (&s)[5]) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[0])) | static_cast<uint32_t>(static_cast<uint8_t>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(s[3])) << 24;
}
inline constexpr uint32_t kSectionMeta = section_tag("META");
inline constexpr uint32_t kSectionIO = section_tag("IOTB");
inline constexpr uint32_t kSectionGraph = section_tag("GRPH");
inline constexpr uint32_t kSectionWeights = section_tag("WGTS");

enum AttrKind : uint8_t {
  kAttrInt = 0,
  kAttrFloat = 1,
  kAttrString = 2,
  kAttrInts = 3,
  kAttrFloats = 4,
  kAttrTensor = 5,
};

constexpr size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Header size for the given header string lengths: the fixed fields plus padding to kHeaderAlignment.
constexpr size_t plan_header_size(size_t target_len, size_t version_len) {
  return align_up(kTargetOffset + 4 + target_len + 4 + version_len + 8 + 8, kHeaderAlignment);
}
// Offset of the checksum field for the given header string lengths.
constexpr size_t plan_checksum_offset(size_t target_len, size_t version_len) {
  return kTargetOffset + 4 + target_len + 4 + version_len + 8;
}

// A 64-bit hash of a byte range: four lanes over 32-byte stripes, then the tail, then a final mix. Each
// step is a bijection of the running state for a fixed input and injective in the input word, so any
// single changed byte (indeed any change confined to one 8-byte word) always changes the result.
inline uint64_t hash_bytes64(const uint8_t* p, size_t n, uint64_t seed) {
  constexpr uint64_t kA = 0x9E3779B97F4A7C15ull, kB = 0xD1B54A32D192ED03ull;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto load = [](const uint8_t* q) {  // little-endian 8-byte load
    uint64_t w;
    std::memcpy(&w, q, 8);
    if constexpr (std::endian::native == std::endian::big) {
      uint64_t r = 0;
      for (int i = 0; i < 8; ++i) r = (r << 8) | ((w >> (8 * i)) & 0xFF);
      w = r;
    }
    return w;
  };
  auto round = [&](uint64_t acc, uint64_t w) { return rotl(acc + w * kB, 29) * kA; };
  uint64_t lane[4] = {seed + kA, seed ^ kB, seed - kA, ~seed};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) lane[l] = round(lane[l], load(p + i + 8 * l));
  for (; i + 8 <= n; i += 8) lane[0] = round(lane[0], load(p + i));
  uint64_t tail = 0;
  for (size_t k = n; k > i; --k) tail = (tail << 8) | p[k - 1];
  lane[1] = round(lane[1], tail);
  uint64_t h = static_cast<uint64_t>(n) * kA;
  for (uint64_t l : lane) h = rotl(h ^ round(0, l), 27) * kA + kB;
  h ^= h >> 33;
  h *= kB;
  h ^= h >> 29;
  h *= kA;
  h ^= h >> 32;
  return h;
}

// The plan checksum: the file's bytes before the checksum field, then the bytes after it.
inline uint64_t plan_checksum(const uint8_t* file, size_t file_size, size_t checksum_offset) {
  // Combined so that the result is injective in each half's hash when the other is fixed.
  uint64_t a = hash_bytes64(file, checksum_offset, 0x4B494C4E);
  uint64_t b = hash_bytes64(file + checksum_offset + 8, file_size - checksum_offset - 8, 0x504C414E);
  uint64_t x = a + b * 0xD1B54A32D192ED03ull;
  return ((x << 29) | (x >> 35)) * 0x9E3779B97F4A7C15ull;
}

}  // namespace kiln::plan
