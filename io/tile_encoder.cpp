#include "io/tile_encoder.hpp"

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <string>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
#include <zlib.h>
#include <zstd.h>
// clang-format on

#include "core/error.hpp"
#include "io/jpeg_error.hpp"

namespace vn {

namespace {

constexpr std::size_t kJpegInitialBuffer = 16384;  // bytes; grown by doubling
// Compression effort: the range each library takes, and the default (TiffWriterOptions::effort).
constexpr int kDeflateMinLevel = 1, kDeflateMaxLevel = 9, kDeflateDefaultLevel = 6;
constexpr int kZstdMinLevel = 1, kZstdMaxLevel = 22, kZstdDefaultLevel = 9;

// A libjpeg destination that appends to a std::vector.
struct VectorDest {
    jpeg_destination_mgr pub;
    std::vector<std::uint8_t>* out;
};

void dest_init(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    if (d->out->size() < kJpegInitialBuffer) d->out->resize(kJpegInitialBuffer);
    d->pub.next_output_byte = d->out->data();
    d->pub.free_in_buffer = d->out->size();
}

boolean dest_grow(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    const std::size_t old = d->out->size();
    d->out->resize(old * 2);
    d->pub.next_output_byte = d->out->data() + old;
    d->pub.free_in_buffer = old;
    return TRUE;
}

void dest_term(j_compress_ptr c) {
    auto* d = reinterpret_cast<VectorDest*>(c->dest);
    d->out->resize(d->out->size() - d->pub.free_in_buffer);
}

// Everything libjpeg touches lives here; the guards below only setjmp and call a body.
struct JpegState {
    jpeg_compress_struct c;
    JpegError err;
    VectorDest dest;
    bool created = false;
    JSAMPROW* rows = nullptr;  // one per tile row, into the padded tile
    int size = 0, quality = 90;
    bool subsample = true;
};

void jpeg_setup_body(JpegState* s) {
    jpeg_create_compress(&s->c);
    s->created = true;
    s->c.dest = &s->dest.pub;
    s->dest.pub.init_destination = dest_init;
    s->dest.pub.empty_output_buffer = dest_grow;
    s->dest.pub.term_destination = dest_term;
    s->c.image_width = static_cast<JDIMENSION>(s->size);
    s->c.image_height = static_cast<JDIMENSION>(s->size);
    s->c.input_components = 3;
    s->c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&s->c);
    jpeg_set_quality(&s->c, s->quality, TRUE);
    s->c.write_JFIF_header = FALSE;
    s->c.write_Adobe_marker = FALSE;
    s->c.dct_method = JDCT_ISLOW;
    const int f = s->subsample ? 2 : 1;
    s->c.comp_info[0].h_samp_factor = f;
    s->c.comp_info[0].v_samp_factor = f;
    s->c.comp_info[1].h_samp_factor = 1;
    s->c.comp_info[1].v_samp_factor = 1;
    s->c.comp_info[2].h_samp_factor = 1;
    s->c.comp_info[2].v_samp_factor = 1;
}

void jpeg_tile_body(JpegState* s) {
    jpeg_suppress_tables(&s->c, TRUE);
    jpeg_start_compress(&s->c, FALSE);
    while (s->c.next_scanline < s->c.image_height)
        jpeg_write_scanlines(&s->c, s->rows + s->c.next_scanline, s->c.image_height - s->c.next_scanline);
    jpeg_finish_compress(&s->c);
}

void jpeg_tables_body(JpegState* s) { jpeg_write_tables(&s->c); }

bool jpeg_guard(JpegState* s, void (*body)(JpegState*)) {
    if (setjmp(s->err.jmp)) return false;
    body(s);
    return true;
}

void jpeg_init_state(JpegState* s, const TiffWriterOptions& opt, std::vector<std::uint8_t>* out) {
    s->c.err = jpeg_init_error(&s->err);
    s->dest.out = out;
    s->size = opt.tile_size;
    s->quality = std::clamp(opt.quality, 1, 100);
    s->subsample = opt.chroma_subsampling;
    if (!jpeg_guard(s, jpeg_setup_body)) {
        if (s->created) jpeg_destroy_compress(&s->c);
        s->created = false;
        fail(ErrorKind::Internal, std::string("JPEG encoder setup failed: ") + s->err.message);
    }
}

// Horizontal differencing (TIFF Predictor 2) of 8-bit RGB rows, in place.
void predict_rows(std::uint8_t* p, int width, int height) {
    const std::size_t stride = static_cast<std::size_t>(width) * 3u;
    for (int y = 0; y < height; ++y) {
        std::uint8_t* row = p + static_cast<std::size_t>(y) * stride;
        for (std::size_t i = stride - 1; i >= 3; --i) row[i] = static_cast<std::uint8_t>(row[i] - row[i - 3]);
    }
}

}  // namespace

