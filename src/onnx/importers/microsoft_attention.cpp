// com.microsoft Attention (packed QKV weights), MultiHeadAttention (separate Q/K/V) and RotaryEmbedding,
// composed of MatrixMultiply, SoftMax, ElementWise, Select, Gather, Split, Shuffle and Concatenation, with
// ONNX Runtime's semantics (its CPU kernels are the reference of the tests):
//   scores = Q K^T * scale (default 1/sqrt(head_size)) + mask + attention_bias, softmax over keys, @ V.
//   Masks do not use -inf: a hidden key gets `mask_filter_value` (default -10000) added, assigned once
//   however many reasons hide it (key mask, causal `unidirectional`), as ONNX Runtime does.
//   mask_index / key_padding_mask forms: [B] end positions, [2B] end then start positions (Attention),
//   [B, L] raw 0/1, [B, S, L] raw per query.
#include <cmath>
#include <string>

#include "onnx/import_context.h"

namespace kiln::onnx {
namespace {

using namespace ir_enum;
using Values = std::vector<ir::Value*>;
using Ints = std::vector<int64_t>;

ir::Value* matmul(ImportContext& ctx, ir::Value* a, ir::Value* b, bool transpose_b) {
  ir::Attrs at;
  at.set("op_a", int64_t{0});
  at.set("op_b", int64_t{transpose_b ? 1 : 0});
  return ctx.add1("MatrixMultiply", {a, b}, std::move(at));
}

ir::Value* gather(ImportContext& ctx, ir::Value* x, int64_t index, int64_t axis) {
  ir::Attrs at;
  at.set("axis", axis);
  at.set("mode", int64_t{0});
  return ctx.add1("Gather", {x, ctx.const_i64_scalar(index)}, std::move(at));
}

Values split(ImportContext& ctx, ir::Value* x, const Ints& sizes, int64_t axis) {
  ir::Attrs at;
  at.set("axis", axis);
  at.set("split", sizes);
  return ctx.add("Split", {x}, std::move(at), static_cast<int>(sizes.size()))->outputs;
}

void require_float(ImportContext& ctx, const ir::Value* x, const char* what) {
  if (x->dtype != kiln::DataType::kFLOAT)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DATATYPE, ctx.op_type() + ": " + what + " of type " +
                                                              std::string(dtype_name(x->dtype)) + " is not supported (float32)");
}

// [B, S, N*h] -> [B, N, S, h].
ir::Value* split_heads(ImportContext& ctx, ir::Value* x, int64_t heads, const char* what) {
  const int64_t hidden = x->shape.at(2);
  if (hidden < 0)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, ctx.op_type() + ": " + what + " needs a static hidden size");
  if (hidden % heads != 0)
    ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": " + what + " hidden size " + std::to_string(hidden) +
                                                 " does not split into " + std::to_string(heads) + " heads");
  return ctx.transpose(ctx.reshape(x, {0, 0, heads, hidden / heads}, true), {0, 2, 1, 3});
}

// 0 .. n-1 along the key axis as int64 (n from `x`'s dim `axis`, static or not).
ir::Value* positions(ImportContext& ctx, ir::Value* x, int64_t axis) {
  const int64_t n = x->shape[axis];
  if (n >= 0) {
    Ints r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[i] = i;
    return ctx.const_i64(r);
  }
  ir::Value* len = gather(ctx, ctx.shape_of(x), axis, 0);
  return ctx.add1("Range", {ctx.const_i64_scalar(0), len, ctx.const_i64_scalar(1)});
}

