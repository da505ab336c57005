// Convolution through sgemm. Every problem is first normalized to >= 2 spatial dims (1-d and 0-d get
// leading unit dims), then:
//   1x1 / stride 1 / no padding   -> batched GEMM over (image, group), no copies;
//   2-d, one input channel/group  -> direct depthwise loops, vectorized over the output width;
//   otherwise                     -> per (image, group, tile of output rows): im2col into a bounded
//                                    per-thread buffer, then GEMM  W_g[Kg, Cg*ks] x col[Cg*ks, tile].
// Transposed convolution: per (image, group, tile of input rows): col = W_g^T x X_tile (GEMM), then
// col2im scatters-adds col into the output (each output channel's plane by one thread).
#include "backends/cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "backends/cpu/gemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define KILN_CONV_X86 1
#define KILN_AVX2 __attribute__((target("avx2,fma")))
#endif
#if defined(__GNUC__) || defined(__clang__)
#define KILN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define KILN_ALWAYS_INLINE inline
#endif

namespace kiln::cpu {
namespace {

constexpr int64_t kColBytes = 2 << 20;  // bound of one im2col / col2im tile (per thread)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// floor(a / b) for b > 0 and any a.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The q in [0, n) with 0 <= q * s + off < limit form [*lo, *hi) (s > 0).
void valid_range(int64_t n, int64_t limit, int64_t s, int64_t off, int64_t* lo, int64_t* hi) {
  int64_t a = off >= 0 ? 0 : ceil_div(-off, s);
  int64_t b = limit - 1 - off < 0 ? 0 : floor_div(limit - 1 - off, s) + 1;
  a = std::min(a, n);
  b = std::clamp(b, a, n);
  *lo = a;
  *hi = b;
}

thread_local std::vector<float> t_col;

float* col_buffer(int64_t n) {
  if (static_cast<int64_t>(t_col.size()) < n) t_col.resize(static_cast<size_t>(n));
  return t_col.data();
}

// A convolution with D >= 2 spatial dims.
struct Conv {
  int64_t N, C, K, G, Cg, Kg;
  int D;
  std::vector<int64_t> in, ker, str, pb, pe, dil, out;
  int64_t in_total = 1, out_total = 1, ks = 1;
};

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("convolution: " + what);
}

Conv normalize(const ConvNdParams& p, bool transposed) {
  const size_t d = p.in_spatial.size();
  require(d <= 12, "at most 12 spatial dims are supported, got " + std::to_string(d));
  require(p.kernel.size() == d && p.stride.size() == d && p.pad_begin.size() == d && p.pad_end.size() == d &&
              p.dilation.size() == d && p.out_spatial.size() == d,
          "in_spatial, kernel, stride, pad_begin, pad_end, dilation and out_spatial must have one entry per "
          "spatial dim (" + std::to_string(d) + ")");
  require(p.N >= 0 && p.C >= 0 && p.K >= 0, "N, C and K must be >= 0");
  require(p.groups >= 1, "groups must be >= 1, got " + std::to_string(p.groups));
  require(p.C % p.groups == 0 && p.K % p.groups == 0,
          "groups (" + std::to_string(p.groups) + ") must divide C (" + std::to_string(p.C) + ") and K (" +
              std::to_string(p.K) + ")");
  (void)transposed;
  Conv c;
  c.N = p.N, c.C = p.C, c.K = p.K, c.G = p.groups, c.Cg = p.C / p.groups, c.Kg = p.K / p.groups;
  const size_t lead = d < 2 ? 2 - d : 0;
  c.D = static_cast<int>(d + lead);
  auto pad = [&](const std::vector<int64_t>& v, int64_t unit) {
    std::vector<int64_t> r(lead, unit);
    r.insert(r.end(), v.begin(), v.end());
    return r;
  };
  c.in = pad(p.in_spatial, 1), c.ker = pad(p.kernel, 1), c.str = pad(p.stride, 1);
  c.pb = pad(p.pad_begin, 0), c.pe = pad(p.pad_end, 0), c.dil = pad(p.dilation, 1), c.out = pad(p.out_spatial, 1);
  for (int i = 0; i < c.D; ++i) {
    require(c.in[i] >= 0 && c.out[i] >= 0, "spatial sizes must be >= 0");
    require(c.ker[i] >= 1 && c.str[i] >= 1 && c.dil[i] >= 1, "kernel, stride and dilation must be >= 1");
    require(c.pb[i] >= 0 && c.pe[i] >= 0, "pads must be >= 0");
    c.in_total *= c.in[i];
    c.out_total *= c.out[i];
    c.ks *= c.ker[i];
  }
  return c;
}

ConvNdParams to_nd(const Conv2dParams& p) {
  return ConvNdParams{p.N,          p.C,          p.K,          p.groups,       {p.H, p.W},
                      {p.R, p.S},   {p.stride_h, p.stride_w},   {p.pad_top, p.pad_left},
                      {p.pad_bottom, p.pad_right}, {p.dil_h, p.dil_w}, {p.P, p.Q}};
}

// Writes bias[k] (or 0) into `len` values of each of `count` rows of y (row k at y + k * ld).
void fill_rows(float* y, int64_t ld, int64_t count, int64_t len, const float* bias) {
  for (int64_t k = 0; k < count; ++k) std::fill(y + k * ld, y + k * ld + len, bias ? bias[k] : 0.0f);
}

// Decodes a flat kernel position into its multi-index (last dim fastest).
void decode(int64_t flat, const std::vector<int64_t>& dims, int64_t* idx) {
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
}

// ---------------------------------------------------------------------------------------------------
// Tiles: positions [begin, end) along spatial dim `dim`, every dim before it of size 1 and every dim
// after it whole; so a tile is a contiguous range of flat positions. The tiled dim is the first one
// larger than 1, so that long 1-d signals (normalized to [1, L]) are tiled too.
struct Tile {
  int dim;
  int64_t begin, end;
};

int tile_dim(const std::vector<int64_t>& sizes) {
  const int D = static_cast<int>(sizes.size());
  for (int d = 0; d < D - 1; ++d)
    if (sizes[d] > 1) return d;
  return D - 1;
}

int64_t inner_size(const std::vector<int64_t>& sizes, int dim) {
  int64_t n = 1;
  for (size_t d = static_cast<size_t>(dim) + 1; d < sizes.size(); ++d) n *= sizes[d];
  return n;
}

// im2col: rows [row_begin, row_end) of the column matrix for the output positions of tile t.
// Row r = ci * ks + kernel position; column = output position within the tile. Each run of columns is
// (part of) one line of the last output dim.
void im2col(const Conv& c, const float* xg, int64_t row_begin, int64_t row_end, Tile t, float* col) {
  const int D = c.D;
  const int64_t Wl = c.in[D - 1], Ql = c.out[D - 1], sl = c.str[D - 1];
  const bool last = t.dim == D - 1;
  const int64_t q_begin = last ? t.begin : 0, q_end = last ? t.end : Ql, run_len = q_end - q_begin;
  const int64_t len = (t.end - t.begin) * inner_size(c.out, t.dim);
  const int64_t runs = run_len > 0 ? len / run_len : 0;
  int64_t kidx[16], od[16];
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t ci = r / c.ks;
    decode(r % c.ks, c.ker, kidx);
    const float* xc = xg + ci * c.in_total;
    float* dst = col + r * len;
    const int64_t offl = kidx[D - 1] * c.dil[D - 1] - c.pb[D - 1];
    int64_t qa, qb;  // valid output columns of a line, within the run
    valid_range(Ql, Wl, sl, offl, &qa, &qb);
    qa = std::clamp(qa, q_begin, q_end);
    qb = std::clamp(qb, qa, q_end);
    for (int d = 0; d < D - 1; ++d) od[d] = 0;
    if (!last) od[t.dim] = t.begin;
    for (int64_t run = 0; run < runs; ++run, dst += run_len) {
      int64_t base = 0;
      bool inside = true;
      for (int d = 0; d < D - 1; ++d) {
        const int64_t id = od[d] * c.str[d] - c.pb[d] + kidx[d] * c.dil[d];
        inside = inside && id >= 0 && id < c.in[d];
        base = base * c.in[d] + id;
      }
      for (int d = D - 2; d >= 0; --d) {  // advance the odometer
        if (++od[d] < c.out[d] || d == 0) break;
        od[d] = 0;
      }
      if (!inside || qa >= qb) {
        std::fill(dst, dst + run_len, 0.0f);
        continue;
      }
      const float* src = xc + base * Wl + qa * sl + offl;  // input of output column qa
      float* valid = dst + (qa - q_begin);                  // output column qa
      std::fill(dst, valid, 0.0f);
      if (sl == 1) {
        std::memcpy(valid, src, static_cast<size_t>(qb - qa) * sizeof(float));
      } else {
        for (int64_t q = 0; q < qb - qa; ++q) valid[q] = src[q * sl];
      }
      std::fill(valid + (qb - qa), dst + run_len, 0.0f);
    }
  }
}

