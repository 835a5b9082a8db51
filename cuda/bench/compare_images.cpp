// vahanorm-compare-images: compares two images, or the same-named images of two folders, pixel
// for pixel (the device check compares `--device cuda` outputs with `--device cpu` outputs).
//
//   vahanorm-compare-images A B [--exact]
//
// Prints one line per pair (differing pixels, pixels off by more than 1, the largest channel
// difference) and a total. Exit status: 0 when every pair is within the tolerance (--exact: no
// differing pixel; else the parity contract: |difference| <= 1 on at least 99.9% of the pixels,
// never more than 2); 1 when one is not, or sizes differ, or a file is missing on one side;
// 64 usage; 66 an unreadable image.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/image_io.hpp"

namespace fs = std::filesystem;

namespace {

struct Diff {
    std::size_t pixels = 0, differing = 0, over_one = 0;
    int max_abs = 0;
    bool size_mismatch = false;
};

Diff compare(const vn::RgbImage& a, const vn::RgbImage& b) {
    Diff d;
    if (a.width != b.width || a.height != b.height) {
        d.size_mismatch = true;
        return d;
    }
    d.pixels = a.pixel_count();
    for (std::size_t i = 0; i < d.pixels; ++i) {
        int m = 0;
        for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(int{a.pixels[3 * i + c]} - int{b.pixels[3 * i + c]}));
        d.differing += m > 0;
        d.over_one += m > 1;
        d.max_abs = std::max(d.max_abs, m);
    }
    return d;
}

bool ok(const Diff& d, bool exact) {
    if (d.size_mismatch) return false;
    return exact ? d.differing == 0 : d.max_abs <= 2 && d.over_one * 1000 <= d.pixels;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> paths;
    bool exact = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--exact") exact = true;
        else paths.push_back(a);
    }
    if (paths.size() != 2) {
        std::fprintf(stderr, "usage: vahanorm-compare-images A B [--exact]\n");
        return 64;
    }
    std::vector<std::pair<std::string, std::string>> pairs;
    bool missing = false;
    if (fs::is_directory(paths[0]) && fs::is_directory(paths[1])) {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(paths[0]))
            if (e.is_regular_file()) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        for (const std::string& n : names) {
            if (!fs::exists(fs::path(paths[1]) / n)) {
                std::printf("%s: missing in %s\n", n.c_str(), paths[1].c_str());
                missing = true;
                continue;
            }
            pairs.push_back({(fs::path(paths[0]) / n).string(), (fs::path(paths[1]) / n).string()});
        }
        for (const auto& e : fs::directory_iterator(paths[1]))
            if (e.is_regular_file() && !fs::exists(fs::path(paths[0]) / e.path().filename())) {
                std::printf("%s: missing in %s\n", e.path().filename().string().c_str(), paths[0].c_str());
                missing = true;
            }
    } else {
        pairs.push_back({paths[0], paths[1]});
    }
    Diff total;
    int bad = 0;
    try {
        for (const auto& [a, b] : pairs) {
            const Diff d = compare(vn::read_image(a), vn::read_image(b));
            const bool good = ok(d, exact);
            bad += good ? 0 : 1;
            if (d.size_mismatch) {
                std::printf("%s: sizes differ\n", fs::path(a).filename().string().c_str());
                continue;
            }
            std::printf("%s: %zu of %zu pixels differ, %zu by more than 1, max %d%s\n",
                        fs::path(a).filename().string().c_str(), d.differing, d.pixels, d.over_one, d.max_abs,
                        good ? "" : exact ? "  NOT IDENTICAL" : "  OUTSIDE THE CONTRACT");
            total.pixels += d.pixels;
            total.differing += d.differing;
            total.over_one += d.over_one;
            total.max_abs = std::max(total.max_abs, d.max_abs);
        }
    } catch (const vn::Error& e) {
        std::fprintf(stderr, "vahanorm-compare-images: %s\n", e.what());
        return 66;
    }
    std::printf("total: %zu images, %zu of %zu pixels differ, %zu by more than 1, max %d; %s\n", pairs.size(),
                total.differing, total.pixels, total.over_one, total.max_abs,
                bad || missing ? "FAIL" : exact ? "identical" : "within the contract");
    return bad || missing || pairs.empty() ? 1 : 0;
}
