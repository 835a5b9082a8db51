// splitmix64 (Steele, Lea and Flood 2014): a small, well-mixed, seedable generator, the one source
// of pseudo-random numbers in vahanorm (seeded samples, slide regions, synthetic slides).
#pragma once

#include <cstdint>

namespace vn {

// The mix of one step: the value drawn from a state x (before it advances by the golden gamma).
inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        const std::uint64_t z = splitmix64(state);
        state += 0x9e3779b97f4a7c15ull;
        return z;
    }
    std::uint64_t below(std::uint64_t n) {  // uniform in [0, n), rejection of the biased tail
        const std::uint64_t limit = ~0ull - (~0ull % n);
        std::uint64_t v;
        do v = next();
        while (v >= limit);
        return v % n;
    }
};

}  // namespace vn
