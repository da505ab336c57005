// `kiln compare`: run an ONNX model on Kiln and on a reference (ONNX Runtime or Kiln's CPU backend) and
// compare the outputs. The comparison lives in Python (the kiln.compare module: ONNX Runtime, numpy and
// the onnx package are Python libraries), so this verb only finds that module and replaces this process
// with `python3 -c <bootstrap> ARGS...`; the bootstrap runs kiln.compare.main(ARGS) and explains a
// missing `kiln` package better than `python3 -m kiln.compare` would.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli_common.h"
#include "compare_launch.h"

namespace kiln::cli {

const char* const kCompareUsage =
    "usage: kiln compare MODEL.onnx [options]\n"
    "\n"
    "Runs the model on Kiln and on a reference with the same inputs and reports, per output, the max\n"
    "absolute and relative error and whether it is within tolerance (|kiln - ref| <= atol + rtol*|ref|).\n"
    "\n"
    "main options (run 'kiln compare --help' for all of them):\n"
    "  --ref onnxruntime|kiln-cpu   the reference (default onnxruntime)\n"
    "  --atol A, --rtol R           tolerances (default 1e-5 each)\n"
    "  --shapes NAME:DIMS[,...]     shapes of inputs with dynamic dimensions\n"
    "  --inputs FILE.npz            input arrays by name (else seeded random data, --seed S)\n"
    "  --per-layer                  compare every intermediate tensor; name the first layer that diverges\n"
    "\n"
    "It is implemented by the Python module kiln.compare, found beside this executable (../python) or on\n"
    "PYTHONPATH, and run with python3 (or the interpreter named by KILN_PYTHON); it needs numpy, onnx and,\n"
    "for the default reference, onnxruntime.\n"
    "Exit status: 0 all within tolerance, 1 a mismatch or a failure, 2 usage error.\n";

namespace {

namespace fs = std::filesystem;

const char* const kBootstrap =
    "import sys\n"
    "try:\n"
    "    import kiln.compare as c\n"
    "except ImportError as e:\n"
    "    sys.stderr.write('kiln compare: cannot import the kiln Python package with %s (%s); put the folder that '\n"
    "                     'holds it (the repository\\'s python/) on PYTHONPATH\\n' % (sys.executable, e))\n"
    "    sys.exit(1)\n"
    "sys.exit(c.main(sys.argv[1:]))\n";

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

fs::path self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p;
}

}  // namespace

std::vector<fs::path> compare_package_candidates(const fs::path& exe) {
  if (exe.empty()) return {};
  fs::path dir = exe.parent_path();
  // A build tree inside the repository (build-x/kiln -> python/), the executable beside the package,
  // and an installed layout (bin/kiln -> share/kiln/python/).
  return {dir.parent_path() / "python", dir / "python", dir.parent_path() / "share" / "kiln" / "python"};
}

CompareLaunch plan_compare_launch(const fs::path& exe, const std::vector<std::string>& args,
                                  const std::string& env_python, const std::string& env_pythonpath) {
  CompareLaunch l;
  l.python = env_python.empty() ? "python3" : env_python;
  l.argv = {l.python, "-c", kBootstrap};
  l.argv.insert(l.argv.end(), args.begin(), args.end());
  l.pythonpath = env_pythonpath;
  for (const fs::path& cand : compare_package_candidates(exe)) {
    std::error_code ec;
    if (fs::is_regular_file(cand / "kiln" / "compare.py", ec)) {
      l.package_dir = fs::weakly_canonical(cand, ec).string();
      if (l.package_dir.empty()) l.package_dir = cand.string();
      // First on the path, so this executable runs the kiln package of its own tree.
      l.pythonpath = env_pythonpath.empty() ? l.package_dir : l.package_dir + ":" + env_pythonpath;
      break;
    }
  }
  return l;
}

int cmd_compare(const std::vector<std::string>& args) {
  CompareLaunch l = plan_compare_launch(self_exe(), args, env_or_empty("KILN_PYTHON"), env_or_empty("PYTHONPATH"));
  if (!l.pythonpath.empty() && ::setenv("PYTHONPATH", l.pythonpath.c_str(), 1) != 0)
    throw Error(std::string("cannot set PYTHONPATH: ") + std::strerror(errno));
  std::vector<char*> argv;
  for (auto& a : l.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp(l.python.c_str(), argv.data());
  // Only reached when the interpreter could not be started.
  int err = errno;
  std::fprintf(stderr,
               "kiln compare: cannot run Python '%s': %s\n"
               "kiln compare is implemented by the Python module kiln.compare; install Python 3 (with numpy, onnx\n"
               "and onnxruntime) or set KILN_PYTHON to an interpreter that has them.\n",
               l.python.c_str(), std::strerror(err));
  return kExitFailure;
}

}  // namespace kiln::cli
