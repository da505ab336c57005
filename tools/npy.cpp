// .npy / .npz reading and writing (see npy.h). The .npy header is a Python dict literal; it is parsed
// by a small bounded recursive-descent reader that accepts the subset numpy writes (strings, ints,
// booleans, None, tuples, lists, dicts). Zip archives are read through their central directory
// (zip64 included), which is what numpy itself relies on.
#include "npy.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>

#if defined(KILN_HAVE_ZLIB) && __has_include(<zlib.h>)
#include <zlib.h>
#define KILN_NPY_ZLIB 1
#else
#define KILN_NPY_ZLIB 0
#endif

static_assert(std::endian::native == std::endian::little, "npy.cpp assumes a little-endian host");

namespace kiln::npy {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw Error(what + ": " + msg); }

// ---------------------------------------------------------------------------------------------------
// dtype mapping

struct DtypeEntry {
  char kind;
  int size;
  DataType dt;
};
constexpr DtypeEntry kDtypes[] = {
    {'f', 2, DataType::kHALF},  {'f', 4, DataType::kFLOAT}, {'f', 8, DataType::kDOUBLE}, {'i', 1, DataType::kINT8},
    {'u', 1, DataType::kUINT8}, {'i', 4, DataType::kINT32}, {'i', 8, DataType::kINT64},  {'b', 1, DataType::kBOOL},
};
constexpr const char* kSupportedList = "<f2, <f4, <f8, |i1, |u1, <i4, <i8, |b1";

// ---------------------------------------------------------------------------------------------------
// A Python-literal subset, for the .npy header.

struct PyVal {
  enum Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict } kind = kNone;
  std::string str;
  int64_t i = 0;
  bool b = false;
  std::vector<PyVal> items;                          // tuple, list
  std::vector<std::pair<std::string, PyVal>> dict;  // dict
};

class LiteralParser {
 public:
  LiteralParser(const std::string& s, const std::string& what) : s_(s), what_(what) {}

  PyVal parse_all() {
    PyVal v = value(0);
    skip_ws();
    if (pos_ != s_.size()) error("unexpected text after the header dict");
    return v;
  }

 private:
  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;

  [[noreturn]] void error(const std::string& msg) {
    std::string near = s_.substr(std::min(pos_, s_.size()), 24);
    fail(what_, "malformed .npy header (" + msg + " at character " + std::to_string(pos_) + ", near '" + near +
                    "'); header: " + s_.substr(0, 200));
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool eat_word(const char* w) {
    size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  PyVal value(int depth) {
    if (depth > 16) error("nesting too deep");
    skip_ws();
    if (pos_ >= s_.size()) error("unexpected end");
    char c = s_[pos_];
    PyVal v;
    if (c == '\'' || c == '"') {
      v.kind = PyVal::kStr;
      v.str = string_lit();
    } else if (c == '{') {
      ++pos_;
      v.kind = PyVal::kDict;
      while (!eat('}')) {
        skip_ws();
        if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) error("expected a string key");
        std::string key = string_lit();
        if (!eat(':')) error("expected ':'");
        v.dict.emplace_back(std::move(key), value(depth + 1));
        if (!eat(',')) {
          if (!eat('}')) error("expected ',' or '}'");
          break;
        }
      }
    } else if (c == '(' || c == '[') {
      char close = c == '(' ? ')' : ']';
      ++pos_;
      v.kind = c == '(' ? PyVal::kTuple : PyVal::kList;
      while (!eat(close)) {
        v.items.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat(close)) error(std::string("expected ',' or '") + close + "'");
          break;
        }
      }
    } else if (eat_word("True")) {
      v.kind = PyVal::kBool;
      v.b = true;
    } else if (eat_word("False")) {
      v.kind = PyVal::kBool;
    } else if (eat_word("None")) {
      v.kind = PyVal::kNone;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = PyVal::kInt;
      v.i = integer();
    } else {
      error("unexpected character");
    }
    return v;
  }

  std::string string_lit() {
    char q = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\') {
        if (++pos_ >= s_.size()) break;
      }
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) error("unterminated string");
    ++pos_;
    return out;
  }

  int64_t integer() {
    bool neg = eat_word("-");
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') error("expected a digit");
    uint64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      uint64_t d = static_cast<uint64_t>(s_[pos_] - '0');
      if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10) error("integer too large");
      v = v * 10 + d;
      ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;  // Python 2 long suffix
    return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }
};