// col2im for the transposed convolution: adds the rows of output channels [kc_begin, kc_end) of col
// (columns: the input positions of tile t) into their output planes. Row r = kc * ks + kernel position.
void col2im(const Conv& c, const float* col, int64_t kc_begin, int64_t kc_end, Tile t, float* yg) {
  const int D = c.D;
  const int64_t Wl = c.in[D - 1], Ol = c.out[D - 1], sl = c.str[D - 1];
  const bool last = t.dim == D - 1;
  const int64_t w_begin = last ? t.begin : 0, w_end = last ? t.end : Wl, run_len = w_end - w_begin;
  const int64_t len = (t.end - t.begin) * inner_size(c.in, t.dim);
  const int64_t runs = run_len > 0 ? len / run_len : 0;
  int64_t kidx[16], id[16];
  for (int64_t kc = kc_begin; kc < kc_end; ++kc) {
    float* yc = yg + kc * c.out_total;
    for (int64_t kf = 0; kf < c.ks; ++kf) {
      decode(kf, c.ker, kidx);
      const float* src = col + (kc * c.ks + kf) * len;
      const int64_t offl = kidx[D - 1] * c.dil[D - 1] - c.pb[D - 1];
      int64_t wa, wb;  // input columns of a line that land inside the output, within the run
      valid_range(Wl, Ol, sl, offl, &wa, &wb);
      wa = std::clamp(wa, w_begin, w_end);
      wb = std::clamp(wb, wa, w_end);
      for (int d = 0; d < D - 1; ++d) id[d] = 0;
      if (!last) id[t.dim] = t.begin;
      for (int64_t run = 0; run < runs; ++run, src += run_len) {
        int64_t base = 0;
        bool inside = true;
        for (int d = 0; d < D - 1; ++d) {
          const int64_t o = id[d] * c.str[d] - c.pb[d] + kidx[d] * c.dil[d];
          inside = inside && o >= 0 && o < c.out[d];
          base = base * c.out[d] + o;
        }
        for (int d = D - 2; d >= 0; --d) {
          if (++id[d] < c.in[d] || d == 0) break;
          id[d] = 0;
        }
        if (!inside || wa >= wb) continue;
        float* dst = yc + base * Ol + wa * sl + offl;  // output of input column wa
        const float* s = src + (wa - w_begin);
        if (sl == 1) {
          for (int64_t w = 0; w < wb - wa; ++w) dst[w] += s[w];
        } else {
          for (int64_t w = 0; w < wb - wa; ++w) dst[w * sl] += s[w];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Depthwise (2-d, one input channel per group). Each input plane is first copied into a zero-padded
// buffer split by column phase: with width stride sw, padded column c goes to phase c % sw, index c / sw.
// Then the taps of 8 consecutive outputs read 8 consecutive floats for any stride and padding, and every
// output is computed by the same branch-free code. Tiles of RP rows x V vectors of 8 outputs keep 4
// independent accumulators in flight.
struct Plane {
  int64_t H, W, R, S, sh, sw, pt, pl, dh, dw, P, Q;
  int64_t rows;   // padded rows: (P - 1) * sh + (R - 1) * dh + 1
  int64_t width;  // floats per (padded row, phase): Q rounded up to whole tiles, plus the taps
  // padded row pr, phase ph starts at buf + (pr * sw + ph) * width
};

Plane make_plane(const Conv& c) {
  Plane d{c.in[0], c.in[1], c.ker[0], c.ker[1], c.str[0], c.str[1], c.pb[0], c.pb[1], c.dil[0], c.dil[1],
          c.out[0], c.out[1], 0, 0};
  d.rows = (d.P - 1) * d.sh + (d.R - 1) * d.dh + 1;
  const int64_t tile_cols = d.Q > 16 ? 32 : d.Q > 8 ? 16 : 8;  // 8 * V of dw_plane_impl
  d.width = (d.Q + tile_cols - 1) / tile_cols * tile_cols + (d.S - 1) * d.dw / d.sw + 1;
  return d;
}

// Fills the padded, phase-split copy of input plane x. row: scratch for one padded row (width * sw floats).
KILN_ALWAYS_INLINE void pad_plane_impl(const Plane& d, const float* x, float* buf, float* row) {
  const int64_t full = d.width * d.sw;  // padded columns held per row
  int64_t lo, hi;                       // padded columns that hold input: [lo, hi)
  valid_range(full, d.W, 1, -d.pl, &lo, &hi);
  for (int64_t pr = 0; pr < d.rows; ++pr) {
    const int64_t ih = pr - d.pt;
    float* dst = buf + pr * full;
    if (ih < 0 || ih >= d.H) {
      std::fill(dst, dst + full, 0.0f);
      continue;
    }
    float* r = d.sw == 1 ? dst : row;
    std::fill(r, r + lo, 0.0f);
    if (hi > lo) std::memcpy(r + lo, x + ih * d.W + lo - d.pl, static_cast<size_t>(hi - lo) * sizeof(float));
    std::fill(r + hi, r + full, 0.0f);
    if (d.sw == 2) {
      float* even = dst;
      float* odd = dst + d.width;
      for (int64_t i = 0; i < d.width; ++i) {
        even[i] = r[2 * i];
        odd[i] = r[2 * i + 1];
      }
    } else if (d.sw > 2) {
      for (int64_t ph = 0; ph < d.sw; ++ph)
        for (int64_t i = 0; i < d.width; ++i) dst[ph * d.width + i] = r[i * d.sw + ph];
    }
  }
}

void pad_plane_generic(const Plane& d, const float* x, float* buf, float* row) { pad_plane_impl(d, x, buf, row); }

typedef float v8f __attribute__((vector_size(32)));  // GNU vector: 1 AVX register or 2 SSE registers

// Outputs rows [p0, p0 + RP) x columns [q0, q0 + 8V) (clipped to Q). taps[r * S + s]: offset of tap (r, s)
// from the padded row p * sh, in floats.
template <int RP, int V>
KILN_ALWAYS_INLINE void dw_tile(const Plane& d, const float* buf, const int64_t* taps, const float* w, float b,
                                float* y, int64_t p0, int64_t q0) {
  v8f acc[RP][V];
  for (int rp = 0; rp < RP; ++rp)
    for (int v = 0; v < V; ++v) acc[rp][v] = v8f{} + b;
  const int64_t row_step = d.sh * d.sw * d.width;
  const float* base = buf + p0 * row_step + q0;
  const int64_t nt = d.R * d.S;
  for (int64_t t = 0; t < nt; ++t) {
    const float wv = w[t];
    const float* src = base + taps[t];
    for (int rp = 0; rp < RP; ++rp)
      for (int v = 0; v < V; ++v) {
        v8f xv;
        std::memcpy(&xv, src + rp * row_step + 8 * v, sizeof xv);
        acc[rp][v] += wv * xv;
      }
  }
  for (int rp = 0; rp < RP; ++rp) {
    float* yr = y + (p0 + rp) * d.Q;
    for (int v = 0; v < V; ++v) {
      const int64_t q = q0 + 8 * v;
      const v8f out = acc[rp][v];  // a copy: taking acc's address would keep it out of registers
      if (q + 8 <= d.Q) {
        std::memcpy(yr + q, &out, sizeof out);
      } else if (q < d.Q) {
        float t[8];
        std::memcpy(t, &out, sizeof t);
        for (int64_t j = 0; j < d.Q - q; ++j) yr[q + j] = t[j];
      }
    }
  }
}

template <int RP, int V>
KILN_ALWAYS_INLINE void dw_rows(const Plane& d, const float* buf, const int64_t* taps, const float* w, float b,
                                float* y, int64_t p_begin, int64_t p_end) {
  for (int64_t p = p_begin; p + RP <= p_end; p += RP)
    for (int64_t q = 0; q < d.Q; q += 8 * V) dw_tile<RP, V>(d, buf, taps, w, b, y, p, q);
}

KILN_ALWAYS_INLINE void dw_plane_impl(const Plane& d, const float* buf, const int64_t* taps, const float* w,
                                      float b, float* y) {
  if (d.Q > 16) {
    dw_rows<1, 4>(d, buf, taps, w, b, y, 0, d.P);
  } else if (d.Q > 8) {
    dw_rows<2, 2>(d, buf, taps, w, b, y, 0, d.P);
    dw_rows<1, 2>(d, buf, taps, w, b, y, d.P / 2 * 2, d.P);
  } else {
    dw_rows<4, 1>(d, buf, taps, w, b, y, 0, d.P);
    dw_rows<1, 1>(d, buf, taps, w, b, y, d.P / 4 * 4, d.P);
  }
}

void dw_plane_generic(const Plane& d, const float* buf, const int64_t* taps, const float* w, float b, float* y) {
  dw_plane_impl(d, buf, taps, w, b, y);
}

#ifdef KILN_CONV_X86
KILN_AVX2 void dw_plane_avx2(const Plane& d, const float* buf, const int64_t* taps, const float* w, float b,
                             float* y) {
  dw_plane_impl(d, buf, taps, w, b, y);
}
KILN_AVX2 void pad_plane_avx2(const Plane& d, const float* x, float* buf, float* row) {
  pad_plane_impl(d, x, buf, row);
}
#endif

thread_local std::vector<float> t_dw_plane;

void depthwise(const Conv& c, const float* x, const float* w, const float* bias, float* y, ThreadPool* pool) {
  const Plane d = make_plane(c);
  std::vector<int64_t> taps(static_cast<size_t>(d.R * d.S));
  for (int64_t r = 0; r < d.R; ++r)
    for (int64_t s = 0; s < d.S; ++s)
      taps[static_cast<size_t>(r * d.S + s)] = (r * d.dh * d.sw + (s * d.dw) % d.sw) * d.width + (s * d.dw) / d.sw;
  auto plane = dw_plane_generic;
  auto pad = pad_plane_generic;
#ifdef KILN_CONV_X86
  if (std::strcmp(detail::gemm_isa(), "avx2") == 0) plane = dw_plane_avx2, pad = pad_plane_avx2;
#endif
  const int64_t buf_size = (d.rows + 1) * d.sw * d.width;  // the plane, then one row of scratch
  auto body = [&](int64_t begin, int64_t end) {
    if (static_cast<int64_t>(t_dw_plane.size()) < buf_size) t_dw_plane.resize(static_cast<size_t>(buf_size));
    float* buf = t_dw_plane.data();
    int64_t padded = -1;  // the (image, input channel) now in buf
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / c.K, k = i % c.K, g = k / c.Kg;  // input channel g
      if (n * c.C + g != padded) {
        padded = n * c.C + g;
        pad(d, x + padded * c.in_total, buf, buf + d.rows * d.sw * d.width);
      }
      plane(d, buf, taps.data(), w + k * c.ks, bias ? bias[k] : 0.0f, y + i * c.out_total);
    }
  };
  const int64_t planes = c.N * c.K;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, c.out_total * c.ks));
  if (pool) {
    pool->parallel_for(planes, grain, body);
  } else {
    body(0, planes);
  }
}

// ---------------------------------------------------------------------------------------------------

bool is_pointwise(const Conv& c) {
  for (int i = 0; i < c.D; ++i)
    if (c.ker[i] != 1 || c.str[i] != 1 || c.pb[i] != 0 || c.pe[i] != 0 || c.out[i] != c.in[i]) return false;
  return true;
}

// 1x1: Y[n, g] (Kg x S) = W_g (Kg x Cg) * X[n, g] (Cg x S), all (n, g) in one batched GEMM.
void pointwise(const Conv& c, const float* x, const float* w, const float* bias, float* y, ThreadPool* pool) {
  const int64_t S = c.in_total;
  if (bias)
    for (int64_t n = 0; n < c.N; ++n) fill_rows(y + n * c.K * S, S, c.K, S, bias);
  detail::GemmBatch2 b;
  b.outer = c.N, b.inner = c.G;
  b.outer_stride_a = 0, b.inner_stride_a = c.Kg * c.Cg;
  b.outer_stride_b = c.C * S, b.inner_stride_b = c.Cg * S;
  b.outer_stride_c = c.K * S, b.inner_stride_c = c.Kg * S;
  detail::sgemm_batched2(false, false, c.Kg, S, c.Cg, 1.0f, w, c.Cg, x, S, bias ? 1.0f : 0.0f, y, S, b, pool);
}

// im2col + GEMM, tiled over output rows.
void general(const Conv& c, const float* x, const float* w, const float* bias, float* y, ThreadPool* pool) {
  const int64_t rows = c.Cg * c.ks;
  const int tdim = tile_dim(c.out);
  const int64_t out0 = c.out[tdim], out_inner = inner_size(c.out, tdim);
  const int64_t row_bytes = std::max<int64_t>(1, rows * out_inner * static_cast<int64_t>(sizeof(float)));
  int64_t tile_rows = std::clamp<int64_t>(kColBytes / row_bytes, 1, out0);
  int64_t tiles = ceil_div(out0, tile_rows);
  const int threads = pool ? pool->num_threads() : 1;
  const int64_t ng = c.N * c.G;
  const bool across_tasks = threads > 1 && ng * tiles >= 2 * threads;
  if (across_tasks) {
    // Prefer a task count that divides evenly among the threads (finer tiles, up to 2x as many).
    for (int64_t t = tiles; t <= std::min(out0, 2 * tiles); ++t) {
      const int64_t tr = ceil_div(out0, t);
      if ((ng * ceil_div(out0, tr)) % threads == 0) {
        tile_rows = tr;
        tiles = ceil_div(out0, tr);
        break;
      }
    }
  }
  auto run_tile = [&](int64_t n, int64_t g, int64_t t, ThreadPool* inner) {
    const int64_t o0 = t * tile_rows, o1 = std::min(out0, o0 + tile_rows);
    const int64_t len = (o1 - o0) * out_inner;
    const float* xg = x + (n * c.C + g * c.Cg) * c.in_total;
    float* yg = y + (n * c.K + g * c.Kg) * c.out_total + o0 * out_inner;
    float* col = col_buffer(rows * len);
    if (inner && rows > 1) {
      const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(len, 1));
      inner->parallel_for(rows, grain, [&](int64_t r0, int64_t r1) { im2col(c, xg, r0, r1, {tdim, o0, o1}, col); });
    } else {
      im2col(c, xg, 0, rows, {tdim, o0, o1}, col);
    }
    if (bias) fill_rows(yg, c.out_total, c.Kg, len, bias + g * c.Kg);
    sgemm(false, false, c.Kg, len, rows, 1.0f, w + g * c.Kg * rows, rows, col, len, bias ? 1.0f : 0.0f, yg,
          c.out_total, inner);
  };
  if (across_tasks) {
    pool->parallel_for(ng * tiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) run_tile(i / tiles / c.G, (i / tiles) % c.G, i % tiles, nullptr);
    });
  } else {
    for (int64_t i = 0; i < ng * tiles; ++i) run_tile(i / tiles / c.G, (i / tiles) % c.G, i % tiles, pool);
  }
}

