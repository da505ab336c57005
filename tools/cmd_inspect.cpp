// `kiln inspect`: what a plan file holds — its header, then the engine's I/O tensors, layers and memory.
#include <cinttypes>
#include <cstdio>

#include "cli_common.h"
#include "kiln/runtime.h"
#include "npy.h"
#include "plan/plan_format.h"
#include "plan/plan_reader.h"

namespace kiln::cli {

const char* const kInspectUsage =
    "usage: kiln inspect PLAN [options]\n"
    "\n"
    "Prints the plan's header (format version, target, the Kiln that built it, sizes) and then the\n"
    "engine: its I/O tensors with their optimization profiles, its layers and its memory.\n"
    "\n"
    "options:\n"
    "  -v, --verbose   print Kiln's info and verbose log messages\n"
    "  -h, --help      print this help\n"
    "\n"
    "Exit status: 0 success, 1 failure (unreadable, corrupt or foreign plan), 2 usage error.\n";

int cmd_inspect(const std::vector<std::string>& args) {
  ArgParser ap("inspect");
  ap.flag("-v,--verbose");
  ap.parse(args);
  if (ap.help()) {
    std::fputs(kInspectUsage, stdout);
    return kExitOk;
  }
  if (ap.positional().size() != 1)
    throw UsageError(ap.positional().empty() ? "missing PLAN"
                                             : "expected one plan, got " + std::to_string(ap.positional().size()) +
                                                   " (" + join(ap.positional(), ", ") + ")");
  const std::string path = ap.positional()[0];
  CliLogger logger(ap.verbose());
  std::vector<uint8_t> bytes = npy::read_file(path);

  plan::PlanHeader h;
  try {
    h = plan::read_plan_header(bytes.data(), bytes.size());
  } catch (const std::exception& e) {
    throw Error("'" + path + "' is not a readable Kiln plan: " + e.what());
  }
  std::printf("plan %s: %s\n", path.c_str(), format_bytes(bytes.size()).c_str());
  std::printf("  format version %u, header %zu bytes, payload %s, checksum %016" PRIx64 "\n", h.format_version,
              h.header_size, format_bytes(h.payload_size).c_str(), h.checksum);
  std::printf("  target %s, built by Kiln %s (this is Kiln %s)\n", h.target.c_str(), h.kiln_version.c_str(), KILN_VERSION);
  if (h.header_size + h.payload_size != bytes.size())
    std::printf("  warning: header + payload = %" PRIu64 " bytes, but the file has %zu\n",
                static_cast<uint64_t>(h.header_size) + h.payload_size, bytes.size());

  Runtime runtime(&logger);
  auto engine = runtime.deserialize(bytes.data(), bytes.size());
  if (!engine) throw Error("cannot load plan '" + path + "' (see the error above)");
  std::printf("\n%s", engine->describe().c_str());
  return kExitOk;
}

}  // namespace kiln::cli
