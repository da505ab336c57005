// Transposes for Shuffle (transpose.cuh). The permutation is first collapsed (ir/transpose_collapse.h): unit
// dims are dropped and input dims that stay adjacent in the output are merged, so [N,C,H,W]->[N,H,W,C] becomes [N,C,HW]->[N,HW,C]
// and [B,S,H,D]->[B,H,S,D] stays rank 4. Then one of three kernels runs:
//
//  1. The last dim stays (attention head split/merge [B,S,H,D]<->[B,H,S,D]; any permutation of outer dims):
//     the output is rows of L contiguous input elements. Each thread copies one unit of the widest width
//     (16, 8, 4, 2 or 1 bytes) dividing L * elem_size and both pointers, so a D=64 fp16 row is eight 16-byte
//     loads and stores and a warp moves four whole rows. Index math is 32-bit with multiply-shift division
//     (FastDivU32) unless the tensor has 2^31 units or more.
//  2. The last dim moves: the input's last dim (A, contiguous in the input) and the output's last dim (B,
//     contiguous in the output) form tiles of up to 4096 elements staged through shared memory; the block's
//     reads run along A and its writes along B, both coalesced, and each thread keeps 16 loads in flight
//     before it stores. Both tile extents are powers of two: 64x64 when A and B are both large; when one is
//     small (C=3 in NCHW<->NHWC) the tile is that small extent rounded up (4) by as much of the other as
//     fills 4096 (1024), so no thread idles on a 32x32 tile that holds 3 useful rows. The shared-memory row
//     pitch is padded so neither phase has bank conflicts for any element size (checked by simulating the
//     banks for every tile shape; only a 16x16 tile of 4-byte elements keeps a 2-way conflict).
//  3. Tiny transposes (both extents so small the tile has under 256 elements) and tile grids of 2^31
//     blocks or more gather element by element with kernel 1's index math.
// A reshape-only Shuffle never gets here: it is one cudaMemcpyAsync (data_movement.cu).
//
// Measured on an H200 before this file (one 32x32 tile kernel, 64-bit index math, one element per thread):
// [128,3,224,224] NCHW->NHWC 0.67 ms = 115 GB/s; NHWC->NCHW with C=64 at 112x112 ~1 TB/s; attention head
// split/merge with D=64 ~1 TB/s (BERT b64: 2.6 ms in 96 Shuffles; ViT b128: 18 ms in 208). Predicted with
// these kernels (not yet measured): 2.5-3 TB/s for the attention copies and the 64x64 tiles, ~2-2.5 TB/s
// for C=3 (about 0.03 ms for that fp16 input), against an HBM peak of ~4.8 TB/s.
#include <algorithm>
#include <numeric>

#include "backends/cuda/kernels/common.cuh"
#include "backends/cuda/kernels/transpose.cuh"
#include "ir/transpose_collapse.h"

namespace kiln::cuda::kern {

namespace {

bool g_force_64bit_index = false;

constexpr int64_t kMaxIndex32 = 0x7fffffffLL;

// Plain 64-bit division: the index math of tensors with 2^31 units or more.
struct Div64 {
  using Index = int64_t;
  int64_t divisor = 1;
  Div64() = default;
  explicit Div64(int64_t d) : divisor(d) {}
  __device__ __forceinline__ int64_t div(int64_t n) const { return n / divisor; }
};

// ============================================ 1. Permuted rows ==========================================

// The output, in units of U, is rows of `width` units; row r's multi-index over `dims` (output order) gives
// its input offset through in_stride; within a row units are contiguous on both sides. width 1 with every
// dim listed is an element-by-element gather.
template <class Div> struct PermutedRows {
  using I = typename Div::Index;
  int rank = 0;           // number of row dims, >= 1
  Div dims[kMaxDims];     // row dims in output order, outermost first
  I in_stride[kMaxDims];  // the input stride of each, in units
  Div width;              // units per row
};

template <class U, class Div>
__global__ void __launch_bounds__(kThreads)
    k_permuted_rows(const U* __restrict__ x, U* __restrict__ y, typename Div::Index n, PermutedRows<Div> p) {
  using I = typename Div::Index;
  // Unsigned 32-bit indices cannot wrap: n < 2^31 and the grid has fewer than 2^31 threads.
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I u = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; u < n; u += step) {
    I row = p.width.div(u);
    I off = u - row * p.width.divisor;
    for (int d = p.rank - 1; d > 0; --d) {
      const I q = p.dims[d].div(row);
      off += (row - q * p.dims[d].divisor) * p.in_stride[d];
      row = q;
    }
    y[u] = x[off + row * p.in_stride[0]];
  }
}

// f(U{}) for the unsigned type (or vector) of `bytes` bytes.
template <class F> void dispatch_unit(size_t bytes, F&& f) {
  switch (bytes) {
    case 16: f(uint4{}); break;
    case 8: f(uint2{}); break;
    case 4: f(uint32_t{}); break;
    case 2: f(uint16_t{}); break;
    default: f(uint8_t{}); break;
  }
}

template <class Div, class U>
void launch_rows_with(const KernelContext& ctx, const U* x, U* y, int64_t n, int64_t width, const Dims& dims,
                      const Dims& strides) {
  using I = typename Div::Index;
  PermutedRows<Div> p;
  p.rank = static_cast<int>(dims.size());
  p.width = Div(static_cast<I>(width));
  for (size_t d = 0; d < dims.size(); ++d) {
    p.dims[d] = Div(static_cast<I>(dims[d]));
    p.in_stride[d] = static_cast<I>(strides[d]);
  }
  k_permuted_rows<U, Div><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x, y, static_cast<I>(n), p);
  KILN_CUDA_LAUNCH_CHECK();
}

