// `kiln bench PLAN`: what trtexec does for a built plan. Loads it, fills the inputs with random data (in
// device memory for GPU plans, so staging copies are not timed), warms up, then times executions:
// min/mean/median/p90/p95/p99 latency and throughput. GPU plans are timed with CUDA events on one
// stream, with CUDA-graph replay (the default) or without (--no-graph, or both with --compare-graph).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cli_common.h"
#include "layer_profile.h"
#include "kiln/runtime.h"
#include "npy.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {

const char* const kBenchUsage =
    "usage: kiln bench PLAN [options]\n"
    "\n"
    "Times a plan's executions on random inputs: latency min/mean/median/p90/p95/p99 and throughput.\n"
    "GPU plans run on device buffers and one CUDA stream, timed with CUDA events.\n"
    "\n"
    "options:\n"
    "  --shapes NAME:DIMS[,...]  shapes for dynamic inputs (e.g. input:8x3x224x224)\n"
    "  --warmup N                untimed executions first (default 10)\n"
    "  --iterations N            timed executions (default 100)\n"
    "  --duration S              time executions for S seconds instead of a count\n"
    "  --no-graph                GPU: no CUDA graph capture/replay\n"
    "  --compare-graph           GPU: time with and without CUDA graphs, one after the other\n"
    "  --batch-dim N             the dimension of input 0 that counts samples for throughput (default 0)\n"
    "  --profile                 then more executions timing every layer: a table of the slowest layers\n"
    "                            with their TFLOP/s and GB/s, and the time per op type\n"
    "  --profile-runs N          profiled executions, combined by their median per layer (default 10)\n"
    "  --top N                   layers in the profile table (default 30; 0 = all)\n"
    "  -v, --verbose             log everything\n";

namespace {

struct Stats {
  double min, mean, median, p90, p95, p99;
  int64_t count;
};

Stats summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(ms.size()))) - 1;
    return ms[std::min(i, ms.size() - 1)];
  };
  double sum = 0;
  for (double v : ms) sum += v;
  size_t m = ms.size();
  double median = m % 2 ? ms[m / 2] : 0.5 * (ms[m / 2 - 1] + ms[m / 2]);
  return {ms.front(), sum / static_cast<double>(m), median, pct(90), pct(95), pct(99), static_cast<int64_t>(m)};
}