const PyVal* dict_get(const PyVal& d, const char* key) {
  for (auto& [k, v] : d.dict)
    if (k == key) return &v;
  return nullptr;
}

std::string shape_str(const Dims& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t rd32(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24; }
uint64_t rd64(const uint8_t* p) { return rd32(p) | static_cast<uint64_t>(rd32(p + 4)) << 32; }
void wr16(std::vector<uint8_t>& o, uint32_t v) {
  o.push_back(static_cast<uint8_t>(v));
  o.push_back(static_cast<uint8_t>(v >> 8));
}
void wr32(std::vector<uint8_t>& o, uint32_t v) {
  wr16(o, v & 0xFFFF);
  wr16(o, v >> 16);
}

// Copies a Fortran-ordered array into C order.
void fortran_to_c(const uint8_t* src, uint8_t* dst, const Dims& shape, size_t item) {
  size_t rank = shape.size();
  int64_t n = volume(shape);
  if (n <= 0) return;
  std::vector<int64_t> fstride(rank), idx(rank, 0);
  int64_t st = 1;
  for (size_t k = 0; k < rank; ++k) {
    fstride[k] = st;
    st *= shape[k];
  }
  int64_t off = 0;  // Fortran offset (elements) of the current C-order index
  for (int64_t c = 0; c < n; ++c) {
    std::memcpy(dst + static_cast<size_t>(c) * item, src + static_cast<size_t>(off) * item, item);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < shape[k]) {
        off += fstride[k];
        break;
      }
      off -= fstride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// CRC-32 (zip's polynomial)

uint32_t crc32_bytes(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> inflate_raw(const uint8_t* src, size_t csize, size_t usize, const std::string& what) {
#if KILN_NPY_ZLIB
  // Deflate never expands more than ~1032:1; a header claiming more is corrupt (and must not make us
  // allocate an absurd buffer).
  if (usize / 1032 > csize + 64) fail(what, "corrupt zip entry: " + std::to_string(csize) + " compressed bytes cannot hold " + std::to_string(usize) + " bytes");
  std::vector<uint8_t> out(usize);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(what, "zlib inflateInit2 failed");
  constexpr size_t kChunk = size_t{1} << 30;  // zlib counts in uInt
  size_t in_off = 0, out_off = 0;
  std::string err;
  for (;;) {
    if (zs.avail_in == 0 && in_off < csize) {
      zs.next_in = const_cast<Bytef*>(src + in_off);
      zs.avail_in = static_cast<uInt>(std::min(kChunk, csize - in_off));
      in_off += zs.avail_in;
    }
    if (zs.avail_out == 0 && out_off < usize) {
      zs.next_out = out.data() + out_off;
      zs.avail_out = static_cast<uInt>(std::min(kChunk, usize - out_off));
      out_off += zs.avail_out;
    }
    if (zs.avail_out == 0) {
      // All declared output produced: the stream must end without producing more.
      uint8_t probe = 0;
      zs.next_out = &probe;
      zs.avail_out = 1;
      int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_STREAM_END || zs.avail_out == 0)
        err = "deflated data does not end at its declared size " + std::to_string(usize);
      break;
    }
    int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      if (zs.total_out != usize)
        err = "inflated to " + std::to_string(zs.total_out) + " bytes, declared " + std::to_string(usize);
      break;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_off >= csize) {
      err = "deflated data ends early (truncated)";
      break;
    }
    err = std::string("inflate failed: ") + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc));
    break;
  }
  inflateEnd(&zs);
  if (!err.empty()) fail(what, "corrupt zip entry: " + err);
  return out;
#else
  (void)src;
  (void)csize;
  (void)usize;
  fail(what, "entry is compressed (deflate, e.g. numpy.savez_compressed) but this Kiln was built without zlib; "
             "re-save it with numpy.savez (uncompressed) or pass the arrays as .npy files");
#endif
}

}  // namespace

// -----------------------------------------------------------------------------------------------------