// n units in rows of `width`; dims/strides (in units) as PermutedRows.
template <class U>
void launch_permuted_rows(const KernelContext& ctx, const void* in, void* out, int64_t n, int64_t width,
                          const Dims& dims, const Dims& strides) {
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxDims))
    ctx.fail("internal: a permuted copy over " + std::to_string(dims.size()) + " dims");
  const U* x = static_cast<const U*>(in);
  U* y = static_cast<U*>(out);
  // Every offset is below n (the input is a permutation of the output), so n bounds them all.
  if (n <= kMaxIndex32 && !g_force_64bit_index) launch_rows_with<FastDivU32>(ctx, x, y, n, width, dims, strides);
  else launch_rows_with<Div64>(ctx, x, y, n, width, dims, strides);
}

// The last dim (od.back() elements, contiguous on both sides) stays; the outer dims od[0..m-2] read the
// input with element strides isj.
void copy_permuted_rows(const KernelContext& ctx, const void* in, void* out, const Dims& od, const Dims& isj,
                        int64_t total, size_t es) {
  const int64_t row_bytes = od.back() * static_cast<int64_t>(es);
  const uint64_t g = static_cast<uint64_t>(row_bytes) | reinterpret_cast<uintptr_t>(in) | reinterpret_cast<uintptr_t>(out);
  size_t unit = 16;
  while (unit > 1 && g % unit != 0) unit /= 2;
  const Dims dims(od.begin(), od.end() - 1);
  Dims strides(dims.size());
  // Outer strides are multiples of the row, so of the unit.
  for (size_t j = 0; j < dims.size(); ++j) strides[j] = isj[j] * static_cast<int64_t>(es) / static_cast<int64_t>(unit);
  const int64_t n = total * static_cast<int64_t>(es) / static_cast<int64_t>(unit);
  const int64_t width = row_bytes / static_cast<int64_t>(unit);
  dispatch_unit(unit, [&](auto tag) { launch_permuted_rows<decltype(tag)>(ctx, in, out, n, width, dims, strides); });
}

// ============================================== 2. Tiles ================================================

constexpr int kTileThreads = 256;
constexpr int kTileElems = 4096;
constexpr int kPerThread = kTileElems / kTileThreads;
// Without a bound the compiler keeps all 16 addresses live (150-250 registers, one block per SM); four
// blocks of 256 threads per SM cap it at 64 registers and keep 1024 threads x 16 loads in flight.
constexpr int kTileMinBlocks = 4;

// Within one outer item: out[a * osa + b] = in[a + b * sb] for a < A, b < B.
template <class I> struct TileParams {
  I A = 0, B = 0;            // the input's last dim and the output's last dim
  I sb = 0, osa = 0;         // the input stride of b, the output stride of a
  int la = 0, lb = 0;        // log2 of the tile's extent along a and along b
  int sm_a = 0, sm_b = 0;    // shared-memory strides of a and b (one of them is 1)
  FastDivU32 tiles_a;        // tiles along a
  FastDivU32 tiles_per_item; // tiles per outer item; blockIdx.x = tile_a + tiles_a * (tile_b + tiles_b * item)
};