void print_stats(const char* label, const Stats& s, int64_t samples) {
  std::printf("%-10s latency over %lld runs: min %s, mean %s, median %s, p90 %s, p95 %s, p99 %s; "
              "throughput %.1f inferences/s (%.1f samples/s)\n",
              label, static_cast<long long>(s.count), format_ms(s.min).c_str(), format_ms(s.mean).c_str(),
              format_ms(s.median).c_str(), format_ms(s.p90).c_str(), format_ms(s.p95).c_str(), format_ms(s.p99).c_str(),
              1000.0 / s.mean, 1000.0 * static_cast<double>(samples) / s.mean);
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  ArgParser ap("bench");
  ap.option("--shapes", true);
  ap.option("--warmup");
  ap.option("--iterations");
  ap.option("--duration");
  ap.option("--batch-dim");
  ap.flag("--no-graph");
  ap.flag("--compare-graph");
  ap.flag("--profile");
  ap.option("--profile-runs");
  ap.option("--top");
  ap.flag("-v,--verbose");
  ap.parse(args);
  if (ap.help()) {
    std::fputs(kBenchUsage, stdout);
    return kExitOk;
  }
  if (ap.positional().size() != 1) throw UsageError("expected one PLAN");
  if (ap.has("--iterations") && ap.has("--duration")) throw UsageError("--iterations and --duration exclude each other");
  const int64_t warmup = ap.has("--warmup") ? parse_int(ap.get("--warmup"), "--warmup", 0, 1000000) : 10;
  const int64_t iterations = ap.has("--iterations") ? parse_int(ap.get("--iterations"), "--iterations", 1, 10000000) : 100;
  const double duration = ap.has("--duration") ? static_cast<double>(parse_int(ap.get("--duration"), "--duration", 1, 3600)) : 0;
  const int64_t batch_dim = ap.has("--batch-dim") ? parse_int(ap.get("--batch-dim"), "--batch-dim", 0, 7) : 0;
  if ((ap.has("--profile-runs") || ap.has("--top")) && !ap.has("--profile"))
    throw UsageError("--profile-runs and --top go with --profile");
  const int64_t profile_runs =
      ap.has("--profile-runs") ? parse_int(ap.get("--profile-runs"), "--profile-runs", 1, 100000) : 10;
  const int64_t profile_top = ap.has("--top") ? parse_int(ap.get("--top"), "--top", 0, 1000000) : 30;
  CliLogger logger(ap.verbose());
  std::vector<uint8_t> plan = npy::read_file(ap.positional()[0]);
  Runtime runtime(&logger);
  auto engine = runtime.deserialize(plan.data(), plan.size());
  if (!engine) throw Error("cannot load plan '" + ap.positional()[0] + "' (see the error above)");
  auto ctx = engine->create_execution_context();
  std::map<std::string, Dims> given;
  for (auto& [n, d] : parse_shape_list(ap.all("--shapes"), "--shapes")) given[n] = d;
  for (int i = 0; i < engine->num_io_tensors(); ++i) {
    const std::string& n = engine->io_name(i);
    if (engine->io_mode(n) != TensorIOMode::kINPUT) continue;
    Dims s = engine->io_shape(n);
    if (given.count(n)) s = given[n];
    else if (!dims_known(s)) s = engine->profile_shapes(n, 0)[1];  // the profile's opt shape
    if (!ctx->set_input_shape(n, s)) throw Error("input '" + n + "': shape " + dims_x(s) + " refused (see above)");
  }
  const bool gpu = ctx->on_gpu();
  std::vector<void*> buffers;
  std::vector<std::vector<uint8_t>> host;
  int64_t samples = 1;
  for (int i = 0; i < engine->num_io_tensors(); ++i) {
    const std::string& n = engine->io_name(i);
    Dims s = ctx->get_tensor_shape(n);
    if (!dims_known(s)) throw Error("output '" + n + "' has a data-dependent shape; kiln bench cannot size it");
    DataType dt = engine->io_dtype(n);
    int64_t count = volume(s);
    if (i == 0 && static_cast<int64_t>(s.size()) > batch_dim) samples = s[batch_dim];
    host.emplace_back(static_cast<size_t>(count) * dtype_size(dt));
    if (engine->io_mode(n) == TensorIOMode::kINPUT) fill_random(host.back().data(), dt, count, 1, n);
    void* p = host.back().data();
#ifdef KILN_WITH_CUDA
    if (gpu) {
      void* d = nullptr;
      if (cudaMalloc(&d, std::max<size_t>(host.back().size(), 1)) != cudaSuccess) throw Error("cudaMalloc failed");
      cudaMemcpy(d, p, host.back().size(), cudaMemcpyHostToDevice);
      p = d;
    }
#endif
    buffers.push_back(p);
    ctx->set_tensor_address(n, p);
  }
  std::printf("%s: target %s, %d layers, activation memory %s\n", ap.positional()[0].c_str(), engine->target().c_str(),
              engine->num_layers(), format_bytes(static_cast<uint64_t>(ctx->activation_bytes())).c_str());

  auto time_runs = [&](bool graphs) {
    std::vector<double> ms;
#ifdef KILN_WITH_CUDA
    if (gpu) {
      setenv("KILN_CUDA_GRAPHS", graphs ? "1" : "0", 1);
      auto fresh = engine->create_execution_context();  // graph use is decided per context's captures
      for (int i = 0; i < engine->num_io_tensors(); ++i) {
        const std::string& n = engine->io_name(i);
        if (engine->io_mode(n) == TensorIOMode::kINPUT) fresh->set_input_shape(n, ctx->get_tensor_shape(n));
        fresh->set_tensor_address(n, buffers[i]);
      }
      cudaStream_t stream;
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      for (int64_t i = 0; i < warmup; ++i)
        if (!fresh->execute_async(stream)) throw Error("execution failed (see above)");
      cudaStreamSynchronize(stream);
      auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; duration > 0 || i < iterations; ++i) {
        cudaEventRecord(a, stream);
        if (!fresh->execute_async(stream)) throw Error("execution failed (see above)");
        cudaEventRecord(b, stream);
        cudaEventSynchronize(b);
        float t = 0;
        cudaEventElapsedTime(&t, a, b);
        ms.push_back(t);
        if (duration > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= duration)
          break;
      }
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      cudaStreamDestroy(stream);
      return summarize(ms);
    }
#endif
    (void)graphs;
    for (int64_t i = 0; i < warmup; ++i)
      if (!ctx->execute()) throw Error("execution failed (see above)");
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; duration > 0 || i < iterations; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      if (!ctx->execute()) throw Error("execution failed (see above)");
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      if (duration > 0 && std::chrono::duration<double>(t1 - start).count() >= duration) break;
    }
    return summarize(ms);
  };
  if (gpu && ap.has("--compare-graph")) {
    print_stats("graph", time_runs(true), samples);
    print_stats("no-graph", time_runs(false), samples);
  } else {
    print_stats(gpu ? (ap.has("--no-graph") ? "no-graph" : "graph") : "cpu", time_runs(!ap.has("--no-graph")), samples);
  }
  if (ap.has("--profile")) {
    ctx->profiling = true;
    std::vector<std::vector<LayerTiming>> profiles;
    for (int64_t i = 0; i < profile_runs; ++i) {
      if (!ctx->execute()) throw Error("profiled execution failed (see above)");
      profiles.push_back(ctx->last_profile());
    }
    ctx->profiling = false;
    print_layer_profile(median_profile(profiles), static_cast<int>(profile_top));
  }
#ifdef KILN_WITH_CUDA
  if (gpu)
    for (void* p : buffers) cudaFree(p);
#endif
  return kExitOk;
}

}  // namespace kiln::cli
