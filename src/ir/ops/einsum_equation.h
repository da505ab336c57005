// Einsum equations ("bij,bjk->bik", "...ii->...i", implicit "ij,jk"): parsing into per-operand label lists
// and resolving each label's size. Shared by shape inference (ir/ops/matmul_ops.cpp) and the CPU kernel.
//
// Labels are ints: a letter is its character code; the dims an ellipsis stands for are 256 + j, j counted
// over the broadcast ellipsis rank (numpy right-alignment: an operand with fewer ellipsis dims takes the
// last ones).
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln::ir {

struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // labels of each operand's dims
  std::vector<int> output;               // labels of the output dims
  int ellipsis_rank = 0;
};

constexpr int kEinsumEllipsisLabel = 256;

inline bool einsum_is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Parses one term ("ab...c") into letters, recording where the ellipsis is (-1 for none). Returns an error.
inline std::string einsum_parse_term(const std::string& t, std::vector<int>* letters, int* ell_pos) {
  *ell_pos = -1;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '.') {
      if (t.compare(i, 3, "...") != 0) return "'.' must be part of an ellipsis '...' in term '" + t + "'";
      if (*ell_pos >= 0) return "term '" + t + "' has more than one ellipsis";
      *ell_pos = static_cast<int>(letters->size());
      i += 3;
    } else if (einsum_is_letter(t[i])) {
      letters->push_back(static_cast<unsigned char>(t[i]));
      ++i;
    } else {
      return std::string("unexpected character '") + t[i] + "' in term '" + t + "'";
    }
  }
  return "";
}

// Parses `equation` for operands of the given ranks. Returns "" on success, else what is wrong.
inline std::string parse_einsum(const std::string& equation, const std::vector<size_t>& ranks, EinsumSpec* spec) {
  std::string eq;
  for (char c : equation)
    if (c != ' ' && c != '\t') eq += c;
  std::string lhs = eq, rhs;
  const size_t arrow = eq.find("->");
  const bool explicit_out = arrow != std::string::npos;
  if (explicit_out) {
    lhs = eq.substr(0, arrow);
    rhs = eq.substr(arrow + 2);
    if (rhs.find("->") != std::string::npos) return "equation '" + equation + "' has more than one '->'";
  }
  std::vector<std::string> terms;
  size_t start = 0;
  for (;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ranks.size())
    return "equation '" + equation + "' has " + std::to_string(terms.size()) + " operand terms but the op has " +
           std::to_string(ranks.size()) + " inputs";
  std::vector<std::vector<int>> letters(terms.size());
  std::vector<int> ell_pos(terms.size());
  std::vector<int> ell_rank(terms.size(), 0);
  int ell = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    std::string err = einsum_parse_term(terms[i], &letters[i], &ell_pos[i]);
    if (!err.empty()) return err;
    const int nl = static_cast<int>(letters[i].size());
    const int r = static_cast<int>(ranks[i]);
    if (ell_pos[i] < 0 ? r != nl : r < nl)
      return "term '" + terms[i] + "' of equation '" + equation + "' names " + std::to_string(nl) +
             " dims but input " + std::to_string(i) + " has rank " + std::to_string(r);
    if (ell_pos[i] >= 0) ell_rank[i] = r - nl;
    ell = std::max(ell, ell_rank[i]);
  }
  spec->ellipsis_rank = ell;
  spec->inputs.assign(terms.size(), {});
  std::map<int, int> count;
  for (size_t i = 0; i < terms.size(); ++i) {
    auto& out = spec->inputs[i];
    for (int k = 0; k <= static_cast<int>(letters[i].size()); ++k) {
      if (k == ell_pos[i])
        for (int j = ell - ell_rank[i]; j < ell; ++j) out.push_back(kEinsumEllipsisLabel + j);
      if (k < static_cast<int>(letters[i].size())) {
        out.push_back(letters[i][k]);
        ++count[letters[i][k]];
      }
    }
  }
  spec->output.clear();
  if (explicit_out) {
    std::vector<int> ol;
    int oell = -1;
    std::string err = einsum_parse_term(rhs, &ol, &oell);
    if (!err.empty()) return err;
    for (int k = 0; k <= static_cast<int>(ol.size()); ++k) {
      if (k == oell)
        for (int j = 0; j < ell; ++j) spec->output.push_back(kEinsumEllipsisLabel + j);
      if (k < static_cast<int>(ol.size())) {
        if (!count.count(ol[k]))
          return std::string("output label '") + static_cast<char>(ol[k]) + "' does not appear in any input term";
        if (std::count(ol.begin(), ol.end(), ol[k]) > 1)
          return std::string("output label '") + static_cast<char>(ol[k]) + "' is repeated";
        spec->output.push_back(ol[k]);
      }
    }
  } else {
    for (int j = 0; j < ell; ++j) spec->output.push_back(kEinsumEllipsisLabel + j);
    for (auto& [label, n] : count)  // std::map: character order, as numpy
      if (n == 1) spec->output.push_back(label);
  }
  return "";
}

// Resolves the size of every label from the operand shapes (-1 = unknown). A size of 1 broadcasts. Returns
// an error naming the clash, or "".
inline std::string einsum_label_sizes(const EinsumSpec& spec, const std::vector<Dims>& shapes,
                                      std::map<int, int64_t>* sizes) {
  sizes->clear();
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    for (size_t k = 0; k < spec.inputs[i].size(); ++k) {
      const int label = spec.inputs[i][k];
      const int64_t d = shapes[i][k];
      auto it = sizes->find(label);
      if (it == sizes->end()) {
        (*sizes)[label] = d;
        continue;
      }
      int64_t& cur = it->second;
      if (cur == d || d == 1) continue;
      if (cur == 1 || cur == -1) {
        if (!(cur == -1 && d == -1)) cur = (cur == -1 && d == 1) ? -1 : d;
        continue;
      }
      if (d == -1) continue;
      std::string name = label >= kEinsumEllipsisLabel ? "an ellipsis dim" : std::string("label '") + static_cast<char>(label) + "'";
      return name + " has size " + std::to_string(cur) + " in one operand and " + std::to_string(d) +
             " in input " + std::to_string(i);
    }
  }
  return "";
}

}  // namespace kiln::ir
