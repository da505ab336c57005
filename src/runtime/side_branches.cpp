#include "runtime/side_branches.h"

#include <algorithm>
#include <unordered_map>

namespace kiln {

std::vector<SideBranch> find_side_branches(const std::vector<std::vector<int>>& reads,
                                           const std::vector<std::vector<int>>& writes,
                                           const std::vector<bool>& eligible) {
  const int n = static_cast<int>(reads.size());
  std::unordered_map<int, int> writer;  // storage id -> the step writing it
  for (int s = 0; s < n; ++s)
    for (int w : writes[s]) writer[w] = s;
  std::vector<std::vector<int>> readers_of(n);  // step -> the later steps reading what it writes
  std::vector<int> fork(n, -1);
  for (int s = 0; s < n; ++s)
    for (int r : reads[s]) {
      auto it = writer.find(r);
      if (it == writer.end() || it->second >= s) continue;  // an input, a constant, or no producer before s
      fork[s] = std::max(fork[s], it->second);
      std::vector<int>& readers = readers_of[it->second];
      if (readers.empty() || readers.back() != s) readers.push_back(s);
    }
  // Candidates: eligible steps with one reader. The longest windows first: of a fork's two branches (the
  // downsample, joined at conv3, and conv1, joined at conv2), the one beside the longer chain leaves the main
  // stream, and the chain stays there to run beside it.
  std::vector<SideBranch> candidates;
  for (int s = 0; s < n; ++s)
    if (eligible[s] && readers_of[s].size() == 1) candidates.push_back(SideBranch{s, fork[s], readers_of[s][0]});
  std::stable_sort(candidates.begin(), candidates.end(), [](const SideBranch& a, const SideBranch& b) {
    return a.join - a.fork > b.join - b.fork;
  });
  std::vector<bool> on_side(n, false);
  std::vector<SideBranch> out;
  // Some step of b's window other than b.step stays on the main stream.
  auto has_main_work = [&](const SideBranch& b) {
    for (int m = b.fork + 1; m < b.join; ++m)
      if (m != b.step && !on_side[m]) return true;
    return false;
  };
  for (const SideBranch& c : candidates) {
    // Forks and joins stay on the main stream: a fork's event is recorded there, and a side step feeding or
    // fed by another would need an order of its own on the auxiliary stream.
    if ((c.fork >= 0 && on_side[c.fork]) || on_side[c.join]) continue;
    bool touches = false;
    for (const SideBranch& b : out) touches |= b.fork == c.step || b.join == c.step;
    if (touches) continue;
    on_side[c.step] = true;
    bool ok = has_main_work(c);
    for (const SideBranch& b : out) ok = ok && has_main_work(b);
    if (!ok) {
      on_side[c.step] = false;
      continue;
    }
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const SideBranch& a, const SideBranch& b) { return a.step < b.step; });
  return out;
}

}  // namespace kiln
