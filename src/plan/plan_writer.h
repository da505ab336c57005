// Serializes an EngineData into a plan (layout: plan/plan_format.h).
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/engine_data.h"

namespace kiln::plan {

// Writes `data` as a plan. The header's kiln_version is data.kiln_version, or this Kiln's version
// (KILN_VERSION) when that is empty. Throws kiln::Error when the engine cannot be written faithfully:
// no graph, a node referring to a value that is not in the graph, a value produced twice or by nothing
// (and not a graph input), an invalid DataType, a tensor attribute of unknown shape, a target or
// version string longer than kMaxHeaderString.
std::vector<uint8_t> write_plan(const EngineData& data);

}  // namespace kiln::plan