// Which keys each query may see, as a bool tensor broadcasting against scores [B, N, S, L] (nullptr: all).
// `mask`: the key mask in one of the forms above; `k` [B, N, L, h]; `past` = past length when causal.
ir::Value* visible_keys(ImportContext& ctx, ir::Value* mask, ir::Value* q, ir::Value* k, bool causal, int64_t past,
                        bool allow_start) {
  ir::Value* vis = nullptr;
  if (mask) {
    const int64_t mr = ImportContext::rank(mask);
    if (mask->dtype != kiln::DataType::kINT32 && mask->dtype != kiln::DataType::kINT64 && mask->dtype != kiln::DataType::kBOOL)
      ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": the mask must be int32, got " + dtype_name(mask->dtype));
    const int64_t b = q->shape[0];
    if (mr == 1) {
      const int64_t n = mask->shape[0];
      if (n < 0 || b < 0)
        ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, ctx.op_type() + ": a 1-D mask needs static batch sizes");
      ir::Value* m = ctx.cast(mask, kiln::DataType::kINT64);
      ir::Value* j = ctx.unsqueeze(positions(ctx, k, 2), {0});  // [1, L]
      if (n == b) {
        vis = ctx.elementwise(j, ctx.unsqueeze(m, {1}), kLess);  // j < end[b]
      } else if (n == 2 * b && allow_start) {
        Values se = split(ctx, m, {b, b}, 0);
        vis = ctx.elementwise(ctx.elementwise(j, ctx.unsqueeze(se[0], {1}), kLess),
                              ctx.elementwise(j, ctx.unsqueeze(se[1], {1}), kGreaterEqual), kAnd);
      } else {
        ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, ctx.op_type() + ": a 1-D mask of " + std::to_string(n) +
                                                         " entries is not supported (batch " + std::to_string(b) +
                                                         (allow_start ? " or 2 x batch" : "") + ")");
      }
      vis = ctx.unsqueeze(vis, {1, 2});  // [B, 1, 1, L]
    } else if (mr == 2) {
      vis = ctx.unsqueeze(ctx.cast(mask, kiln::DataType::kBOOL), {1, 2});  // [B, 1, 1, L]
    } else if (mr == 3) {
      vis = ctx.unsqueeze(ctx.cast(mask, kiln::DataType::kBOOL), {1});  // [B, 1, S, L]
    } else {
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, ctx.op_type() + ": a " + std::to_string(mr) +
                                                       "-D mask is not supported (1-D, 2-D and 3-D are)");
    }
  }
  if (causal) {
    const int64_t s = q->shape[2], l = k->shape[2];
    if (s < 0 || l < 0)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, ctx.op_type() + ": unidirectional needs static sequence lengths");
    HostTensor t(kiln::DataType::kBOOL, {s, l});
    uint8_t* p = t.mutable_data<uint8_t>();
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = 0; j < l; ++j) p[i * l + j] = j <= i + past;
    ir::Value* c = ctx.constant(std::move(t));
    vis = vis ? ctx.elementwise(vis, c, kAnd) : c;
  }
  return vis;
}

// softmax(Q K^T * scale + mask + bias) V for q [B, N, S, h], k [B, N, L, h], v [B, N, L, hv] -> [B, S, N*hv].
ir::Value* attend(ImportContext& ctx, ir::Value* q, ir::Value* k, ir::Value* v, ir::Value* visible,
                  ir::Value* attention_bias) {
  const int64_t h = q->shape[3];
  double scale = ctx.attr_f("scale", 0.0f);
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(h));
  ir::Value* scores = ctx.elementwise(matmul(ctx, q, k, true), ctx.const_scalar(q->dtype, scale), kProd);
  if (visible) {
    const double filter = ctx.attr_f("mask_filter_value", -10000.0f);
    scores = ctx.elementwise(scores, ctx.add1("Select", {visible, ctx.const_scalar(q->dtype, 0.0),
                                                         ctx.const_scalar(q->dtype, filter)}), kSum);
  }
  if (attention_bias) scores = ctx.elementwise(scores, attention_bias, kSum);
  ir::Attrs sm;
  sm.set("axis", int64_t{-1});
  sm.set("log", int64_t{0});
  ir::Value* y = matmul(ctx, ctx.add1("SoftMax", {scores}, std::move(sm)), v, false);
  return ctx.reshape(ctx.transpose(y, {0, 2, 1, 3}), {0, 0, -1}, true);
}

int64_t heads_of(ImportContext& ctx) {
  const int64_t n = ctx.req_attr_i("num_heads");
  if (n <= 0) ctx.fail(ParserErrorCode::kINVALID_NODE, ctx.op_type() + ": num_heads must be positive");
  return n;
}

