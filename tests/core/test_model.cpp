// The model text: refusal of malformed models (files: tests/io/test_files.cpp).
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/model.hpp"

using namespace vn;

namespace {

ErrorKind kind_of(const std::string& text) {
    try {
        model_from_json(text, "m.json");
    } catch (const Error& e) {
        return e.kind();
    }
    return ErrorKind::Internal;  // "no error"
}

std::string message_of(const std::string& text) {
    try {
        model_from_json(text, "m.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string valid_json(const std::string& stain, const std::string& maxc) {
    return R"({"format": "vahanorm-model", "version": 1, "method": "vahadane", "stain_matrix": )" + stain +
           R"(, "max_concentrations": )" + maxc + "}";
}

}  // namespace

TEST_CASE("malformed model files are refused with a clear message", "[model]") {
    const std::string good_w = "[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]";
    CHECK(kind_of(valid_json(good_w, "[1.97, 1.03]")) == ErrorKind::Internal);  // the control: accepted
    struct Case {
        std::string text, needle;
    };
    const std::vector<Case> cases = {
        {"this is not json", "not a JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{}", "not a vahanorm model"},
        {R"({"format": "vahanorm-model", "version": 2})", "version"},
        {R"({"format": "vahanorm-model", "version": 1, "max_concentrations": [1, 1]})", "stain_matrix"},
        {valid_json(good_w, "[1.0]"), "max_concentrations"},
        {valid_json("[[0.5, 0.5], [0.2, 0.8]]", "[1, 1]"), "2 x 3"},
        {valid_json("[[0.5626, 0.7201, \"x\"], [0.2159, 0.8012, 0.5581]]", "[1, 1]"), "2 x 3"},
        {valid_json("[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[NaN, 1]"), "not a JSON"},
        {valid_json("[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[1e999, 1]"), "not a JSON"},
        {valid_json("[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[-1, 1]"), "positive"},
        {valid_json("[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[0, 1]"), "positive"},
        {valid_json("[[-0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[1, 1]"), "negative"},
        {valid_json("[[0.9, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]", "[1, 1]"), "unit length"},
        {valid_json("[[0.2159, 0.8012, 0.5581], [0.5626, 0.7201, 0.4062]]", "[1, 1]"), "order"},
        {valid_json("[[0.5626, 0.7201, 0.4062], [0.5626, 0.7201, 0.4062]]", "[1, 1]"), "parallel"},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        CHECK(kind_of(c.text) == ErrorKind::Data);
        const std::string msg = message_of(c.text);
        CHECK(msg.find(c.needle) != std::string::npos);
        CHECK(msg.find("m.json") == 0);
        CHECK(msg.find('\n') == std::string::npos);
    }
}