void forward(const Conv& c, const float* x, const float* w, const float* bias, float* y, ThreadPool* pool) {
  if (c.N == 0 || c.K == 0 || c.out_total == 0) return;
  if (is_pointwise(c)) return pointwise(c, x, w, bias, y, pool);
  if (c.D == 2 && c.Cg == 1) return depthwise(c, x, w, bias, y, pool);
  general(c, x, w, bias, y, pool);
}

}  // namespace

void conv2d_nchw(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y,
                 ThreadPool* pool) {
  forward(normalize(to_nd(p), false), x, w, bias, y, pool);
}

void conv_nd_nchw(const ConvNdParams& p, const float* x, const float* w, const float* bias, float* y,
                  ThreadPool* pool) {
  forward(normalize(p, false), x, w, bias, y, pool);
}

void conv_transpose_nd_nchw(const ConvNdParams& p, const float* x, const float* w, const float* bias, float* y,
                            ThreadPool* pool) {
  const Conv c = normalize(p, true);
  if (c.N == 0 || c.K == 0 || c.out_total == 0) return;
  for (int64_t n = 0; n < c.N; ++n) fill_rows(y + n * c.K * c.out_total, c.out_total, c.K, c.out_total, bias);
  if (c.in_total == 0 || c.C == 0) return;
  const int64_t rows = c.Kg * c.ks;  // GEMM M
  const int tdim = tile_dim(c.in);
  const int64_t in0 = c.in[tdim], in_inner = inner_size(c.in, tdim);
  const int64_t row_bytes = std::max<int64_t>(1, rows * in_inner * static_cast<int64_t>(sizeof(float)));
  const int64_t tile_rows = std::clamp<int64_t>(kColBytes / row_bytes, 1, in0);
  const int64_t tiles = ceil_div(in0, tile_rows);
  const int threads = pool ? pool->num_threads() : 1;
  const int64_t ng = c.N * c.G;
  // One (image, group) writes only its own output planes; its tiles overlap, so they run in order.
  auto run_group = [&](int64_t n, int64_t g, ThreadPool* inner) {
    const float* xg = x + (n * c.C + g * c.Cg) * c.in_total;
    const float* wg = w + g * c.Cg * rows;
    float* yg = y + (n * c.K + g * c.Kg) * c.out_total;
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t i0 = t * tile_rows, i1 = std::min(in0, i0 + tile_rows);
      const int64_t len = (i1 - i0) * in_inner;
      float* col = col_buffer(rows * len);
      sgemm(true, false, rows, len, c.Cg, 1.0f, wg, rows, xg + i0 * in_inner, c.in_total, 0.0f, col, len, inner);
      if (inner) {
        inner->parallel_for(c.Kg, 1, [&](int64_t k0, int64_t k1) { col2im(c, col, k0, k1, {tdim, i0, i1}, yg); });
      } else {
        col2im(c, col, 0, c.Kg, {tdim, i0, i1}, yg);
      }
    }
  };
  if (threads > 1 && ng >= 2 * threads) {
    pool->parallel_for(ng, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) run_group(i / c.G, i % c.G, nullptr);
    });
  } else {
    for (int64_t i = 0; i < ng; ++i) run_group(i / c.G, i % c.G, pool);
  }
}

}  // namespace kiln::cpu