// ---- Attention: input [B, S, In] @ weights [In, Hq+Hk+Hv] + bias, one head split, optional past/present
// ([2, B, N, P, h]) -------------------------------------------------------------------------------------
Values import_ms_attention(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* w = ctx.required_input(1);
  ir::Value* bias = ctx.input(2);
  ir::Value* mask = ctx.input(3);
  ir::Value* past = ctx.input(4);
  ir::Value* attention_bias = ctx.input(5);
  if (ctx.input(6)) ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "Attention: past_sequence_length is not supported");
  if (ctx.attr_i("do_rotary", 0) || ctx.attr_i("past_present_share_buffer", 0))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "Attention: do_rotary and past_present_share_buffer are not supported");
  require_float(ctx, x, "input");
  const int64_t heads = heads_of(ctx);
  if (ImportContext::rank(x) != 3 || ImportContext::rank(w) != 2)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: input must be 3-D and weights 2-D, got " + dims_str(x->shape) +
                                                 " and " + dims_str(w->shape));
  Ints sizes = ctx.attr_ints("qkv_hidden_sizes");
  if (sizes.empty()) {
    if (w->shape[1] < 0 || w->shape[1] % 3 != 0)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: weights " + dims_str(w->shape) + " do not hold 3 equal parts");
    sizes.assign(3, w->shape[1] / 3);
  }
  if (sizes.size() != 3 || sizes[0] != sizes[1])
    ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: qkv_hidden_sizes must be 3 sizes with Q and K equal");
  ir::Value* qkv = matmul(ctx, x, w, false);
  if (bias) qkv = ctx.elementwise(qkv, bias, kSum);
  Values parts = split(ctx, qkv, sizes, 2);
  ir::Value* q = split_heads(ctx, parts[0], heads, "Q");
  ir::Value* k = split_heads(ctx, parts[1], heads, "K");
  ir::Value* v = split_heads(ctx, parts[2], heads, "V");
  int64_t past_len = 0;
  if (past) {
    if (ImportContext::rank(past) != 5 || past->shape[3] < 0)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: past must be [2, B, N, P, h] with a static P, got " +
                                                   dims_str(past->shape));
    past_len = past->shape[3];
    k = ctx.concat({gather(ctx, past, 0, 0), k}, 2);
    v = ctx.concat({gather(ctx, past, 1, 0), v}, 2);
  }
  ir::Value* present = nullptr;  // [2, B, N, P + S, h]: only when K and V heads have one size
  if (ctx.output_used(1)) {
    if (sizes[1] != sizes[2])
      ctx.fail(ParserErrorCode::kINVALID_NODE, "Attention: the present output needs equal K and V hidden sizes");
    present = ctx.concat({ctx.unsqueeze(k, {0}), ctx.unsqueeze(v, {0})}, 0);
  }
  ir::Value* vis = visible_keys(ctx, mask, q, k, ctx.attr_i("unidirectional", 0) != 0, past_len, true);
  return {attend(ctx, q, k, v, vis, attention_bias), present};
}

