// How `kiln compare` starts its Python implementation (tools/cmd_compare.cpp): which interpreter, with
// which arguments, and which PYTHONPATH. A pure function of its inputs, so it is unit-tested.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::cli {

struct CompareLaunch {
  std::string python;              // the interpreter (KILN_PYTHON, else python3 from PATH)
  std::vector<std::string> argv;   // python, -c, bootstrap, then the verb's arguments unchanged
  std::string pythonpath;          // PYTHONPATH for the child ("" leaves it unset)
  std::string package_dir;         // where kiln/compare.py was found beside the executable ("" if not)
};

// Folders that may hold the kiln package, relative to the executable, in the order they are tried.
std::vector<std::filesystem::path> compare_package_candidates(const std::filesystem::path& exe);

// exe: this executable's path ("" when unknown); env_python / env_pythonpath: KILN_PYTHON / PYTHONPATH.
CompareLaunch plan_compare_launch(const std::filesystem::path& exe, const std::vector<std::string>& args,
                                  const std::string& env_python, const std::string& env_pythonpath);

int cmd_compare(const std::vector<std::string>& args);
extern const char* const kCompareUsage;

}  // namespace kiln::cli