// One tile. kFull: the tile lies inside A x B, so no element needs a bounds check.
template <bool kFull, class T, class I>
__device__ __forceinline__ void move_tile(const T* __restrict__ src, T* __restrict__ dst, T* tile,
                                          const TileParams<I>& p, I a0, I b0) {
  const int n = 1 << (p.la + p.lb);  // a multiple of kTileThreads, so `k * kTileThreads < n` is per block
  const int mask_a = (1 << p.la) - 1, mask_b = (1 << p.lb) - 1;
  const int t = static_cast<int>(threadIdx.x);
  // Read with consecutive threads along a (contiguous in the input); all loads issue before any store.
  T v[kPerThread];
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int e = t + k * kTileThreads, ta = e & mask_a, tb = e >> p.la;
    if (k * kTileThreads < n && (kFull || (a0 + ta < p.A && b0 + tb < p.B))) v[k] = src[(a0 + ta) + (b0 + tb) * p.sb];
  }
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int e = t + k * kTileThreads, ta = e & mask_a, tb = e >> p.la;
    if (k * kTileThreads < n && (kFull || (a0 + ta < p.A && b0 + tb < p.B))) tile[ta * p.sm_a + tb * p.sm_b] = v[k];
  }
  __syncthreads();
  // Write with consecutive threads along b (contiguous in the output).
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const int e = t + k * kTileThreads, tb = e & mask_b, ta = e >> p.lb;
    if (k * kTileThreads < n && (kFull || (a0 + ta < p.A && b0 + tb < p.B)))
      dst[(a0 + ta) * p.osa + (b0 + tb)] = tile[ta * p.sm_a + tb * p.sm_b];
  }
}

// One block per tile and outer item, with no loop: a loop over outer items lets the compiler hoist every
// per-element index out of it, which took 150-250 registers (one block per SM) or spilled.
template <class T, class I>
__global__ void __launch_bounds__(kTileThreads, kTileMinBlocks)
    k_transpose_tiles(const T* __restrict__ x, T* __restrict__ y, TileParams<I> p, Walk<2> outer) {
  extern __shared__ __align__(16) unsigned char tile_bytes[];
  T* tile = reinterpret_cast<T*>(tile_bytes);
  const uint32_t item = p.tiles_per_item.div(blockIdx.x);
  const uint32_t t = blockIdx.x - item * p.tiles_per_item.divisor;
  const uint32_t tile_b = p.tiles_a.div(t), tile_a = t - tile_b * p.tiles_a.divisor;
  const I a0 = static_cast<I>(tile_a) << p.la, b0 = static_cast<I>(tile_b) << p.lb;
  int64_t base[2];
  outer.offsets(item, base);
  const bool full = a0 + (I{1} << p.la) <= p.A && b0 + (I{1} << p.lb) <= p.B;
  if (full) move_tile<true>(x + base[0], y + base[1], tile, p, a0, b0);
  else move_tile<false>(x + base[0], y + base[1], tile, p, a0, b0);
}

struct TileShape {
  int la = 0, lb = 0;
  int sm_a = 0, sm_b = 0;
  size_t smem_bytes = 0;
};

// The tile for extents A (along the input's last dim) and B; false when it would hold under 256 elements.
bool pick_tile(int64_t A, int64_t B, size_t es, TileShape* t) {
  auto ceil_log2 = [](int64_t v) {
    int l = 0;
    while (l < 12 && (int64_t{1} << l) < v) ++l;
    return l;
  };
  int la = ceil_log2(A), lb = ceil_log2(B);
  if (la >= 6 && lb >= 6) la = lb = 6;
  else if (la < 6) lb = std::min(lb, 12 - la);
  else la = std::min(la, 12 - lb);
  if (la + lb < 8) return false;
  const int ta = 1 << la, tb = 1 << lb, small = std::min(ta, tb);
  // Rows of the small extent, each holding the large one plus a pad that puts the rows a warp touches at
  // once in different banks (for 8-byte elements a warp's access splits into two half-warps).
  const int e = static_cast<int>(es);
  const int pad = e <= 4 ? std::max(4 / e, 32 / small) : std::max(1, 16 / small);
  const int pitch = std::max(ta, tb) + pad;
  t->la = la;
  t->lb = lb;
  t->sm_a = ta >= tb ? 1 : pitch;
  t->sm_b = ta >= tb ? pitch : 1;
  t->smem_bytes = static_cast<size_t>(small) * pitch * es;  // at most 64 * 65 * 8 = 33280 bytes
  return true;
}