// ---- MultiHeadAttention: query [B, S, D]; key/value [B, L, D] (+ bias [D + D + Dv]), or key/value already
// split into heads [B, N, L, h], or packed key/value [B, L, N, 2, h], or packed query/key/value
// [B, S, N, 3, h]; past_key/past_value [B, N, P, h] with present outputs -----------------------------------
Values import_multi_head_attention(ImportContext& ctx) {
  ir::Value* query = ctx.required_input(0);
  ir::Value* key = ctx.input(1);
  ir::Value* value = ctx.input(2);
  ir::Value* bias = ctx.input(3);
  ir::Value* mask = ctx.input(4);
  ir::Value* attention_bias = ctx.input(5);
  ir::Value* past_k = ctx.input(6);
  ir::Value* past_v = ctx.input(7);
  if (ctx.input(8) || ctx.input(9))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "MultiHeadAttention: past_sequence_length and cache_indirection are not supported");
  if ((past_k == nullptr) != (past_v == nullptr))
    ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: past_key and past_value must be given together");
  require_float(ctx, query, "query");
  const int64_t heads = heads_of(ctx);
  ir::Value *q, *k, *v;
  const int64_t qr = ImportContext::rank(query);
  if (qr == 5) {  // packed [B, S, N, 3, h]
    if (key || value || bias)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "MultiHeadAttention: packed QKV with key, value or bias is not supported");
    q = ctx.transpose(gather(ctx, query, 0, 3), {0, 2, 1, 3});
    k = ctx.transpose(gather(ctx, query, 1, 3), {0, 2, 1, 3});
    v = ctx.transpose(gather(ctx, query, 2, 3), {0, 2, 1, 3});
  } else {
    if (qr != 3 || !key)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: query must be [B, S, D] with a key, or packed "
                                               "[B, S, N, 3, h], got " + dims_str(query->shape));
    const int64_t kr = ImportContext::rank(key);
    const int64_t d = query->shape[2];
    if (bias && kr != 3)
      ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE, "MultiHeadAttention: a bias with key of rank " + std::to_string(kr) +
                                                       " is not supported");
    if (bias) {
      const int64_t dv = value ? value->shape[2] : -1;
      if (d < 0 || dv < 0)
        ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_DYNAMIC, "MultiHeadAttention: a bias needs static hidden sizes");
      Values b = split(ctx, bias, {d, d, dv}, 0);
      query = ctx.elementwise(query, b[0], kSum);
      key = ctx.elementwise(key, b[1], kSum);
      value = ctx.elementwise(value, b[2], kSum);
    }
    q = split_heads(ctx, query, heads, "query");
    if (kr == 3) {
      if (!value) ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: a 3-D key needs a value");
      k = split_heads(ctx, key, heads, "key");
      v = split_heads(ctx, value, heads, "value");
    } else if (kr == 4) {  // already [B, N, L, h]
      if (!value || ImportContext::rank(value) != 4)
        ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: a 4-D key needs a 4-D value");
      k = key;
      v = value;
    } else if (kr == 5) {  // packed key/value [B, L, N, 2, h]
      if (value) ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: packed key/value takes no value input");
      k = ctx.transpose(gather(ctx, key, 0, 3), {0, 2, 1, 3});
      v = ctx.transpose(gather(ctx, key, 1, 3), {0, 2, 1, 3});
    } else {
      ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: key must be 3-D, 4-D or 5-D, got " + dims_str(key->shape));
    }
  }
  int64_t past_len = 0;
  if (past_k) {
    past_len = ImportContext::rank(past_k) == 4 ? past_k->shape[2] : -1;
    if (past_len < 0)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "MultiHeadAttention: past_key must be [B, N, P, h] with a static P, got " +
                                                   dims_str(past_k->shape));
    k = ctx.concat({past_k, k}, 2);
    v = ctx.concat({past_v, v}, 2);
  }
  ir::Value* vis = visible_keys(ctx, mask, q, k, ctx.attr_i("unidirectional", 0) != 0, past_len, false);
  return {attend(ctx, q, k, v, vis, attention_bias), k, v};
}