Array::Array(DataType dt, Dims s) : dtype(dt), shape(std::move(s)) {
  int64_t n = volume(shape);
  if (n < 0) throw Error("npy::Array: shape " + dims_str(shape) + " has unknown dimensions");
  data.assign(static_cast<size_t>(n) * dtype_size(dt), 0);
}

bool dtype_supported(DataType dt) {
  for (auto& e : kDtypes)
    if (e.dt == dt) return true;
  return false;
}

std::string dtype_descr(DataType dt) {
  for (auto& e : kDtypes)
    if (e.dt == dt) return std::string(e.size == 1 ? "|" : "<") + e.kind + std::to_string(e.size);
  throw Error(std::string("dtype ") + dtype_name(dt) + " has no .npy equivalent (supported: " + kSupportedList + ")");
}

bool deflate_supported() { return KILN_NPY_ZLIB != 0; }

Array parse_npy(const void* data, size_t size, const std::string& what) {
  auto* p = static_cast<const uint8_t*>(data);
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size == 0 || !p) fail(what, "file is empty (expected a .npy array)");
  if (size < 10 || std::memcmp(p, kMagic, 6) != 0) {
    std::ostringstream s;
    s << "not a .npy file (bad magic: starts with";
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
      char buf[4];
      std::snprintf(buf, sizeof buf, " %02x", p[i]);
      s << buf;
    }
    s << ", expected 93 'NUMPY')";
    if (size < 10 && size >= 6 && std::memcmp(p, kMagic, 6) == 0) fail(what, "truncated .npy file (" + std::to_string(size) + " bytes)");
    fail(what, s.str());
  }
  int major = p[6], minor = p[7];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = rd16(p + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(what, "truncated .npy file (" + std::to_string(size) + " bytes)");
    header_len = rd32(p + 8);
    header_start = 12;
  } else {
    fail(what, ".npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " is not supported (supported: 1.0, 2.0, 3.0)");
  }
  if (header_len > size - header_start)
    fail(what, "truncated .npy file: header needs " + std::to_string(header_len) + " bytes, only " +
                   std::to_string(size - header_start) + " present");
  std::string header(reinterpret_cast<const char*>(p + header_start), header_len);
  PyVal d = LiteralParser(header, what).parse_all();
  if (d.kind != PyVal::kDict) fail(what, "malformed .npy header: not a dict: " + header.substr(0, 200));
  const PyVal* descr = dict_get(d, "descr");
  const PyVal* fortran = dict_get(d, "fortran_order");
  const PyVal* shape = dict_get(d, "shape");
  if (!descr || !fortran || !shape)
    fail(what, "malformed .npy header: needs the keys 'descr', 'fortran_order' and 'shape': " + header.substr(0, 200));
  if (descr->kind != PyVal::kStr)
    fail(what, "structured or record dtypes are not supported (supported: " + std::string(kSupportedList) + ")");
  if (fortran->kind != PyVal::kBool) fail(what, "malformed .npy header: 'fortran_order' is not True or False");
  if (shape->kind != PyVal::kTuple) fail(what, "malformed .npy header: 'shape' is not a tuple");

  // descr: optional byte-order character, kind, item size.
  const std::string& ds = descr->str;
  char order = '=';
  size_t k = 0;
  if (!ds.empty() && (ds[0] == '<' || ds[0] == '>' || ds[0] == '|' || ds[0] == '=')) order = ds[k++];
  bool found = false;
  DataType dt = DataType::kFLOAT;
  int item = 0;
  if (k + 2 == ds.size()) {
    for (auto& e : kDtypes)
      if (ds[k] == e.kind && ds[k + 1] == '0' + e.size) {
        dt = e.dt;
        item = e.size;
        found = true;
      }
  }
  if (!found) fail(what, "dtype '" + ds + "' is not supported (supported: " + std::string(kSupportedList) + ")");
  bool swap = order == '>' && item > 1;

  Array a;
  a.dtype = dt;
  size_t limit = size - header_start - header_len;  // data bytes present
  for (auto& v : shape->items) {
    if (v.kind != PyVal::kInt || v.i < 0) fail(what, "malformed .npy header: 'shape' holds a non-integer or negative entry");
    a.shape.push_back(v.i);
  }
  if (a.shape.size() > 64) fail(what, "array rank " + std::to_string(a.shape.size()) + " is too large");
  // Every running product (as volume() computes it) and the byte size must fit in int64.
  int64_t numel = 1, need = 0;
  bool overflow = false;
  for (int64_t s : a.shape) overflow |= __builtin_mul_overflow(numel, s, &numel);
  overflow |= __builtin_mul_overflow(numel, static_cast<int64_t>(item), &need);
  if (overflow) fail(what, "shape " + shape_str(a.shape) + " of " + ds + " is too large (its size overflows 64 bits)");
  if (static_cast<uint64_t>(need) > limit)
    fail(what, "truncated .npy file: shape " + shape_str(a.shape) + " of " + ds + " needs " + std::to_string(need) +
                   " bytes of data, only " + std::to_string(limit) + " present");
  const uint8_t* src = p + header_start + header_len;
  a.data.resize(static_cast<size_t>(need));
  if (fortran->b && a.shape.size() > 1)
    fortran_to_c(src, a.data.data(), a.shape, static_cast<size_t>(item));
  else if (need)
    std::memcpy(a.data.data(), src, static_cast<size_t>(need));
  if (swap)
    for (size_t off = 0; off < a.data.size(); off += static_cast<size_t>(item))
      std::reverse(a.data.begin() + static_cast<std::ptrdiff_t>(off), a.data.begin() + static_cast<std::ptrdiff_t>(off + item));
  return a;
}

