#include "cuda/principal_axes.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"

namespace vn {

void check_principal_axes(const std::vector<int>& info, const std::vector<double>& eigenvalues,
                          const std::vector<std::size_t>& segments) {
    for (std::size_t s : segments) {
        const bool finite = std::isfinite(eigenvalues[3 * s]) && std::isfinite(eigenvalues[3 * s + 1]) &&
                            std::isfinite(eigenvalues[3 * s + 2]);
        if (info[s] == 0 && finite) continue;
        fail(ErrorKind::Device,
             "cuSOLVER syevjBatched: the principal axes of segment " + std::to_string(s) + " are unusable (" +
                 (info[s] > 0   ? "no convergence, info " + std::to_string(info[s])
                  : info[s] < 0 ? "parameter " + std::to_string(-info[s]) + " refused"
                                : std::string("eigenvalues not finite")) +
                 "); use --device cpu for this input");
    }
}

}  // namespace vn
