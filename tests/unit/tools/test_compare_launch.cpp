// `kiln compare` starts Python's kiln.compare (tools/cmd_compare.cpp): which interpreter, which arguments and
// which PYTHONPATH it chooses. The exec itself and the Python side are tested in tests/python/test_compare.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

// tools/ is not part of kiln_core: compile the verb into the test directly (as test_npy.cpp does).
#include "../../../tools/cmd_compare.cpp"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

class CompareLaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("kiln_compare_launch_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "build");
  }
  void TearDown() override { fs::remove_all(root_); }
  void make_package(const fs::path& dir) {
    fs::create_directories(dir / "kiln");
    std::ofstream(dir / "kiln" / "compare.py") << "# stand-in\n";
  }
  fs::path root_;
};

TEST_F(CompareLaunchTest, FindsThePackageOfItsOwnTreeFirstOnThePath) {
  make_package(root_ / "python");
  auto l = plan_compare_launch(root_ / "build" / "kiln", {"m.onnx"}, "", "/elsewhere");
  EXPECT_EQ(l.package_dir, fs::weakly_canonical(root_ / "python").string());
  EXPECT_EQ(l.pythonpath, l.package_dir + ":/elsewhere");
  auto alone = plan_compare_launch(root_ / "build" / "kiln", {"m.onnx"}, "", "");
  EXPECT_EQ(alone.pythonpath, alone.package_dir);
}

TEST_F(CompareLaunchTest, WithoutAPackageBesideItThePythonPathIsLeftAlone) {
  auto l = plan_compare_launch(root_ / "build" / "kiln", {}, "", "/user/path");
  EXPECT_TRUE(l.package_dir.empty());
  EXPECT_EQ(l.pythonpath, "/user/path");
  // A folder named like the package but without compare.py is not taken.
  fs::create_directories(root_ / "python" / "kiln");
  EXPECT_TRUE(plan_compare_launch(root_ / "build" / "kiln", {}, "", "").package_dir.empty());
  // An unknown executable path (no /proc) looks nowhere.
  EXPECT_TRUE(compare_package_candidates(fs::path()).empty());
}

TEST_F(CompareLaunchTest, ArgumentsPassUnchangedAfterTheBootstrap) {
  std::vector<std::string> args = {"model with space.onnx", "--shapes", "x:1x3", "--input=a=b.npy", "--per-layer"};
  auto l = plan_compare_launch(root_ / "build" / "kiln", args, "", "");
  EXPECT_EQ(l.python, "python3");
  ASSERT_EQ(l.argv.size(), 3 + args.size());
  EXPECT_EQ(l.argv[0], "python3");
  EXPECT_EQ(l.argv[1], "-c");
  EXPECT_NE(l.argv[2].find("import kiln.compare"), std::string::npos);
  EXPECT_NE(l.argv[2].find("c.main(sys.argv[1:])"), std::string::npos);
  EXPECT_EQ(std::vector<std::string>(l.argv.begin() + 3, l.argv.end()), args);
}

TEST_F(CompareLaunchTest, KilnPythonChoosesTheInterpreter) {
  auto l = plan_compare_launch(root_ / "build" / "kiln", {"m.onnx"}, "/usr/bin/python3.11", "");
  EXPECT_EQ(l.python, "/usr/bin/python3.11");
  EXPECT_EQ(l.argv[0], "/usr/bin/python3.11");
}

TEST_F(CompareLaunchTest, CandidatesAreTheTreeBesideAndAnInstalledLayout) {
  auto c = compare_package_candidates("/opt/kiln/bin/kiln");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], fs::path("/opt/kiln/python"));
  EXPECT_EQ(c[1], fs::path("/opt/kiln/bin/python"));
  EXPECT_EQ(c[2], fs::path("/opt/kiln/share/kiln/python"));
}

}  // namespace
}  // namespace kiln::cli
