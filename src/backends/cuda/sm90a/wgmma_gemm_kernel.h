// Kiln's wgmma + TMA GEMM kernel (sm_90a): y[m, n] = act(a[m, k] w[n, k]^T + bias[n] + residual[m, n]) for the
// products of a few hundred rows that a transformer runs at batch 1 (cublaslt/wgmma_gemm.h says when the
// MatrixMultiply kernel times it and why). Compiled only for sm_90a, in an object library of its own
// (cmake/cuda_backend.cmake): wgmma and its descriptors exist on Hopper alone.
//
// The kernel: one warpgroup (128 threads) a block computes a tile of BM x BN outputs (BM 64 or 128: one or two
// m64 wgmma rows) over its share of K; thread 0 issues the TMA loads of a ring of 64-K stages (a's and w's tiles,
// 128-byte swizzled, the layout wgmma's descriptors read) on mbarriers, as many stages as the block has chunks
// (at most 4-8), one chunk's wgmmas in flight while the next is issued; each column of tiles starts its walk
// along K at a chunk of its own (the blocks of a row share a's chunks: L2 is not asked for the same lines by
// all of them at once). With a multicast width C, C neighbouring tiles of a row form a cluster along x and
// share a's loads: each block loads BM / C of a's rows into all C (TMA multicast), and refills a stage only
// when all C have read it (an "empty" mbarrier a stage, arrived on from every block of the group); the S blocks of a tile form a cluster
// along z (split-K) and add their float32 partials through distributed shared memory in a fixed order (rank 0's
// first), each block finishing BM / S rows (epilogue, store). Launched programmatically, each block loads its
// first stages of weights before it waits for the kernel before. bench/wgmma_proto/ is the same kernel alone,
// timed against cuBLASLt.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/kernels/gemm_rows.h"

namespace kiln::cuda {

struct WgmmaTile {
  int m = 64, n = 64;
  std::string name() const { return std::to_string(m) + "x" + std::to_string(n); }
  bool operator==(const WgmmaTile& o) const { return m == o.m && n == o.n; }
};

// The tiles the kernel is built for, in the order they are timed.
inline constexpr WgmmaTile kWgmmaTiles[] = {{64, 64}, {64, 128}, {128, 64}, {128, 128}};

// The K a stage takes (one 128-byte swizzle row of 16-bit elements): K must be a multiple.
constexpr int kWgmmaChunk = 64;
// Split counts the cluster reduction supports (each divides every tile's rows).
constexpr int kWgmmaMaxSplits = 8;

// Multicast widths: how many neighbouring tiles of a row share their loads of a (TMA multicast within a cluster),
// each block loading tile.m / width of its rows into all of them. Why: every tile of a row reads the same a;
// with one block a tile, a tile of 128 x 64 loads 16 KB of a for 8 KB of weights each chunk, and on the H200
// the blocks together took ~2 TB/s from L2 however many they were (bench/NOTES.md, twenty-second session).
inline constexpr int kWgmmaMulticasts[] = {1, 2, 4};

// Why `tile` cannot run `splits` x `multicast` (the cluster holds both: at most 8 blocks, the portable cluster
// size), or nullptr.
inline const char* wgmma_multicast_refusal(WgmmaTile tile, int splits, int multicast) {
  if (multicast != 1 && multicast != 2 && multicast != 4) return "multicast width not 1, 2 or 4";
  if ((tile.m / multicast) % 8 != 0) return "multicast share not whole 8-row swizzle atoms";
  if (splits * multicast > 8) return "cluster of more than 8 blocks";
  return nullptr;
}

// One launch of the kernel on a tile: blocks a tile (split-K) and tiles of a row sharing a's loads (multicast).
struct WgmmaConfig {
  int splits = 1, multicast = 1;
  // "x2", "x2 m4": the timing cache's record and the log's (a width of 1 reads as before multicast existed).
  std::string name() const {
    std::string s = "x";
    s += std::to_string(splits);
    if (multicast > 1) {
      s += " m";
      s += std::to_string(multicast);
    }
    return s;
  }
  bool operator==(const WgmmaConfig& o) const { return splits == o.splits && multicast == o.multicast; }
};

// The configurations `tile` can run for y[m, n] = a[m, k] w[n, k]^T, fewest splits first: 1, 2, 4, 8 splits while
// each keeps at least two 64-K chunks (one alone starves the ring) and the blocks number at most `max_blocks`
// (one split always), each with every multicast width that fits the cluster and divides the row's tiles (a
// width that does not leaves a column of blocks that loads and stores nothing of its own). The matrix multiply
// times those within two blocks an SM (cublaslt/wgmma_gemm.h); bench/wgmma_proto/ all of them.
inline std::vector<WgmmaConfig> wgmma_tile_configs(int64_t m, int64_t n, int64_t k, WgmmaTile tile,
                                                   int64_t max_blocks) {
  const int64_t columns = (n + tile.n - 1) / tile.n, tiles = (m + tile.m - 1) / tile.m * columns;
  const int64_t chunks = k / kWgmmaChunk;
  std::vector<WgmmaConfig> out;
  for (int s = 1; s <= kWgmmaMaxSplits; s *= 2)
    if (s == 1 || (chunks >= 2 * s && tiles * s <= max_blocks))
      for (int c : kWgmmaMulticasts)
        if (!wgmma_multicast_refusal(tile, s, c) && columns % c == 0) out.push_back({s, c});
  return out;
}

// Launches the kernel on `tile` in `config` (splits 1, 2, 4 or 8, at most k / kWgmmaChunk; a multicast width
// wgmma_multicast_refusal accepts): float16 or bfloat16, a and w 16-byte aligned (TMA). False, with *why, when
// the launch fails (no sm_90a device, a refused configuration); the caller checked the problem
// (cublaslt/wgmma_gemm.h).
bool launch_wgmma_gemm(cudaStream_t stream, const GemmKernelArgs& args, WgmmaTile tile, WgmmaConfig config,
                       std::string* why);

}  // namespace kiln::cuda