std::vector<uint8_t> serialize_npy(const Array& a) {
  int64_t n = volume(a.shape);
  if (n < 0) throw Error("cannot write an array of shape " + dims_str(a.shape) + " (unknown dimensions)");
  if (a.data.size() != static_cast<size_t>(n) * dtype_size(a.dtype))
    throw Error("cannot write array: " + std::to_string(a.data.size()) + " bytes of data for shape " +
                dims_str(a.shape) + " of " + dtype_name(a.dtype));
  std::string dict = "{'descr': '" + dtype_descr(a.dtype) + "', 'fortran_order': False, 'shape': " + shape_str(a.shape) + ", }";
  size_t prefix = 10;
  size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  int major = 1;
  if (total - prefix > 0xFFFF) {
    major = 2;
    prefix = 12;
    total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  }
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  out.reserve(total + a.data.size());
  if (major == 1)
    wr16(out, static_cast<uint32_t>(dict.size()));
  else
    wr32(out, static_cast<uint32_t>(dict.size()));
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

std::vector<NamedArray> parse_npz(const void* data, size_t size, const std::string& what) {
  auto* p = static_cast<const uint8_t*>(data);
  if (size == 0 || !p) fail(what, "file is empty (expected an .npz archive)");
  if (size < 22) fail(what, "not an .npz (zip) archive: only " + std::to_string(size) + " bytes");
  // End of central directory: the last signature within the final 64 KiB + 22 bytes.
  size_t eocd = SIZE_MAX;
  size_t lo = size >= 22 + 0xFFFF ? size - 22 - 0xFFFF : 0;
  for (size_t i = size - 22 + 1; i-- > lo;)
    if (rd32(p + i) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == SIZE_MAX) {
    if (size >= 4 && rd32(p) == 0x04034b50) fail(what, "truncated or corrupt .npz (zip) archive: no end-of-central-directory record");
    fail(what, "not an .npz (zip) archive (no end-of-central-directory record)");
  }
  uint64_t disk = rd16(p + eocd + 4), cd_disk = rd16(p + eocd + 6);
  uint64_t entries = rd16(p + eocd + 10), cd_size = rd32(p + eocd + 12), cd_off = rd32(p + eocd + 16);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    if (eocd < 20 || rd32(p + eocd - 20) != 0x07064b50) fail(what, "corrupt zip64 archive: no zip64 locator");
    uint64_t z = rd64(p + eocd - 20 + 8);
    if (z > size || size - z < 56 || rd32(p + z) != 0x06064b50) fail(what, "corrupt zip64 archive: bad zip64 end record");
    disk = rd32(p + z + 16);
    cd_disk = rd32(p + z + 20);
    entries = rd64(p + z + 32);
    cd_size = rd64(p + z + 40);
    cd_off = rd64(p + z + 48);
  }
  if (disk != 0 || cd_disk != 0) fail(what, "multi-part zip archives are not supported");
  if (cd_off > size || cd_size > size - cd_off)
    fail(what, "truncated or corrupt .npz archive: central directory at " + std::to_string(cd_off) + " (+" +
                   std::to_string(cd_size) + " bytes) lies outside the " + std::to_string(size) + "-byte file");
  if (entries > cd_size / 46) fail(what, "corrupt .npz archive: " + std::to_string(entries) + " entries cannot fit the central directory");

  std::vector<NamedArray> out;
  size_t q = static_cast<size_t>(cd_off), end = static_cast<size_t>(cd_off + cd_size);
  for (uint64_t e = 0; e < entries; ++e) {
    if (end - q < 46 || rd32(p + q) != 0x02014b50)
      fail(what, "corrupt .npz archive: bad central directory entry " + std::to_string(e));
    uint16_t flags = rd16(p + q + 8), method = rd16(p + q + 10);
    uint32_t crc = rd32(p + q + 16);
    uint64_t csize = rd32(p + q + 20), usize = rd32(p + q + 24);
    size_t nlen = rd16(p + q + 28), xlen = rd16(p + q + 30), clen = rd16(p + q + 32);
    uint64_t local = rd32(p + q + 42);
    if (end - q - 46 < nlen + xlen + clen) fail(what, "corrupt .npz archive: central directory entry " + std::to_string(e) + " is truncated");
    std::string name(reinterpret_cast<const char*>(p + q + 46), nlen);
    // zip64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
    const uint8_t* x = p + q + 46 + nlen;
    for (size_t xi = 0; xi + 4 <= xlen;) {
      uint16_t id = rd16(x + xi), len = rd16(x + xi + 2);
      if (xi + 4 + len > xlen) break;
      if (id == 0x0001) {
        const uint8_t* f = x + xi + 4;
        size_t left = len;
        auto take = [&](uint64_t& v) {
          if (v != 0xFFFFFFFF) return;
          if (left < 8) fail(what, "corrupt zip64 extra field for '" + name + "'");
          v = rd64(f);
          f += 8;
          left -= 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      xi += 4 + len;
    }
    q += 46 + nlen + xlen + clen;
    std::string ewhat = what + ":" + name;
    if (!name.empty() && name.back() == '/') continue;  // a directory entry
    if (flags & 1) fail(ewhat, "entry is encrypted");
    if (method != 0 && method != 8)
      fail(ewhat, "zip compression method " + std::to_string(method) + " is not supported (stored or deflate only)");
    if (local > size || size - local < 30 || rd32(p + local) != 0x04034b50)
      fail(ewhat, "corrupt .npz archive: bad local header offset " + std::to_string(local));
    size_t data_off = static_cast<size_t>(local) + 30 + rd16(p + local + 26) + rd16(p + local + 28);
    if (data_off > size || csize > size - data_off)
      fail(ewhat, "truncated .npz archive: entry data (" + std::to_string(csize) + " bytes at " +
                      std::to_string(data_off) + ") lies outside the " + std::to_string(size) + "-byte file");
    std::vector<uint8_t> inflated;
    const uint8_t* bytes = p + data_off;
    size_t nbytes = static_cast<size_t>(csize);
    if (method == 0) {
      if (csize != usize) fail(ewhat, "corrupt .npz archive: stored entry with different compressed and uncompressed sizes");
    } else {
      inflated = inflate_raw(bytes, static_cast<size_t>(csize), static_cast<size_t>(usize), ewhat);
      bytes = inflated.data();
      nbytes = inflated.size();
    }
    uint32_t got = crc32_bytes(bytes, nbytes);
    if (got != crc) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "corrupt .npz entry: CRC-32 mismatch (stored %08x, computed %08x)", crc, got);
      fail(ewhat, buf);
    }
    std::string aname = name;
    if (aname.size() < 4 || aname.compare(aname.size() - 4, 4, ".npy") != 0)
      fail(ewhat, "entry is not an .npy array (its name does not end in .npy)");
    aname.resize(aname.size() - 4);
    for (auto& [n, a] : out)
      if (n == aname) fail(ewhat, "the archive holds two arrays named '" + aname + "'");
    out.emplace_back(aname, parse_npy(bytes, nbytes, ewhat));
  }
  return out;
}