struct TileEncoder::Impl {
    TiffWriterOptions opt;
    std::vector<std::uint8_t> padded;
    std::vector<JSAMPROW> rows;
    JpegState jpeg{};
    std::vector<std::uint8_t>* jpeg_out = nullptr;
    std::vector<std::uint8_t> jpeg_buf;
    z_stream z{};
    bool z_ready = false;
    ZSTD_CCtx* zstd = nullptr;
    int effort = 0;

    ~Impl() {
        if (jpeg.created) jpeg_destroy_compress(&jpeg.c);
        if (z_ready) deflateEnd(&z);
        if (zstd) ZSTD_freeCCtx(zstd);
    }

    // Copies the tile into a full tw x th tile, repeating the last column and row.
    void pad(RgbView t, int tw, int th) {
        const std::size_t stride = static_cast<std::size_t>(tw) * 3u;
        padded.resize(stride * static_cast<std::size_t>(th));
        for (int y = 0; y < th; ++y) {
            const std::uint8_t* src = t.row(std::min(y, t.height - 1));
            std::uint8_t* dst = padded.data() + static_cast<std::size_t>(y) * stride;
            std::memcpy(dst, src, static_cast<std::size_t>(t.width) * 3u);
            const std::uint8_t* last = src + static_cast<std::size_t>(t.width - 1) * 3u;
            for (int x = t.width; x < tw; ++x) std::memcpy(dst + static_cast<std::size_t>(x) * 3u, last, 3);
        }
    }
};

TileEncoder::TileEncoder(const TiffWriterOptions& opt) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.opt = opt;
    const int ts = opt.tile_size;
    if (ts <= 0 || ts % kTileAlign != 0) fail(ErrorKind::Usage, "tile size must be a positive multiple of 16");
    switch (opt.compression) {
        case TileCompression::Jpeg: {
            jpeg_init_state(&m.jpeg, opt, &m.jpeg_buf);
            m.rows.resize(static_cast<std::size_t>(ts));
            break;
        }
        case TileCompression::Deflate: {
            m.effort =
                opt.effort > 0 ? std::clamp(opt.effort, kDeflateMinLevel, kDeflateMaxLevel) : kDeflateDefaultLevel;
            if (deflateInit(&m.z, m.effort) != Z_OK) fail(ErrorKind::Internal, "zlib deflateInit failed");
            m.z_ready = true;
            break;
        }
        case TileCompression::Zstd: {
            m.effort = opt.effort > 0 ? std::clamp(opt.effort, kZstdMinLevel, kZstdMaxLevel) : kZstdDefaultLevel;
            m.zstd = ZSTD_createCCtx();
            if (!m.zstd) fail(ErrorKind::Internal, "ZSTD_createCCtx failed");
            break;
        }
        case TileCompression::Lzw:
        case TileCompression::None:
            break;
    }
}

TileEncoder::~TileEncoder() = default;

