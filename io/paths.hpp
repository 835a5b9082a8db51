// Names of files taken apart, one set for the whole program (output names, QC picture names,
// image formats by extension, atomic outputs). Only the spelling of the path is looked at
// (std::filesystem::path), never the file system.
#pragma once

#include <string>

namespace vn {

// The last component: "dir/a.b.svs" -> "a.b.svs"; "" for a path that ends in '/'.
std::string file_name(const std::string& path);

// The last component without its last extension: "dir/a.b.svs" -> "a.b", "x.ome.tif" -> "x.ome"
// (an output named after it as OME-TIFF is "x.ome.ome.tif"). A leading dot starts no
// extension: ".hidden" -> ".hidden".
std::string file_stem(const std::string& path);

// The last extension without its dot, in lower case: "A.TIF" -> "tif", "x.ome.tif" -> "tif";
// "" when there is none ("README", ".hidden", "dir.d/file").
std::string lower_extension(const std::string& path);

// The directory part: "dir/a" -> "dir", "a" -> ".", "/a" -> "/".
std::string parent_dir(const std::string& path);

}  // namespace vn