std::vector<uint8_t> serialize_npz(const std::vector<NamedArray>& arrays) {
  if (arrays.size() >= 0xFFFF) throw Error("cannot write an .npz with " + std::to_string(arrays.size()) + " arrays (at most 65534)");
  constexpr uint32_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, for reproducible archives
  std::vector<uint8_t> out, cd;
  for (auto& [name, a] : arrays) {
    std::string fname = name + ".npy";
    if (fname.size() > 0xFFFF) throw Error("array name '" + name.substr(0, 64) + "...' is too long for a zip entry");
    std::vector<uint8_t> body = serialize_npy(a);
    if (body.size() >= 0xFFFFFFFFull || out.size() + body.size() + 30 + fname.size() >= 0xFFFFFFFFull)
      throw Error("cannot write '" + name + "': .npz archives over 4 GiB are not supported (write .npy files instead)");
    uint32_t crc = crc32_bytes(body.data(), body.size());
    bool utf8 = std::any_of(fname.begin(), fname.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    uint32_t offset = static_cast<uint32_t>(out.size());
    auto common = [&](std::vector<uint8_t>& o) {
      wr16(o, 20);                      // version needed
      wr16(o, utf8 ? 1u << 11 : 0u);    // flags
      wr16(o, 0);                       // method: stored
      wr16(o, 0);                       // time
      wr16(o, kDosDate);
      wr32(o, crc);
      wr32(o, static_cast<uint32_t>(body.size()));
      wr32(o, static_cast<uint32_t>(body.size()));
      wr16(o, static_cast<uint32_t>(fname.size()));
      wr16(o, 0);                       // extra length
    };
    wr32(out, 0x04034b50);
    common(out);
    out.insert(out.end(), fname.begin(), fname.end());
    out.insert(out.end(), body.begin(), body.end());
    wr32(cd, 0x02014b50);
    wr16(cd, 20);  // version made by
    common(cd);
    wr16(cd, 0);   // comment length
    wr16(cd, 0);   // disk
    wr16(cd, 0);   // internal attributes
    wr32(cd, 0);   // external attributes
    wr32(cd, offset);
    cd.insert(cd.end(), fname.begin(), fname.end());
  }
  if (out.size() + cd.size() >= 0xFFFFFFFFull) throw Error(".npz archives over 4 GiB are not supported (write .npy files instead)");
  uint32_t cd_off = static_cast<uint32_t>(out.size());
  out.insert(out.end(), cd.begin(), cd.end());
  wr32(out, 0x06054b50);
  wr16(out, 0);
  wr16(out, 0);
  wr16(out, static_cast<uint32_t>(arrays.size()));
  wr16(out, static_cast<uint32_t>(arrays.size()));
  wr32(out, static_cast<uint32_t>(cd.size()));
  wr32(out, cd_off);
  wr16(out, 0);
  return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("cannot read '" + path + "': it is a directory");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  bool err = std::ferror(f);
  int e = errno;
  std::fclose(f);
  if (err) throw Error("cannot read '" + path + "': " + std::strerror(e));
  return bytes;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  // Written beside the target and renamed into place so that a failed write never leaves half a file.
  std::string tmp = path + ".tmp-kiln";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write '" + path + "': " + std::strerror(errno));
  bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  int e = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) e = errno ? errno : e;
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "': " + std::strerror(e));
  }
}

Array load_npy(const std::string& path) {
  auto bytes = read_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

void save_npy(const std::string& path, const Array& a) { write_file(path, serialize_npy(a)); }

std::vector<NamedArray> load_npz(const std::string& path) {
  auto bytes = read_file(path);
  return parse_npz(bytes.data(), bytes.size(), path);
}

void save_npz(const std::string& path, const std::vector<NamedArray>& arrays) { write_file(path, serialize_npz(arrays)); }

}  // namespace kiln::npy
