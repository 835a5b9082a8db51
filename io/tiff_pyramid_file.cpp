#include "io/tiff_pyramid_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <tiffio.h>

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/libtiff.hpp"
#include "io/tile_encoder.hpp"

#ifndef VAHANORM_VERSION
#define VAHANORM_VERSION "0.0.0"
#endif

namespace vn {

namespace {

constexpr double kMicrometresPerCentimetre = 10000.0;
constexpr std::uint32_t kJpegStripRows = 16;  // stripped JPEG images: one 4:2:0 MCU row a strip
constexpr std::size_t kStripBytes = 65536;   // stripped lossless images: uncompressed bytes a strip, about

std::string version_xy() {
    const std::string v = VAHANORM_VERSION;
    const auto a = v.find('.');
    if (a == std::string::npos) return v;
    const auto b = v.find('.', a + 1);
    return b == std::string::npos ? v : v.substr(0, b);
}

// MPP with at least 4 decimals (Aperio style), more when needed to keep the value.
std::string format_mpp(double mpp) {
    char buf[64];
    for (int d = 4; d <= 10; ++d) {
        std::snprintf(buf, sizeof buf, "%.*f", d, mpp);
        if (std::fabs(std::strtod(buf, nullptr) - mpp) <= 1e-12 * std::max(1.0, mpp)) break;
    }
    return buf;
}

std::string codec_label(const TiffWriterOptions& o) {
    switch (o.compression) {
        case TileCompression::Jpeg: return "JPEG/YCbCr Q=" + std::to_string(o.quality);
        case TileCompression::Deflate: return "Deflate/RGB";
        case TileCompression::Zstd: return "ZSTD/RGB";
        case TileCompression::Lzw: return "LZW/RGB";
        case TileCompression::None: return "Raw/RGB";
    }
    return "";
}

struct Scratch {
    int fd = -1;
    std::uint64_t size = 0;
    std::vector<std::uint64_t> offset;
    std::vector<std::uint32_t> length;
    std::vector<bool> present;
};

std::string errno_text() { return std::strerror(errno); }

std::string xml_escape(const std::string& in) {
    std::string out;
    for (const char c : in) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

struct TiffPyramidFile::Impl {
    std::string path;
    TiffWriterOptions opt;
    std::vector<LevelSize> levels;
    TiffHandle tif;
    std::vector<Scratch> scratch;  // index = level; [0] unused
    std::vector<std::uint8_t> tables;
    std::uint64_t bytes = 0;
    std::uint64_t level0_tiles = 0, level0_written = 0;
    bool finished = false;

    ~Impl() {
        for (Scratch& s : scratch)
            if (s.fd >= 0) ::close(s.fd);
    }

    [[noreturn]] void tiff_fail(const std::string& what) const {
        const int err = errno;  // libtiff's messages do not say why a write failed
        std::string e = tif.error();
        if (err == ENOSPC || err == EDQUOT)
            e = err == ENOSPC ? "no space left on device" : "disk quota exceeded";
        else if (e.find("Maximum TIFF file size exceeded") != std::string::npos || e.find("exceeded") != std::string::npos)
            e += "; write BigTIFF (--bigtiff)";
        fail(ErrorKind::Output, output_name(path) + ": " + what + (e.empty() ? "" : " (" + e + ")"));
    }

    std::string aperio_meta() const {
        std::string s;
        if (opt.objective_power > 0) s += "|AppMag = " + std::to_string(std::llround(opt.objective_power));
        if (opt.mpp_x > 0) s += "|MPP = " + format_mpp(opt.mpp_x);
        if (!opt.provenance.empty()) s += "|vahanorm = " + opt.provenance;
        return s;
    }

    std::string aperio_head() const { return "Aperio Image Library " + opt.description_name + " " + version_xy(); }

    std::string description(int level) const {
        const LevelSize& l0 = levels[0];
        const std::string W = std::to_string(l0.width), H = std::to_string(l0.height);
        const TileGrid g = tile_grid(l0, opt.tile_size);
        if (opt.format == SlideFormat::Svs) {
            std::string d = aperio_head() + "\r\n" + W + "x" + H + " [0,0 " + W + "x" + H + "] (" +
                            std::to_string(g.tile_w) + "x" + std::to_string(g.tile_h) + ")";
            if (level > 0)
                d += " -> " + std::to_string(levels[static_cast<std::size_t>(level)].width) + "x" +
                     std::to_string(levels[static_cast<std::size_t>(level)].height);
            return d + " " + codec_label(opt) + aperio_meta();
        }
        if (opt.format == SlideFormat::Ome && level == 0) return ome_xml();
        if (opt.format == SlideFormat::Tiff && level == 0) return opt.provenance;
        return std::string();
    }

    std::string ome_xml() const {
        const LevelSize& l0 = levels[0];
        std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
                        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                        "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
                        "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" Creator=\"vahanorm " VAHANORM_VERSION
                        "\">";
        if (opt.objective_power > 0)
            x += "<Instrument ID=\"Instrument:0\"><Objective ID=\"Objective:0:0\" NominalMagnification=\"" +
                 std::to_string(opt.objective_power) + "\"/></Instrument>";
        x += "<Image ID=\"Image:0\" Name=\"normalized\">";
        if (opt.objective_power > 0) x += "<InstrumentRef ID=\"Instrument:0\"/><ObjectiveSettings ID=\"Objective:0:0\"/>";
        x += "<Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\" Type=\"uint8\" SizeX=\"" + std::to_string(l0.width) +
             "\" SizeY=\"" + std::to_string(l0.height) +
             "\" SizeC=\"3\" SizeZ=\"1\" SizeT=\"1\" Interleaved=\"true\" SignificantBits=\"8\"";
        if (opt.mpp_x > 0)
            x += " PhysicalSizeX=\"" + format_mpp(opt.mpp_x) + "\" PhysicalSizeXUnit=\"\xC2\xB5m\" PhysicalSizeY=\"" +
                 format_mpp(opt.mpp_y > 0 ? opt.mpp_y : opt.mpp_x) + "\" PhysicalSizeYUnit=\"\xC2\xB5m\"";
        x += "><Channel ID=\"Channel:0:0\" SamplesPerPixel=\"3\"><LightPath/></Channel>"
             "<TiffData IFD=\"0\" PlaneCount=\"1\"/></Pixels>";
        if (!opt.provenance.empty()) x += "<AnnotationRef ID=\"Annotation:vahanorm\"/>";
        x += "</Image>";
        // Label and macro as images of their own, top-level IFDs 1, 2, ... (Bio-Formats lists them
        // as series with these names).
        for (std::size_t i = 0; i < opt.ome_associated.size(); ++i) {
            const auto& [name, size] = opt.ome_associated[i];
            const std::string n = std::to_string(i + 1);
            x += "<Image ID=\"Image:" + n + "\" Name=\"" + xml_escape(name) + "\"><Pixels ID=\"Pixels:" + n +
                 "\" DimensionOrder=\"XYCZT\" Type=\"uint8\" SizeX=\"" + std::to_string(size.width) + "\" SizeY=\"" +
                 std::to_string(size.height) +
                 "\" SizeC=\"3\" SizeZ=\"1\" SizeT=\"1\" Interleaved=\"true\" SignificantBits=\"8\"><Channel ID=\"Channel:" + n +
                 ":0\" SamplesPerPixel=\"3\"><LightPath/></Channel><TiffData IFD=\"" + n +
                 "\" PlaneCount=\"1\"/></Pixels></Image>";
        }
        if (!opt.provenance.empty())
            x += "<StructuredAnnotations><MapAnnotation ID=\"Annotation:vahanorm\" Namespace=\"vahanorm/provenance\">"
                 "<Value><M K=\"vahanorm\">" +
                 xml_escape(opt.provenance) + "</M></Value></MapAnnotation></StructuredAnnotations>";
        return x + "</OME>";
    }

    void set_resolution(std::int64_t w, std::int64_t h) {
        if (opt.mpp_x <= 0) return;
        const double mpp_y = opt.mpp_y > 0 ? opt.mpp_y : opt.mpp_x;
        const double dx = static_cast<double>(levels[0].width) / static_cast<double>(w);
        const double dy = static_cast<double>(levels[0].height) / static_cast<double>(h);
        TIFFSetField(tif.get(), TIFFTAG_XRESOLUTION, kMicrometresPerCentimetre / (opt.mpp_x * dx));
        TIFFSetField(tif.get(), TIFFTAG_YRESOLUTION, kMicrometresPerCentimetre / (mpp_y * dy));
        TIFFSetField(tif.get(), TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    }

    void set_common(std::int64_t w, std::int64_t h, std::uint32_t subfile, const std::string& desc) {
        TIFF* t = tif.get();
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, subfile);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(w));
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(h));
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
        TIFFSetField(t, TIFFTAG_SOFTWARE, "vahanorm " VAHANORM_VERSION);
        if (!desc.empty()) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc.c_str());
        if (!opt.icc_profile.empty())
            TIFFSetField(t, TIFFTAG_ICCPROFILE, static_cast<std::uint32_t>(opt.icc_profile.size()), opt.icc_profile.data());
        set_resolution(w, h);
    }

