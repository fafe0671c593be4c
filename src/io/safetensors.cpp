#include "wersa/io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/sha256.h"
#include "wersa/common/version.h"

namespace wersa::io {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MiB: anything larger is not a real header
constexpr uint64_t kMaxElems = 1ull << 62;     // bound on the product of the non-zero dims
constexpr const char* kMetaKey = "__metadata__";
constexpr const char* kChecksumKey = "data_sha256";  // SHA-256 of the data buffer, hex

bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

bool dtype_from_name(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {{"F32", DType::F32},
                                                        {"F64", DType::F64},
                                                        {"I32", DType::I32},
                                                        {"U16", DType::U16},
                                                        {"U32", DType::U32}};
  for (const auto& [n, t] : table)
    if (s == n) return out = t, true;
  return false;
}

std::string brief(const json& j) { return json_brief(j); }

// The header, through the engine's JSON reader (duplicate keys, which nlohmann would silently
// merge, refused), nested no deeper than a valid header ever needs.
json parse_header(const std::string& file, const char* begin, const char* end) {
  return parse_json(std::string_view(begin, size_t(end - begin)), file + ": header", 4);
}

// Reads a non-negative JSON integer (dims, offsets).
uint64_t get_uint(const std::string& where, const char* what, const json& j) {
  WERSA_CHECK(j.is_number_integer(), where, ": ", what, " must be an integer, got ", brief(j));
  WERSA_CHECK(j.is_number_unsigned(), where, ": ", what, " must be non-negative, got ", brief(j));
  return j.get<uint64_t>();
}

SafeTensorEntry parse_entry(const std::string& file, const std::string& name, const json& e,
                            uint64_t buffer_bytes) {
  const std::string where = file + ": tensor '" + printable(name) + "'";
  WERSA_CHECK(!name.empty(), file, ": invalid header: a tensor has an empty name");
  WERSA_CHECK(e.is_object(), where, ": header entry must be an object, got ", brief(e));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    WERSA_CHECK(e.contains(key), where, ": header entry lacks '", key, "'");
  for (const auto& item : e.items())
    WERSA_CHECK(item.key() == "dtype" || item.key() == "shape" || item.key() == "data_offsets", where,
                ": unknown header field '", printable(item.key()),
                "' (expected dtype, shape and data_offsets)");

  SafeTensorEntry out;
  out.name = name;
  const json& dt = e["dtype"];
  WERSA_CHECK(dt.is_string(), where, ": dtype must be a string, got ", brief(dt));
  WERSA_CHECK(dtype_from_name(dt.get_ref<const std::string&>(), out.dtype), where, ": unknown dtype ",
              brief(dt), " (expected F32, F64, I32, U16 or U32)");

  const json& sh = e["shape"];
  WERSA_CHECK(sh.is_array(), where, ": shape must be an array, got ", brief(sh));
  WERSA_CHECK(sh.size() <= size_t(kMaxDims), where, ": shape has rank ", sh.size(), " (expected at most ",
              kMaxDims, ")");
  // The product of the non-zero dims is bounded even when a zero dim makes the tensor empty,
  // so that Shape::numel() can never overflow on its partial products.
  uint64_t nonzero_prod = 1;
  bool has_zero = false;
  for (const json& d : sh) {
    const uint64_t v = get_uint(where, "every shape dimension", d);
    if (v == 0) {
      has_zero = true;
      continue;
    }
    WERSA_CHECK(v <= kMaxElems && nonzero_prod <= kMaxElems / v, where, ": shape ", brief(sh),
                " has too many elements");
    nonzero_prod *= v;
  }
  out.shape.rank = int(sh.size());
  for (int i = 0; i < out.shape.rank; ++i) out.shape.dim[i] = int64_t(sh[i].get<uint64_t>());

  const json& off = e["data_offsets"];
  WERSA_CHECK(off.is_array() && off.size() == 2, where, ": data_offsets must be [begin, end], got ",
              brief(off));
  out.begin = get_uint(where, "data_offsets", off[0]);
  out.end = get_uint(where, "data_offsets", off[1]);
  WERSA_CHECK(out.begin <= out.end && out.end <= buffer_bytes, where, ": data_offsets [", out.begin, ", ",
              out.end, "] lie outside the data buffer of ", buffer_bytes, " bytes");
  const uint64_t elems = has_zero ? 0 : nonzero_prod;
  const uint64_t esize = dtype_size(out.dtype);
  const bool fits = elems <= ~uint64_t(0) / esize;  // elems <= 2^62, esize <= 8
  WERSA_CHECK(fits && out.end - out.begin == elems * esize, where, ": data_offsets [", out.begin, ", ",
              out.end, "] span ", out.end - out.begin, " bytes, but ", safetensors_dtype_name(out.dtype), " ",
              out.shape.str(), " needs ", fits ? std::to_string(elems * esize) : std::string("over 2^64"));
  return out;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I32:
      return "I32";
    case DType::U16:
      return "U16";
    case DType::U32:
      return "U32";
    case DType::BF16:
      return "BF16";
  }
  return "?";
}