template <class T, class I>
void launch_tiles(const KernelContext& ctx, const void* in, void* out, int64_t A, int64_t B, int64_t sb, int64_t osa,
                  const TileShape& t, int64_t tiles_a, int64_t blocks, int64_t tiles_per_item, const Walk<2>& outer) {
  TileParams<I> p;
  p.A = static_cast<I>(A);
  p.B = static_cast<I>(B);
  p.sb = static_cast<I>(sb);
  p.osa = static_cast<I>(osa);
  p.la = t.la;
  p.lb = t.lb;
  p.sm_a = t.sm_a;
  p.sm_b = t.sm_b;
  p.tiles_a = FastDivU32(static_cast<uint32_t>(tiles_a));
  p.tiles_per_item = FastDivU32(static_cast<uint32_t>(tiles_per_item));
  k_transpose_tiles<T, I><<<static_cast<unsigned>(blocks), kTileThreads, t.smem_bytes, ctx.stream()>>>(
      static_cast<const T*>(in), static_cast<T*>(out), p, outer);
  KILN_CUDA_LAUNCH_CHECK();
}

}  // namespace

void set_transpose_force_64bit_index(bool on) { g_force_64bit_index = on; }

bool is_permutation(const std::vector<int64_t>& perm, size_t rank) {
  if (perm.size() != rank) return false;
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) return false;
    seen[p] = true;
  }
  return true;
}

void launch_transpose(const KernelContext& ctx, const void* in, void* out, const Dims& shape,
                      const std::vector<int64_t>& perm, size_t es) {
  if (!is_permutation(perm, shape.size()))
    ctx.fail("transpose " + dims_str(perm) + " is not a permutation of the dims of " +
             dims_str(shape));
  if (es != 1 && es != 2 && es != 4 && es != 8) ctx.fail("unsupported element size " + std::to_string(es));
  const int64_t total = volume(shape);
  if (total <= 0) return;
  const ir::CollapsedTranspose c = ir::collapse_transpose(shape, perm);
  const size_t m = c.in_dims.size();
  if (m <= 1) {
    if (in != out)
      KILN_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<size_t>(total) * es, cudaMemcpyDeviceToDevice, ctx.stream()));
    return;
  }
  if (m > static_cast<size_t>(kMaxDims))
    ctx.fail("the CUDA transpose handles at most " + std::to_string(kMaxDims) + " dims after merging, got " +
             std::to_string(m) + " for " + dims_str(shape));
  const Dims is = contiguous_strides(c.in_dims);
  Dims od(m), isj(m);  // output dims and the input stride of each
  for (size_t j = 0; j < m; ++j) {
    od[j] = c.in_dims[c.perm[j]];
    isj[j] = is[c.perm[j]];
  }
  if (c.perm[m - 1] == static_cast<int64_t>(m) - 1) return copy_permuted_rows(ctx, in, out, od, isj, total, es);

  // The last dim moves: the input's last dim sits at output position ja.
  const Dims os = contiguous_strides(od);
  size_t ja = 0;
  while (c.perm[ja] != static_cast<int64_t>(m) - 1) ++ja;
  const int64_t A = od[ja], B = od[m - 1], sb = isj[m - 1], osa = os[ja];
  TileShape t;
  if (pick_tile(A, B, es, &t)) {
    const int64_t tiles_a = (A + (int64_t{1} << t.la) - 1) >> t.la, tiles_b = (B + (int64_t{1} << t.lb) - 1) >> t.lb;
    Dims odims;
    std::vector<Dims> ostr(2);
    for (size_t j = 0; j + 1 < m; ++j)
      if (j != ja) {
        odims.push_back(od[j]);
        ostr[0].push_back(isj[j]);
        ostr[1].push_back(os[j]);
      }
    const int64_t n_outer = volume(odims);
    // A tile holds at least one element, so blocks <= total; they must fit one grid dimension.
    const int64_t blocks = tiles_a * tiles_b * n_outer;
    if (blocks <= kMaxIndex32) {
      const Walk<2> ow = make_walk<2>(ctx, odims, ostr);
      // B * sb and A * osa are at most the volume, so these cannot overflow.
      const bool fits32 = !g_force_64bit_index && A + kTileElems <= kMaxIndex32 && B + kTileElems <= kMaxIndex32 &&
                          (A - 1) + (B - 1) * sb <= kMaxIndex32 && (A - 1) * osa + (B - 1) <= kMaxIndex32;
      dispatch_size(es, [&](auto tag) {
        using T = decltype(tag);
        if (fits32) launch_tiles<T, uint32_t>(ctx, in, out, A, B, sb, osa, t, tiles_a, blocks, tiles_a * tiles_b, ow);
        else launch_tiles<T, int64_t>(ctx, in, out, A, B, sb, osa, t, tiles_a, blocks, tiles_a * tiles_b, ow);
      });
      return;
    }
  }
  // Too small for a tile (or too many tiles for one grid): gather element by element.
  dispatch_unit(es, [&](auto tag) { launch_permuted_rows<decltype(tag)>(ctx, in, out, total, 1, od, isj); });
}

