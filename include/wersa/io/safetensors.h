// safetensors files: an 8-byte little-endian uint64 header length N, N bytes of JSON
//   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// padded with spaces to a multiple of 8 bytes, then the data buffer. Offsets are relative to
// the start of the buffer; tensors cover it contiguously, without gaps or overlaps (what
// PyTorch's safetensors requires). Data is stored little-endian, row-major.
//
// Writer layout: tensors ordered by element size (largest first), then by name, like the
// reference implementation; every tensor then starts naturally aligned for its dtype. The
// output is a deterministic function of the tensors and the metadata.
//
// The writer adds "data_sha256" to the metadata: the SHA-256 of the data buffer. The reader
// verifies it when present (files of other writers, e.g. PyTorch's, have none), and requires it,
// well-formed, in a file whose metadata says this engine wrote it ("written_by" holding a
// version_line(), which checkpoints and state files carry): a damaged key is an error, not an
// unverified load.
//
// Reader: the whole file is read and everything is validated up front (header length, JSON,
// dtypes, shapes, offsets, sizes, coverage of the buffer, duplicate names, the checksum); any
// problem is a one-line wersa::Error naming the file (and the tensor). No input makes it crash.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "wersa/tensor/tensor.h"

namespace wersa::io {

struct SafeTensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
};

// "F32", "F64", "I32", "U16", "U32": the safetensors spelling of a dtype.
const char* safetensors_dtype_name(DType t);

// Writes tensors (F32/F64/I32/U16/U32 -> "F32","F64","I32","U16","U32"), names from
// Tensor::name (must be unique, non-empty and not "__metadata__"), with wersa::write_file
// (atomic replace of a regular file; in place onto a device).
void save_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);  // reads the whole file and validates everything
  // In file order (by begin offset).
  const std::vector<SafeTensorEntry>& entries() const { return entries_; }
  bool has(std::string_view name) const { return index_.count(std::string(name)) != 0; }
  const SafeTensorEntry& entry(std::string_view name) const;  // error if missing
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Copies tensor `name` into dst (on any device; a device tensor through a host copy); errors if missing, or
  // dtype/shape differ from dst's.
  void read_into(std::string_view name, const Tensor& dst) const;
  const std::string& path() const { return path_; }
  bool checksummed() const { return checksummed_; }  // the data's SHA-256 was present and verified

 private:
  std::string path_;
  std::string bytes_;        // the whole file
  uint64_t data_start_ = 0;  // 8 + header length
  std::vector<SafeTensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  bool checksummed_ = false;
};

}  // namespace wersa::io