// ---- RotaryEmbedding: rotates the first rotary_embedding_dim features of each head by the angle of its
// position: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin), pairs taken as halves or, when interleaved,
// as neighbours. input [B, S, N*h] (num_heads needed when rotary_embedding_dim is set) or [B, N, S, h];
// position_ids [B, S] (or [1]: the offset of position 0); caches [max_position, rotary_dim / 2] ---------------
Values import_rotary_embedding(ImportContext& ctx) {
  ir::Value* x = ctx.required_input(0);
  ir::Value* pos = ctx.required_input(1);
  ir::Value* cos_cache = ctx.required_input(2);
  ir::Value* sin_cache = ctx.required_input(3);
  require_float(ctx, x, "input");
  if (ctx.attr_i("is_packed_batching", 0))
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "RotaryEmbedding: is_packed_batching is not supported");
  if (ctx.attr_f("scale", 1.0f) != 1.0f)
    ctx.fail(ParserErrorCode::kUNSUPPORTED_NODE_ATTR, "RotaryEmbedding: scale other than 1 is not supported");
  const bool interleaved = ctx.attr_i("interleaved", 0) != 0;
  const int64_t r = ImportContext::rank(x);
  if (r != 3 && r != 4)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "RotaryEmbedding: input must be 3-D or 4-D, got " + dims_str(x->shape));
  const int64_t half = ImportContext::rank(cos_cache) == 2 ? cos_cache->shape[1] : -1;
  if (half <= 0) ctx.fail(ParserErrorCode::kINVALID_NODE, "RotaryEmbedding: cos_cache must be [max_position, rotary_dim/2] "
                                                          "with a static last dim, got " + dims_str(cos_cache->shape));
  // The input as [B, S, N, h] (4-D inputs are [B, N, S, h] and go back at the end).
  ir::Value* xs = x;
  int64_t h;
  if (r == 3) {
    const int64_t hidden = x->shape[2];
    int64_t n = ctx.attr_i("num_heads", 0);
    if (n <= 0) {
      if (ctx.attr_i("rotary_embedding_dim", 0) > 0)
        ctx.fail(ParserErrorCode::kINVALID_NODE, "RotaryEmbedding: rotary_embedding_dim needs num_heads for a 3-D input");
      n = hidden / (2 * half);
    }
    if (hidden < 0 || n <= 0 || hidden % n != 0)
      ctx.fail(ParserErrorCode::kINVALID_NODE, "RotaryEmbedding: hidden size " + std::to_string(hidden) +
                                                   " does not split into heads");
    h = hidden / n;
    xs = ctx.reshape(x, {0, 0, n, h}, true);
  } else {
    h = x->shape[3];
    xs = ctx.transpose(x, {0, 2, 1, 3});
  }
  const int64_t rd = 2 * half;
  if (h < 0 || rd > h)
    ctx.fail(ParserErrorCode::kINVALID_NODE, "RotaryEmbedding: rotary dim " + std::to_string(rd) +
                                                 " exceeds the head size " + std::to_string(h));
  // Angles per [B, S, 1, half]: position_ids [B, S], or [1] = offset of position 0.
  ir::Value* ids = pos;
  if (ImportContext::rank(pos) == 1) {
    ir::Value* p = positions(ctx, xs, 1);  // [S]
    ids = ctx.unsqueeze(ctx.elementwise(p, ctx.cast(pos, kiln::DataType::kINT64), kSum), {0});
  }
  auto table = [&](ir::Value* cache) {
    ir::Attrs at;
    at.set("axis", int64_t{0});
    at.set("mode", int64_t{0});
    return ctx.unsqueeze(ctx.add1("Gather", {cache, ids}, std::move(at)), {2});
  };
  ir::Value* c = table(cos_cache);
  ir::Value* s = table(sin_cache);
  Values rot_rest = rd < h ? split(ctx, xs, {rd, h - rd}, 3) : Values{xs};
  ir::Value* rot = rot_rest[0];
  ir::Value *x1, *x2;
  if (interleaved) {
    ir::Value* pairs = ctx.reshape(rot, {0, 0, 0, half, 2}, true);
    x1 = gather(ctx, pairs, 0, 4);
    x2 = gather(ctx, pairs, 1, 4);
  } else {
    Values halves = split(ctx, rot, {half, half}, 3);
    x1 = halves[0];
    x2 = halves[1];
  }
  ir::Value* y1 = ctx.elementwise(ctx.elementwise(x1, c, kProd), ctx.elementwise(x2, s, kProd), kSub);
  ir::Value* y2 = ctx.elementwise(ctx.elementwise(x2, c, kProd), ctx.elementwise(x1, s, kProd), kSum);
  ir::Value* y = interleaved ? ctx.reshape(ctx.concat({ctx.unsqueeze(y1, {4}), ctx.unsqueeze(y2, {4})}, 4), {0, 0, 0, rd}, true)
                             : ctx.concat({y1, y2}, 3);
  if (rd < h) y = ctx.concat({y, rot_rest[1]}, 3);
  return {r == 3 ? ctx.reshape(y, {0, 0, -1}, true) : ctx.transpose(y, {0, 2, 1, 3})};
}

}  // namespace

KILN_REGISTER_IMPORTER("com.microsoft", "Attention", import_ms_attention);
KILN_REGISTER_IMPORTER("com.microsoft", "MultiHeadAttention", import_multi_head_attention);
KILN_REGISTER_IMPORTER("com.microsoft", "RotaryEmbedding", import_rotary_embedding);

}  // namespace kiln::onnx