void save_safetensors(const std::string& path, const std::vector<Tensor>& given,
                      const std::map<std::string, std::string>& metadata) {
  WERSA_ASSERT(host_is_little_endian(), "safetensors I/O assumes a little-endian host");
  // Tensors on a device are written through host staging: one host copy each, made here.
  std::vector<Tensor> tensors = given;
  std::vector<std::vector<char>> staged;
  for (Tensor& t : tensors) {
    if (t.device == Device::CPU || t.bytes() == 0 || t.data == nullptr) continue;
    staged.emplace_back(t.bytes());
    Tensor host(staged.back().data(), t.dtype, Device::CPU, t.shape, t.name);
    tensor_copy(host, t);
    t = host;
  }
  std::set<std::string> names;
  for (const Tensor& t : tensors) {
    WERSA_CHECK(!t.name.empty(), path, ": cannot save a tensor without a name (", t.describe(), ")");
    WERSA_CHECK(t.name != kMetaKey, path, ": '", kMetaKey, "' is reserved and cannot name a tensor");
    WERSA_CHECK(names.insert(std::string(t.name)).second, path, ": two tensors are named '", t.name, "'");
    for (int i = 0; i < t.rank(); ++i)
      WERSA_CHECK(t.dim(i) >= 0, path, ": tensor '", t.name, "' has a negative dimension ", t.shape.str());
    WERSA_CHECK(t.bytes() == 0 || t.data != nullptr, path, ": tensor '", t.name, "' has no data");
  }

  // Largest elements first, then by name: deterministic, and every tensor naturally aligned.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t sa = dtype_size(tensors[a].dtype), sb = dtype_size(tensors[b].dtype);
    return sa != sb ? sa > sb : tensors[a].name < tensors[b].name;
  });

  json header = json::object();
  uint64_t offset = 0;
  for (size_t i : order) {
    const Tensor& t = tensors[i];
    json shape = json::array();
    for (int d = 0; d < t.rank(); ++d) shape.push_back(t.dim(d));
    header[std::string(t.name)] = {{"dtype", safetensors_dtype_name(t.dtype)},
                                   {"shape", shape},
                                   {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  WERSA_CHECK(!metadata.count(kChecksumKey), path, ": metadata key '", kChecksumKey, "' is the writer's own");
  std::map<std::string, std::string> meta = metadata;
  Sha256 sum;
  for (size_t i : order)
    sum.update(std::string_view(static_cast<const char*>(tensors[i].data), tensors[i].bytes()));
  meta[kChecksumKey] = sum.hex();
  header[kMetaKey] = meta;

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception&) {
    WERSA_FAIL(path, ": tensor names and metadata must be valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);

  std::vector<ByteSpan> parts = {{prefix, 8}, {text.data(), text.size()}};
  for (size_t i : order) parts.push_back({tensors[i].data, tensors[i].bytes()});
  write_file(path, parts);
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  WERSA_ASSERT(host_is_little_endian(), "safetensors I/O assumes a little-endian host");
  bytes_ = read_file(path, ~size_t(0));

  const uint64_t fsize = bytes_.size();
  WERSA_CHECK(fsize >= 8, path, ": file is ", fsize,
              " bytes, too short for a safetensors header (expected at least 8)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes_[i])) << (8 * i);
  WERSA_CHECK(n <= kMaxHeader, path, ": header length ", n, " is absurd (expected at most ", kMaxHeader,
              " bytes); not a safetensors file?");
  WERSA_CHECK(n <= fsize - 8, path, ": header length ", n, " runs past the end of the file (", fsize,
              " bytes)");
  data_start_ = 8 + n;
  const uint64_t buffer_bytes = fsize - data_start_;

  const json header = parse_header(path, bytes_.data() + 8, bytes_.data() + 8 + n);
  WERSA_CHECK(header.is_object(), path, ": invalid header: expected a JSON object, got ", brief(header));

  for (const auto& item : header.items()) {
    if (item.key() == kMetaKey) {
      WERSA_CHECK(item.value().is_object(), path, ": __metadata__ must be an object, got ",
                  brief(item.value()));
      for (const auto& m : item.value().items()) {
        WERSA_CHECK(m.value().is_string(), path, ": __metadata__ '", printable(m.key()),
                    "' must be a string, got ", brief(m.value()));
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries_.push_back(parse_entry(path, item.key(), item.value(), buffer_bytes));
  }

  // The tensors must tile the buffer exactly: no overlaps, no gaps, nothing left over.
  std::sort(entries_.begin(), entries_.end(), [](const SafeTensorEntry& a, const SafeTensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : (a.end != b.end ? a.end < b.end : a.name < b.name);
  });
  uint64_t covered = 0;
  const SafeTensorEntry* prev = nullptr;
  for (const SafeTensorEntry& e : entries_) {
    WERSA_CHECK(e.begin >= covered, path, ": tensor '", printable(e.name), "' (bytes ", e.begin, "..", e.end,
                ") overlaps tensor '", prev ? printable(prev->name) : std::string(), "' (bytes ",
                prev ? prev->begin : 0, "..", covered, ")");
    WERSA_CHECK(e.begin == covered, path, ": tensor '", printable(e.name), "' starts at byte ", e.begin,
                " of the data buffer, leaving a gap after byte ", covered);
    covered = e.end;
    prev = &e;
  }
  WERSA_CHECK(covered == buffer_bytes, path, ": the tensors cover ", covered, " bytes of a data buffer of ",
              buffer_bytes, " bytes (trailing bytes after the last tensor)");
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;

  // Files written by this engine carry the SHA-256 of their data buffer: a flipped bit anywhere
  // in the tensors is found here, before anything is used. A file whose metadata says this
  // engine wrote it (kWrittenByKey holds its version line) must carry it, so that a damaged key
  // cannot turn the check off. Files of other writers (and of engines before the key) have none.
  const auto sum = metadata_.find(kChecksumKey);
  const auto by = metadata_.find(kWrittenByKey);
  const bool ours = by != metadata_.end() && by->second.rfind("wersa ", 0) == 0;
  WERSA_CHECK(sum != metadata_.end() || !ours, path, ": the file says '", printable(by->second.substr(0, 40)),
              "...' wrote it, but its metadata lacks '", kChecksumKey,
              "' (the SHA-256 of its tensor data): the header is damaged");
  if (sum != metadata_.end()) {
    const std::string& want = sum->second;
    const bool hex = want.size() == 64 && want.find_first_not_of("0123456789abcdef") == std::string::npos;
    WERSA_CHECK(hex, path, ": __metadata__ '", kChecksumKey, "' is '", printable(want.substr(0, 70)),
                "', not a SHA-256 (64 lowercase hex digits): the header is damaged");
    const std::string got = sha256_hex(std::string_view(bytes_.data() + data_start_, buffer_bytes));
    WERSA_CHECK(got == want, path, ": the tensor data is damaged (SHA-256 ", got.substr(0, 16),
                "..., the file says ", want.substr(0, 16), "...)");
    checksummed_ = true;
  }
}

const SafeTensorEntry& SafeTensorsFile::entry(std::string_view name) const {
  auto it = index_.find(std::string(name));
  WERSA_CHECK(it != index_.end(), path_, ": no tensor '", name, "' (the file has ", entries_.size(),
              " tensors)");
  return entries_[it->second];
}

void SafeTensorsFile::read_into(std::string_view name, const Tensor& dst) const {
  const SafeTensorEntry& e = entry(name);
  WERSA_CHECK(dst.dtype == e.dtype, path_, ": tensor '", name, "' has dtype ",
              safetensors_dtype_name(e.dtype), ", expected ", safetensors_dtype_name(dst.dtype));
  WERSA_CHECK(dst.shape == e.shape, path_, ": tensor '", name, "' has shape ", e.shape.str(), ", expected ",
              dst.shape.str());
  const size_t n = size_t(e.end - e.begin);
  WERSA_ASSERT(n == dst.bytes(), "validated entry size");
  if (n == 0) return;
  WERSA_CHECK(dst.data != nullptr, path_, ": tensor '", name, "': destination has no data");
  const char* src = bytes_.data() + data_start_ + e.begin;
  if (dst.device == Device::CPU) {
    std::memcpy(dst.data, src, n);
    return;
  }
  // A device destination: through an aligned host copy (the file's bytes may be unaligned).
  std::vector<char> host(src, src + n);
  tensor_copy(dst, Tensor(host.data(), dst.dtype, Device::CPU, dst.shape, dst.name));
}

}  // namespace wersa::io
