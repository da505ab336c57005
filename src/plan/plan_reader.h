// Reads a plan written by plan_writer (layout: plan/plan_format.h) back into an EngineData.
//
// Everything is validated before use: a corrupt, truncated, foreign, too new or too old plan, or one
// built for another target, throws kiln::Error with a message that says which, e.g.
//   "plan is empty"
//   "not a Kiln plan (bad magic: file starts with 7f 45 4c 46 02 01 01 00, expected \"KILNPLAN\")"
//   "plan format version 7 is not supported by this Kiln (supports 1)"
//   "plan is truncated: needed 8 bytes for payload size at offset 40, only 3 left"
//   "plan is corrupted: checksum mismatch (stored ..., computed ...)"
//   "plan was built by Kiln 0.2.0, this is Kiln 0.1.0: ..."
//   "plan was built for cuda:sm_80, this device is cuda:sm_90"
//   "plan uses op 'Foo' (layer 'foo1'), which this Kiln does not know"
// The reader never reads outside [data, data + size) and never allocates more than the plan's bytes
// can describe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/engine_data.h"

namespace kiln::plan {

struct PlanHeader {
  uint32_t format_version = 0;
  size_t header_size = 0;
  std::string target;
  std::string kiln_version;
  uint64_t payload_size = 0;
  uint64_t checksum = 0;
};

// Parses and checks the header only (magic, format version, field sizes); neither the payload nor the
// checksum is looked at. For tools that describe a plan file.
PlanHeader read_plan_header(const void* data, size_t size);

// Reads a whole plan. When expected_target_prefix is not empty the plan's target must start with it
// (e.g. "cuda:sm_90" or "cpu"). Tensor attributes get their own copies of the bytes: `data` may be freed
// once this returns.
EngineData read_plan(const void* data, size_t size, const std::string& expected_target_prefix = "");

// Same, but tensor attributes borrow their bytes from `data` (which `owner` keeps alive) instead of
// copying them, when `data` is 64-byte aligned (each tensor then is too); otherwise they are copied.
EngineData read_plan_in_place(std::shared_ptr<const void> owner, const void* data, size_t size,
                              const std::string& expected_target_prefix = "");

}  // namespace kiln::plan
