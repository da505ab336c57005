// `kiln`: the command line. Dispatches to one verb; each verb lives in its own cmd_*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli_common.h"
#include "compare_launch.h"

namespace {

using namespace kiln::cli;

struct Verb {
  const char* name;
  const char* summary;
  int (*fn)(const std::vector<std::string>&);
  const char* const* usage;
};

const Verb kVerbs[] = {
    {"build", "build a plan from an ONNX model", cmd_build, &kBuildUsage},
    {"run", "run a plan on inputs from .npy/.npz files (or random data)", cmd_run, &kRunUsage},
    {"inspect", "describe a plan: header, I/O tensors, layers, memory", cmd_inspect, &kInspectUsage},
    {"bench", "time a plan's executions: latency percentiles and throughput", cmd_bench, &kBenchUsage},
    {"compare", "compare an ONNX model's outputs on Kiln with ONNX Runtime's (Python)", cmd_compare, &kCompareUsage},
};

const Verb* find_verb(const std::string& name) {
  for (auto& v : kVerbs)
    if (name == v.name) return &v;
  return nullptr;
}

void print_help(FILE* out) {
  std::fprintf(out,
               "kiln %s: build and run inference plans\n"
               "\n"
               "usage: kiln VERB [options]\n"
               "\n"
               "verbs:\n",
               KILN_VERSION);
  for (auto& v : kVerbs) std::fprintf(out, "  %-9s %s\n", v.name, v.summary);
  std::fprintf(out,
               "\n"
               "'kiln VERB --help' describes a verb's options. 'kiln --version' prints the version.\n"
               "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(stderr);
    return kExitUsage;
  }
  std::string first = argv[1];
  if (first == "-h" || first == "--help") {
    print_help(stdout);
    return kExitOk;
  }
  if (first == "--version" || first == "version") {
    std::printf("kiln %s\n", KILN_VERSION);
    return kExitOk;
  }
  if (first == "help") {
    if (argc < 3) {
      print_help(stdout);
      return kExitOk;
    }
    const Verb* v = find_verb(argv[2]);
    if (!v) {
      std::fprintf(stderr, "kiln: unknown verb '%s'\n\n", argv[2]);
      print_help(stderr);
      return kExitUsage;
    }
    std::fputs(*v->usage, stdout);
    return kExitOk;
  }
  const Verb* v = find_verb(first);
  if (!v) {
    std::fprintf(stderr, "kiln: unknown verb '%s'\n\n", first.c_str());
    print_help(stderr);
    return kExitUsage;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  // Each handler flushes stdout first so that what was printed so far comes before the error.
  try {
    return v->fn(args);
  } catch (const UsageError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln %s: %s\nsee 'kiln %s --help'\n", v->name, e.what(), v->name);
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln %s: error: out of memory\n", v->name);
    return kExitFailure;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln %s: error: %s\n", v->name, e.what());
    return kExitFailure;
  }
}
