// The model text: refusal of malformed models, the round trip (files: tests/io/test_files.cpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

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

const std::string kStain = "[[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]]";

// A valid model with one more section ("params", "source", "fit") of the given JSON text.
std::string with_section(const std::string& section, const std::string& body) {
    std::string text = valid_json(kStain, "[1.97, 1.03]");
    text.pop_back();
    return text + ", \"" + section + "\": " + body + "}";
}

}  // namespace

TEST_CASE("malformed model files are refused with a clear message", "[model]") {
    CHECK(kind_of(valid_json(kStain, "[1.97, 1.03]")) == ErrorKind::Internal);  // the control: accepted
    struct Case {
        std::string text, needle;
    };
    const std::vector<Case> cases = {
        {"this is not json", "not a JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{}", "not a vahanorm model"},
        {R"({"format": "vahanorm-model", "version": 2})", "version"},
        {R"({"format": "vahanorm-model", "version": 1, "max_concentrations": [1, 1]})", "stain_matrix"},
        {valid_json(kStain, "[1.0]"), "max_concentrations"},
        {valid_json("[[0.5, 0.5], [0.2, 0.8]]", "[1, 1]"), "2 x 3"},
        {valid_json("[[0.5626, 0.7201, \"x\"], [0.2159, 0.8012, 0.5581]]", "[1, 1]"), "2 x 3"},
        {valid_json(kStain, "[NaN, 1]"), "not a JSON"},
        {valid_json(kStain, "[1e999, 1]"), "not a JSON"},
        {valid_json(kStain, "[-1, 1]"), "positive"},
        {valid_json(kStain, "[0, 1]"), "positive"},
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

TEST_CASE("a model's JSON reads back to the same model and the same text", "[model]") {
    StainModel m = builtin_reference();
    m.max_conc = {1.5, 0.75};
    m.params.lambda = 0.2;
    m.params.lambda_conc = 0.05;
    m.params.percentile = 98.5;
    m.params.min_stain_angle_deg = 7.5;
    m.params.exclude_artefacts = false;
    m.params.seed = 42;
    m.params.sample_size = 50000;
    m.params.min_tissue_pixels = 2500;
    m.params.min_tissue_fraction = 0.125;
    m.params.max_iterations = 77;
    m.params.tolerance = 1e-5;
    m.objective = 0.03125;
    m.iterations = 12;
    m.source_path = "a.png,b.png";
    m.source_sha256 = "0123abcd,4567ef89";
    m.tissue_pixels = 412345;
    m.sampled_pixels = 100000;
    m.artefact_pixels = 321;
    m.mask_path = "mask.png";
    m.mask_sha256 = "feed";
    m.mask_class = "tumor";
    m.masked_pixels = 77;
    const std::string text = to_json(m);
    const StainModel back = model_from_json(text, "m.json");
    CHECK(back.stain == m.stain);
    CHECK(back.max_conc == m.max_conc);
    CHECK(back.params.lambda == m.params.lambda);
    CHECK(back.params.lambda_conc == m.params.lambda_conc);
    CHECK(back.params.percentile == m.params.percentile);
    CHECK(back.params.min_stain_angle_deg == m.params.min_stain_angle_deg);
    CHECK(back.params.exclude_artefacts == m.params.exclude_artefacts);
    CHECK(back.params.seed == 42);
    CHECK(back.params.sample_size == 50000);
    CHECK(back.params.min_tissue_pixels == 2500);
    CHECK(back.params.min_tissue_fraction == 0.125);
    CHECK(back.params.max_iterations == 77);
    CHECK(back.params.tolerance == 1e-5);
    CHECK(back.objective == 0.03125);
    CHECK(back.iterations == 12);
    CHECK(back.source_path == m.source_path);
    CHECK(back.source_sha256 == m.source_sha256);
    CHECK(back.tissue_pixels == 412345);
    CHECK(back.sampled_pixels == 100000);
    CHECK(back.artefact_pixels == 321);
    CHECK(back.mask_path == m.mask_path);
    CHECK(back.mask_sha256 == m.mask_sha256);
    CHECK(back.mask_class == m.mask_class);
    CHECK(back.masked_pixels == 77);
    CHECK(to_json(back) == text);
}

TEST_CASE("source.sampled_pixels is a non-negative integer or the model is refused", "[model]") {
    const auto with_sampled = [](const std::string& value) {
        return with_section("source", R"({"sampled_pixels": )" + value + "}");
    };
    CHECK(model_from_json(with_sampled("0"), "m.json").sampled_pixels == 0);
    CHECK(model_from_json(with_sampled("18446744073709551615"), "m.json").sampled_pixels == UINT64_MAX);
    CHECK(model_from_json(valid_json(kStain, "[1.97, 1.03]"), "m.json").sampled_pixels == 0);  // absent: 0
    for (const char* bad : {"-1", "1.5", "1e3", "\"100\"", "null", "true", "[1]", "18446744073709551616"}) {
        INFO(bad);
        CHECK(kind_of(with_sampled(bad)) == ErrorKind::Data);
        CHECK(message_of(with_sampled(bad)) == "m.json: \"source.sampled_pixels\" must be a non-negative integer");
    }
}

TEST_CASE("every field a model file carries has its type checked", "[model]") {
    struct Case {
        const char* section;
        const char* body;
        const char* message;
    };
    const Case cases[] = {
        {"params", R"({"seed": -3})", R"("params.seed" must be a non-negative integer)"},
        {"params", R"({"sample_size": 2.5})", R"("params.sample_size" must be a non-negative integer)"},
        {"params", R"({"max_iterations": 3000000000})", R"("params.max_iterations" is too large)"},
        {"params", R"({"tolerance": "small"})", R"("params.tolerance" must be a number)"},
        {"params", R"({"exclude_ink": 1})", R"("params.exclude_ink" must be true or false)"},
        {"source", R"({"path": 7})", R"("source.path" must be a string)"},
        {"source", R"({"tissue_pixels": -1})", R"("source.tissue_pixels" must be a non-negative integer)"},
        {"source", R"({"mask": {"masked_out_pixels": "9"}})", R"("source.mask.masked_out_pixels" must be a non-negative integer)"},
        {"source", R"({"mask": []})", R"("mask" must be an object)"},
        {"fit", R"({"iterations": 1.5})", R"("fit.iterations" must be a non-negative integer)"},
        {"fit", R"([1])", R"("fit" must be an object)"},
        {"params", R"(null)", R"("params" must be an object)"},
    };
    for (const Case& c : cases) {
        INFO(c.section << ": " << c.body);
        CHECK(kind_of(with_section(c.section, c.body)) == ErrorKind::Data);
        CHECK(message_of(with_section(c.section, c.body)) == std::string("m.json: ") + c.message);
    }
    // Absent fields keep their defaults.
    const StainModel m = model_from_json(with_section("params", "{}"), "m.json");
    CHECK(m.params.seed == EstimateParams{}.seed);
    CHECK(m.params.max_iterations == EstimateParams{}.max_iterations);
}