    // A tiled level whose tiles we encoded ourselves.
    void setup_tiled(int level) {
        TIFF* t = tif.get();
        const LevelSize& l = levels[static_cast<std::size_t>(level)];
        const TileGrid g = tile_grid(l, opt.tile_size);
        const std::uint32_t subfile = level > 0 && opt.format != SlideFormat::Svs ? FILETYPE_REDUCEDIMAGE : 0;
        set_common(l.width, l.height, subfile, description(level));
        TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<std::uint32_t>(g.tile_w));
        TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<std::uint32_t>(g.tile_h));
        TIFFSetField(t, TIFFTAG_COMPRESSION, tiff_compression_tag(opt.compression));
        if (opt.compression == TileCompression::Jpeg) {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
            const std::uint16_t f = opt.chroma_subsampling ? 2 : 1;
            TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, f, f);
            float refbw[6] = {0.0f, 255.0f, 128.0f, 255.0f, 128.0f, 255.0f};
            TIFFSetField(t, TIFFTAG_REFERENCEBLACKWHITE, refbw);
            TIFFSetField(t, TIFFTAG_JPEGTABLES, static_cast<std::uint32_t>(tables.size()), tables.data());
        } else {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
            if (uses_predictor(opt.compression)) TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
        }
        if (level == 0 && opt.format == SlideFormat::Ome && levels.size() > 1) {
            std::vector<toff_t> sub(levels.size() - 1, 0);
            TIFFSetField(t, TIFFTAG_SUBIFD, static_cast<std::uint16_t>(sub.size()), sub.data());
        }
    }

    // A stripped image encoded by libtiff (thumbnail, label, macro).
    void write_stripped(const RgbImage& img, std::uint32_t subfile, const std::string& desc, TileCompression c,
                        bool resolution) {
        TIFF* t = tif.get();
        set_common(img.width, img.height, subfile, desc);
        if (!resolution) {
            TIFFUnsetField(t, TIFFTAG_XRESOLUTION);
            TIFFUnsetField(t, TIFFTAG_YRESOLUTION);
            TIFFUnsetField(t, TIFFTAG_RESOLUTIONUNIT);
        }
        TIFFSetField(t, TIFFTAG_COMPRESSION, tiff_compression_tag(c));
        std::uint32_t rows = kJpegStripRows;
        if (c == TileCompression::Jpeg) {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
            TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
            TIFFSetField(t, TIFFTAG_JPEGQUALITY, std::clamp(opt.quality, 1, 100));
            TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        } else {
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
            if (uses_predictor(c)) TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
            rows = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(kStripBytes / img.stride()));
        }
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows);
        const std::uint32_t nstrips = (static_cast<std::uint32_t>(img.height) + rows - 1) / rows;
        std::vector<std::uint8_t> strip;
        for (std::uint32_t s = 0; s < nstrips; ++s) {
            const std::uint32_t y0 = s * rows;
            const std::uint32_t h = std::min<std::uint32_t>(rows, static_cast<std::uint32_t>(img.height) - y0);
            // libtiff may modify the buffer (predictor): give it a copy.
            strip.assign(img.pixels.begin() + static_cast<std::ptrdiff_t>(y0 * img.stride()),
                         img.pixels.begin() + static_cast<std::ptrdiff_t>((y0 + h) * img.stride()));
            if (TIFFWriteEncodedStrip(t, s, strip.data(), static_cast<tmsize_t>(strip.size())) < 0)
                tiff_fail("cannot write a strip");
        }
        if (!TIFFWriteDirectory(t)) tiff_fail("cannot write a directory");
    }

    void copy_level(int level) {
        Scratch& s = scratch[static_cast<std::size_t>(level)];
        setup_tiled(level);
        std::vector<std::uint8_t> buf;
        for (std::size_t i = 0; i < s.offset.size(); ++i) {
            if (!s.present[i]) fail(ErrorKind::Internal, path + ": level " + std::to_string(level) + " tile missing");
            buf.resize(s.length[i]);
            std::size_t got = 0;
            while (got < buf.size()) {
                const ssize_t n = ::pread(s.fd, buf.data() + got, buf.size() - got, static_cast<off_t>(s.offset[i] + got));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) fail(ErrorKind::Output, path + ": cannot read back a scratch file (" + errno_text() + ")");
                got += static_cast<std::size_t>(n);
            }
            if (TIFFWriteRawTile(tif.get(), static_cast<std::uint32_t>(i), buf.data(), static_cast<tmsize_t>(buf.size())) < 0)
                tiff_fail("cannot write a tile");
            bytes += buf.size();
        }
        if (!TIFFWriteDirectory(tif.get())) tiff_fail("cannot write a directory");
        ::close(s.fd);
        s.fd = -1;
    }
};

