// The pyramidal TIFF writer (libtiff), in pieces:
//   io/slide_format.hpp         layouts and tile compressions by name and as TIFF tags
//   io/tile_grid.hpp            level sizes, tile grids, when BigTIFF is needed
//   io/tiff_writer_options.hpp  what a file is written with
//   io/tile_encoder.hpp         tiles encoded outside libtiff, in any thread; LZW
//   io/tiff_pyramid_file.hpp    the file one writer thread fills, in the svs, tiff or ome layout
// This header includes them all.
#pragma once

#include "io/slide_format.hpp"
#include "io/tile_encoder.hpp"
#include "io/tile_grid.hpp"
#include "io/tiff_pyramid_file.hpp"
#include "io/tiff_writer_options.hpp"
