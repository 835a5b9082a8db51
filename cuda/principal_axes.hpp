// The verdict on the batched eigensolver's results in the device estimate (cuda/estimator.cpp).
#pragma once

#include <cstddef>
#include <vector>

namespace vn {

// Throws Error(Device) naming the first of `segments` whose result is unusable: info != 0 (no
// convergence, or a refused parameter) or a non-finite eigenvalue (3 per segment). A bad start
// is an error, never a silent start.
void check_principal_axes(const std::vector<int>& info, const std::vector<double>& eigenvalues,
                          const std::vector<std::size_t>& segments);

}  // namespace vn