TiffPyramidFile::TiffPyramidFile(const std::string& path, const TiffWriterOptions& opt, std::vector<LevelSize> levels)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.path = path;
    m.opt = opt;
    m.levels = std::move(levels);
    if (m.levels.empty()) fail(ErrorKind::Internal, "pyramid without levels");
    if (!compression_available(opt.compression))
        fail(ErrorKind::Usage, std::string("this libtiff cannot write ") + compression_name(opt.compression));
    for (const LevelSize& l : m.levels)
        if (l.width <= 0 || l.height <= 0 || l.width > 0xffffffffLL || l.height > 0xffffffffLL)
            fail(ErrorKind::Output, path + ": level size out of range for TIFF");
    if (opt.compression == TileCompression::Jpeg) {
        m.tables = jpeg_tables(opt);
        if (m.levels[0].width > 65535 || m.levels[0].height > 65535) {
            // JPEG frames are limited to 65535, but tiles are small: fine.
        }
    }
    m.tif = TiffHandle(path, opt.bigtiff ? "w8" : "w");
    if (!m.tif.valid()) fail(ErrorKind::Output, path + ": cannot create (" + m.tif.error() + ")");
    m.scratch.resize(m.levels.size());
    for (std::size_t k = 1; k < m.levels.size(); ++k) {
        const std::string sp = path + ".L" + std::to_string(k);
        Scratch& s = m.scratch[k];
        s.fd = ::open(sp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (s.fd < 0) fail(ErrorKind::Output, sp + ": cannot create a scratch file (" + errno_text() + ")");
        ::unlink(sp.c_str());  // gone whatever happens to this process
        const std::uint64_t tiles = tile_grid(m.levels[k], opt.tile_size).count();
        s.offset.assign(static_cast<std::size_t>(tiles), 0);
        s.length.assign(static_cast<std::size_t>(tiles), 0);
        s.present.assign(static_cast<std::size_t>(tiles), false);
    }
    m.level0_tiles = tile_grid(m.levels[0], opt.tile_size).count();
    m.setup_tiled(0);
}