void TileEncoder::encode(RgbView tile, int tw, int th, std::vector<std::uint8_t>* out) {
    Impl& m = *impl_;
    const int ts = m.opt.tile_size;
    if (tw <= 0 || th <= 0 || tw > ts || th > ts || tw % kTileAlign != 0 || th % kTileAlign != 0)
        fail(ErrorKind::Internal, "tile encoder: bad tile size");
    if (tile.width <= 0 || tile.height <= 0 || tile.width > tw || tile.height > th)
        fail(ErrorKind::Internal, "tile encoder: tile larger than its grid cell");
    const bool full = tile.width == tw && tile.height == th;
    if (m.opt.compression == TileCompression::Jpeg && full) {
        // libjpeg only reads the rows: no padded copy needed.
        for (int y = 0; y < th; ++y) m.rows[static_cast<std::size_t>(y)] = const_cast<std::uint8_t*>(tile.row(y));
    } else {
        m.pad(tile, tw, th);
    }
    const std::size_t n = static_cast<std::size_t>(tw) * static_cast<std::size_t>(th) * 3u;
    switch (m.opt.compression) {
        case TileCompression::Jpeg: {
            const std::size_t stride = static_cast<std::size_t>(tw) * 3u;
            if (!full)
                for (int y = 0; y < th; ++y)
                    m.rows[static_cast<std::size_t>(y)] = m.padded.data() + static_cast<std::size_t>(y) * stride;
            m.jpeg.rows = m.rows.data();
            m.jpeg.dest.out = out;
            m.jpeg.c.image_width = static_cast<JDIMENSION>(tw);
            m.jpeg.c.image_height = static_cast<JDIMENSION>(th);
            if (!jpeg_guard(&m.jpeg, jpeg_tile_body)) {
                jpeg_abort_compress(&m.jpeg.c);
                fail(ErrorKind::Internal, std::string("JPEG encoding failed: ") + m.jpeg.err.message);
            }
            return;
        }
        case TileCompression::Deflate: {
            predict_rows(m.padded.data(), tw, th);
            out->resize(deflateBound(&m.z, static_cast<uLong>(n)));
            deflateReset(&m.z);
            m.z.next_in = m.padded.data();
            m.z.avail_in = static_cast<uInt>(n);
            m.z.next_out = out->data();
            m.z.avail_out = static_cast<uInt>(out->size());
            if (deflate(&m.z, Z_FINISH) != Z_STREAM_END) fail(ErrorKind::Internal, "zlib deflate failed");
            out->resize(out->size() - m.z.avail_out);
            return;
        }
        case TileCompression::Zstd: {
            predict_rows(m.padded.data(), tw, th);
            out->resize(ZSTD_compressBound(n));
            const std::size_t r = ZSTD_compressCCtx(m.zstd, out->data(), out->size(), m.padded.data(), n, m.effort);
            if (ZSTD_isError(r)) fail(ErrorKind::Internal, std::string("zstd failed: ") + ZSTD_getErrorName(r));
            out->resize(r);
            return;
        }
        case TileCompression::Lzw: {
            predict_rows(m.padded.data(), tw, th);
            lzw_encode(m.padded.data(), n, out);
            return;
        }
        case TileCompression::None: {
            out->assign(m.padded.begin(), m.padded.end());
            return;
        }
    }
}

std::vector<std::uint8_t> jpeg_tables(const TiffWriterOptions& opt) {
    std::vector<std::uint8_t> out;
    JpegState s{};
    jpeg_init_state(&s, opt, &out);
    const bool ok = jpeg_guard(&s, jpeg_tables_body);
    jpeg_destroy_compress(&s.c);
    if (!ok) fail(ErrorKind::Internal, std::string("JPEG tables failed: ") + s.err.message);
    return out;
}

// ---- LZW ----------------------------------------------------------------------------------

void lzw_encode(const std::uint8_t* data, std::size_t n, std::vector<std::uint8_t>* out) {
    constexpr std::uint32_t kClear = 256, kEoi = 257, kFirst = 258, kCodeMax = 4095;
    // (prefix code, byte) -> code, valid when the stamp in the top bits matches; bumping the
    // stamp clears the table in O(1).
    thread_local std::vector<std::uint32_t> table;
    thread_local std::uint32_t stamp = 0;
    if (table.empty()) table.assign(4096u * 256u, 0u);
    auto clear_table = [&] {
        if (++stamp >= (1u << 20)) {
            std::fill(table.begin(), table.end(), 0u);
            stamp = 1;
        }
    };
    clear_table();
    out->clear();
    out->reserve(n / 2 + 16);
    std::uint64_t acc = 0;
    int nacc = 0;
    int nbits = 9;
    std::uint32_t maxcode = 511, free_ent = kFirst;
    auto put = [&](std::uint32_t code) {
        acc = (acc << nbits) | code;
        nacc += nbits;
        while (nacc >= 8) {
            out->push_back(static_cast<std::uint8_t>(acc >> (nacc - 8)));
            nacc -= 8;
        }
        acc &= (std::uint64_t{1} << nacc) - 1;
    };
    put(kClear);
    if (n > 0) {
        std::uint32_t ent = data[0];
        for (std::size_t i = 1; i < n; ++i) {
            const std::uint32_t c = data[i];
            std::uint32_t& slot = table[ent * 256u + c];
            if ((slot >> 12) == stamp) {
                ent = slot & 0xfffu;
                continue;
            }
            put(ent);
            ent = c;
            slot = (stamp << 12) | free_ent;
            ++free_ent;
            if (free_ent == kCodeMax - 1) {
                put(kClear);
                clear_table();
                free_ent = kFirst;
                nbits = 9;
                maxcode = 511;
            } else if (free_ent > maxcode) {
                ++nbits;
                maxcode = (1u << nbits) - 1;
            }
        }
        put(ent);
        ++free_ent;
        if (free_ent == kCodeMax - 1) {
            put(kClear);
            nbits = 9;
        } else if (free_ent > maxcode) {
            ++nbits;
        }
    }
    put(kEoi);
    if (nacc > 0) out->push_back(static_cast<std::uint8_t>(acc << (8 - nacc)));
}

}  // namespace vn