bool fold_shuffle(const Dims& x, const std::vector<int64_t>& p1, const Dims& mid, const std::vector<int64_t>& p2,
                  Dims* shape, std::vector<int64_t>* perm) {
  const size_t rx = x.size(), rm = mid.size();
  if (!is_permutation(p1, rx) || !is_permutation(p2, rm)) return false;
  const int64_t total = volume(x);
  if (total <= 0 || volume(mid) != total) return false;
  Dims t(rx);  // the first transpose's output
  for (size_t j = 0; j < rx; ++j) t[j] = x[p1[j]];
  // Prefix products of both shapes; their union cuts the flat range into atoms, and the reshape is a split
  // and merge of dims exactly when every atom is a whole number of elements of the finer cut.
  auto prefixes = [](const Dims& d) {
    Dims p(d.size() + 1, 1);
    for (size_t i = 0; i < d.size(); ++i) p[i + 1] = p[i] * d[i];
    return p;
  };
  const Dims pt = prefixes(t), pm = prefixes(mid);
  Dims bounds;  // atom k spans flat strides (bounds[k-1], bounds[k]]
  for (int64_t b : pt)
    if (b > 1) bounds.push_back(b);
  for (int64_t b : pm)
    if (b > 1) bounds.push_back(b);
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  Dims atom(bounds.size());
  for (size_t k = 0; k < bounds.size(); ++k) {
    const int64_t prev = k ? bounds[k - 1] : 1;
    if (bounds[k] % prev != 0) return false;
    atom[k] = bounds[k] / prev;
  }
  // The atoms of a dim spanning prefix products (lo, hi].
  auto atoms_of = [&](int64_t lo, int64_t hi) {
    const size_t first = std::upper_bound(bounds.begin(), bounds.end(), lo) - bounds.begin();
    const size_t last = std::upper_bound(bounds.begin(), bounds.end(), hi) - bounds.begin();
    return std::make_pair(first, last);
  };
  // x viewed with each dim split into its atoms: x dim i is t dim j with p1[j] == i.
  std::vector<int64_t> inv1(rx);
  for (size_t j = 0; j < rx; ++j) inv1[p1[j]] = static_cast<int64_t>(j);
  std::vector<int64_t> pos_in_x(atom.size(), -1);
  Dims xs;
  for (size_t i = 0; i < rx; ++i) {
    const size_t j = static_cast<size_t>(inv1[i]);
    const auto [first, last] = atoms_of(pt[j], pt[j + 1]);
    for (size_t k = first; k < last; ++k) {
      pos_in_x[k] = static_cast<int64_t>(xs.size());
      xs.push_back(atom[k]);
    }
  }
  // The output: y dim j is mid dim p2[j], made of that dim's atoms in order.
  std::vector<int64_t> pr;
  for (size_t j = 0; j < rm; ++j) {
    const size_t d = static_cast<size_t>(p2[j]);
    const auto [first, last] = atoms_of(pm[d], pm[d + 1]);
    for (size_t k = first; k < last; ++k) pr.push_back(pos_in_x[k]);
  }
  if (!is_permutation(pr, xs.size())) return false;  // cannot happen when the atoms cover both shapes
  if (ir::collapse_transpose(xs, pr).in_dims.size() > static_cast<size_t>(kMaxDims)) return false;
  *shape = std::move(xs);
  *perm = std::move(pr);
  return true;
}

}  // namespace kiln::cuda::kern