TiffPyramidFile::~TiffPyramidFile() = default;

const std::vector<LevelSize>& TiffPyramidFile::levels() const { return impl_->levels; }

std::uint64_t TiffPyramidFile::bytes_written() const { return impl_->bytes; }

void TiffPyramidFile::write_tile(int level, std::uint32_t index, const std::uint8_t* data, std::size_t size) {
    Impl& m = *impl_;
    if (level == 0) {
        if (TIFFWriteRawTile(m.tif.get(), index, const_cast<std::uint8_t*>(data), static_cast<tmsize_t>(size)) < 0)
            m.tiff_fail("cannot write a tile");
        m.bytes += size;
        ++m.level0_written;
        return;
    }
    Scratch& s = m.scratch.at(static_cast<std::size_t>(level));
    if (index >= s.offset.size()) fail(ErrorKind::Internal, "tile index out of range");
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pwrite(s.fd, data + done, size - done, static_cast<off_t>(s.size + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            fail(ErrorKind::Output, output_name(m.path) + ": cannot write a scratch file (" +
                                        (n < 0 && errno == ENOSPC ? std::string("no space left on device") : errno_text()) + ")");
        done += static_cast<std::size_t>(n);
    }
    s.offset[index] = s.size;
    s.length[index] = static_cast<std::uint32_t>(size);
    s.present[index] = true;
    s.size += size;
}

void TiffPyramidFile::finish(const RgbImage& thumbnail, const std::vector<AssociatedImage>& associated) {
    Impl& m = *impl_;
    if (m.finished) return;
    if (m.level0_written != m.level0_tiles) fail(ErrorKind::Internal, m.path + ": level 0 is incomplete");
    if (!TIFFWriteDirectory(m.tif.get())) m.tiff_fail("cannot write the level-0 directory");
    const TileCompression lossless_or_jpeg =
        m.opt.compression == TileCompression::Jpeg ? TileCompression::Jpeg
                                                  : (m.opt.compression == TileCompression::None ? TileCompression::None
                                                                                                : TileCompression::Lzw);
    if (m.opt.format == SlideFormat::Svs && thumbnail.width > 0) {
        const std::string d = m.aperio_head() + "\r\n" + std::to_string(m.levels[0].width) + "x" +
                              std::to_string(m.levels[0].height) + " -> " + std::to_string(thumbnail.width) + "x" +
                              std::to_string(thumbnail.height) + " - " + m.aperio_meta();
        m.write_stripped(thumbnail, 0, d, lossless_or_jpeg, true);
    }
    for (std::size_t k = 1; k < m.levels.size(); ++k) m.copy_level(static_cast<int>(k));
    if (m.opt.format == SlideFormat::Ome) {
        // Exactly the images the OME-XML announced, in its order.
        const auto& want = m.opt.ome_associated;
        if (associated.size() != want.size()) fail(ErrorKind::Internal, m.path + ": OME associated images differ from the OME-XML");
        for (std::size_t i = 0; i < want.size(); ++i) {
            const AssociatedImage& a = associated[i];
            if (a.name != want[i].first || a.image.width != want[i].second.width || a.image.height != want[i].second.height)
                fail(ErrorKind::Internal, m.path + ": OME associated images differ from the OME-XML");
            m.write_stripped(a.image, 0, std::string(), a.name == "label" ? TileCompression::Lzw : TileCompression::Jpeg,
                             false);
        }
    }
    if (m.opt.format == SlideFormat::Svs) {
        for (const AssociatedImage& a : associated) {
            if (a.image.width <= 0) continue;
            const bool label = a.name == "label";
            const std::string d = m.aperio_head() + "\n" + a.name + " " + std::to_string(a.image.width) + "x" +
                                  std::to_string(a.image.height);
            m.write_stripped(a.image, label ? FILETYPE_REDUCEDIMAGE : (FILETYPE_REDUCEDIMAGE | 8u), d,
                             label ? TileCompression::Lzw : TileCompression::Jpeg, false);
        }
    }
    if (!m.tif.close()) m.tiff_fail("cannot close the file");
    m.finished = true;
}

}  // namespace vn
