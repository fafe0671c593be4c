// safetensors: round trips, the exact bytes of the format, every validation error, and a
// corruption sweep (no input may crash the reader or escape as anything but wersa::Error).
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/common/file.h"
#include "wersa/common/sha256.h"
#include "wersa/io/safetensors.h"

using namespace wersa;
using namespace wersa::test;
using wersa::io::SafeTensorsFile;

namespace {

// Temporary files, removed when the test program exits.
struct TmpFiles {
  std::vector<std::string> paths;
  ~TmpFiles() {
    for (const std::string& p : paths) ::unlink(p.c_str()), ::unlink((p + ".tmp").c_str());
  }
} tmp_files;

std::string tmp_path(const std::string& name) {
  const std::string p = ::testing::TempDir() + "wersa_st_" + std::to_string(::getpid()) + "_" + name;
  tmp_files.paths.push_back(p);
  return p;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A hand-built file: length prefix, header (padded to 8 unless told otherwise), data.
std::string raw_file(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  return le64(h.size()) + h + data;
}

// Loads `bytes` from a file and returns the error message ("" when it loads).
std::string load_error(const std::string& bytes, const std::string& path) {
  spit(path, bytes);
  try {
    SafeTensorsFile f(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Expects loading `header` + `data` to fail with a one-line message naming the file and
// containing `needle`.
void expect_load_error(const std::string& header, const std::string& data, const std::string& needle) {
  const std::string path = tmp_path("bad.safetensors");
  const std::string msg = load_error(raw_file(header, data), path);
  EXPECT_NE(msg, "") << "loaded without error: " << header;
  EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nwanted: " << needle;
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the file: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b,
                  uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(b) + "," + std::to_string(e) + "]}";
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && (a.bytes() == 0 || std::memcmp(a.data, b.data, a.bytes()) == 0);
}

}  // namespace

TEST(SafeTensors, RoundTripAllDtypesAndMetadata) {
  std::vector<Buf> bufs;
  bufs.emplace_back(DType::F32, Shape{3, 5}, "blocks.0.attn.wq");
  bufs.emplace_back(DType::F64, Shape{7}, "omega");
  bufs.emplace_back(DType::I32, Shape{2, 3, 4}, "ids");
  bufs.emplace_back(DType::U16, Shape{13}, "tokens16");  // odd byte count before 4-byte dtypes
  bufs.emplace_back(DType::U32, Shape{1, 2, 1, 3}, "tokens32");
  bufs.emplace_back(DType::F32, Shape{}, "scalar");
  bufs.emplace_back(DType::F64, Shape{0, 4}, "empty");
  for (size_t k = 0; k < bufs.size(); ++k) {
    Buf& b = bufs[k];
    for (int64_t i = 0; i < b.n(); ++i) {
      const bool is_float = b.t.dtype == DType::F32 || b.t.dtype == DType::F64;
      const double v = is_float ? rng_normal(7, k, i) : double((i * 2654435761u + k) % 60000);
      b.set(i, b.t.dtype == DType::I32 ? v - 30000 : v);
    }
  }
  std::vector<Tensor> ts;
  for (const Buf& b : bufs) ts.push_back(b.t);
  const std::map<std::string, std::string> meta = {
      {"format", "wersa"}, {"step", "123"}, {"note", "unicode \xc3\xa9 and \"quotes\""}};
  const std::string path = tmp_path("roundtrip.safetensors");
  io::save_safetensors(path, ts, meta);
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0) << "temporary file left behind";

  SafeTensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  // The writer adds the SHA-256 of the data buffer (checked on load) to the caller's metadata.
  std::map<std::string, std::string> want = meta;
  const std::string bytes = slurp(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  want["data_sha256"] = sha256_hex(std::string_view(bytes).substr(8 + hlen));
  EXPECT_EQ(f.metadata(), want);
  EXPECT_TRUE(f.checksummed());
  ASSERT_EQ(f.entries().size(), bufs.size());
  uint64_t prev_end = 0;
  for (const io::SafeTensorEntry& e : f.entries()) {
    EXPECT_EQ(e.begin, prev_end) << e.name;  // contiguous, in file order
    EXPECT_EQ(e.begin % dtype_size(e.dtype), 0u) << e.name << " is not naturally aligned";
    prev_end = e.end;
  }
  for (const Buf& b : bufs) {
    ASSERT_TRUE(f.has(b.t.name)) << b.t.name;
    const io::SafeTensorEntry& e = f.entry(b.t.name);
    EXPECT_EQ(e.dtype, b.t.dtype) << b.t.name;
    EXPECT_EQ(e.shape, b.t.shape) << b.t.name;
    EXPECT_EQ(e.end - e.begin, b.t.bytes()) << b.t.name;
    Buf back(b.t.dtype, b.t.shape, b.t.name);
    back.randn(99);
    f.read_into(b.t.name, back);
    EXPECT_TRUE(same_bytes(back.t, b.t)) << b.t.name;
  }
  EXPECT_FALSE(f.has("nope"));

  // Saving again over an existing file replaces it.
  io::save_safetensors(path, {bufs[1].t});
  SafeTensorsFile g(path);
  EXPECT_EQ(g.entries().size(), 1u);
  EXPECT_EQ(g.metadata().size(), 1u);  // only the checksum
  EXPECT_EQ(g.metadata().count("k"), 0u);
}

TEST(SafeTensors, FormatBytes) {
  Buf a(DType::F32, {2}, "a");
  a.set(0, 1.0), a.set(1, -2.0);
  Buf b(DType::U16, {1}, "b");
  b.set(0, 0x1234);
  const std::string path = tmp_path("format.safetensors");
  io::save_safetensors(path, {b.t, a.t}, {{"k", "v"}});
  const std::string bytes = slurp(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  // F32 (4-byte elements) before U16: largest elements first, then by name.
  const std::string data_sum =
      sha256_hex(std::string("\0\0\x80\x3f\0\0\0\xc0\x34\x12", 10));  // the bytes checked below
  const std::string json = "{\"__metadata__\":{\"data_sha256\":\"" + data_sum +
                           "\",\"k\":\"v\"},"
                           "\"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]},"
                           "\"b\":{\"data_offsets\":[8,10],\"dtype\":\"U16\",\"shape\":[1]}}";
  const std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(n, padded.size());
  ASSERT_EQ(bytes.size(), 8 + n + 10);
  EXPECT_EQ(bytes.substr(8, n), padded);
  // 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian; then 0x1234 little-endian.
  const unsigned char data[10] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0x34, 0x12};
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, data, 10), 0);

  // A hand-built file in the key order PyTorch's safetensors writes, with an unpadded header.
  const std::string hand = raw_file("{\"w\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[0,8]}}",
                                    std::string("\0\0\0\0\0\0\xf0\x3f", 8),
                                    /*pad=*/false);
  spit(path, hand);
  SafeTensorsFile f(path);
  Buf w(DType::F64, {1, 1});
  f.read_into("w", w);
  EXPECT_EQ(w.get(0), 1.0);

  // No tensors at all: a valid, empty file.
  io::save_safetensors(path, {});
  const std::string empty = "{\"__metadata__\":{\"data_sha256\":\"" + sha256_hex("") + "\"}}";
  const std::string padded_empty = empty + std::string((8 - empty.size() % 8) % 8, ' ');
  EXPECT_EQ(slurp(path), le64(padded_empty.size()) + padded_empty);
  EXPECT_TRUE(SafeTensorsFile(path).entries().empty());
}

TEST(SafeTensors, WriterErrors) {
  Buf a(DType::F32, {2}, "a"), a2(DType::F32, {3}, "a"), unnamed(DType::F32, {2}),
      meta(DType::F32, {1}, "__metadata__");
  const std::string path = tmp_path("werr.safetensors");
  auto expect_err = [&](const std::vector<Tensor>& ts, const std::string& needle, const std::string& p) {
    try {
      io::save_safetensors(p, ts);
      ADD_FAILURE() << "no error; wanted " << needle;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  };
  expect_err({a.t, a2.t}, "two tensors are named 'a'", path);
  expect_err({unnamed.t}, "without a name", path);
  expect_err({meta.t}, "reserved", path);
  Tensor nodata(nullptr, DType::F32, Device::CPU, {2}, "n");
  expect_err({nodata}, "has no data", path);
  expect_err({a.t}, "cannot create file", tmp_path("no_such_dir/x.safetensors"));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "a failed save must not create the file";
}

TEST(SafeTensors, MissingTensorAndMismatchMessages) {
  std::vector<Buf> bufs;
  for (int i = 0; i < 36; ++i) bufs.emplace_back(DType::F32, Shape{2}, "t" + std::to_string(i));
  bufs.emplace_back(DType::F32, Shape{3, 4}, "x");
  std::vector<Tensor> ts;
  for (const Buf& b : bufs) ts.push_back(b.t);
  const std::string path = tmp_path("msg.safetensors");
  io::save_safetensors(path, ts);
  SafeTensorsFile f(path);
  auto message = [](const std::function<void()>& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message([&] { f.entry("blocks.0.attn.wq"); }),
            path + ": no tensor 'blocks.0.attn.wq' (the file has 37 tensors)");
  Buf dst(DType::F32, {4, 4});
  EXPECT_EQ(message([&] { f.read_into("blocks.0.attn.wq", dst); }),
            path + ": no tensor 'blocks.0.attn.wq' (the file has 37 tensors)");
  EXPECT_EQ(message([&] { f.read_into("x", dst); }), path + ": tensor 'x' has shape [3, 4], expected [4, 4]");
  Buf dst64(DType::F64, {3, 4});
  EXPECT_EQ(message([&] { f.read_into("x", dst64); }), path + ": tensor 'x' has dtype F32, expected F64");
  Buf ok(DType::F32, {3, 4});
  EXPECT_EQ(message([&] { f.read_into("x", ok); }), "(no error)");
}

// Tensors on a device are written and read through host staging: the file is the one the same
// values on the CPU give, byte for byte. Without CUDA the device copy is the error.
TEST(SafeTensors, DeviceTensorsThroughHostStaging) {
  Buf x(DType::F32, {3, 5}, "x");
  for (int64_t i = 0; i < 15; ++i) static_cast<float*>(x.t.data)[i] = 0.25f * float(i) - 1.0f;
  const std::string cpu_path = tmp_path("staging_cpu.safetensors"),
                    dev_path = tmp_path("staging_dev.safetensors");
  io::save_safetensors(cpu_path, {x.t});
  if (!cuda_available()) {
    void* p = nullptr;
    try {
      p = device_alloc(Device::CUDA, 60);
      ADD_FAILURE() << "a CUDA allocation succeeded in a build without CUDA";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
    }
    (void)p;
    return;
  }
  void* d = device_alloc(Device::CUDA, x.t.bytes());
  const Tensor dev(d, DType::F32, Device::CUDA, {3, 5}, "x");
  tensor_copy(dev, x.t);
  io::save_safetensors(dev_path, {dev});
  EXPECT_EQ(read_file(cpu_path, ~size_t(0)), read_file(dev_path, ~size_t(0)));
  tensor_zero(dev);
  SafeTensorsFile(dev_path).read_into("x", dev);
  Buf back(DType::F32, {3, 5}, "x");
  tensor_copy(back.t, dev);
  EXPECT_EQ(std::memcmp(back.t.data, x.t.data, x.t.bytes()), 0);
  device_free(Device::CUDA, d);
}

TEST(SafeTensors, ReaderErrors) {
  const std::string path = tmp_path("short.safetensors");
  // Missing file, and short files.
  EXPECT_NE(load_error("", path).find("too short"), std::string::npos);
  EXPECT_NE(load_error("abcde", path).find("is 5 bytes, too short"), std::string::npos);
  ::unlink(path.c_str());
  try {
    SafeTensorsFile f(path);
    ADD_FAILURE() << "missing file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": cannot open file"), std::string::npos) << e.what();
  }
  EXPECT_NE(load_error(le64(1000) + "{}", path).find("header length 1000 runs past the end"),
            std::string::npos);
  EXPECT_NE(load_error(le64(1ull << 40) + "{}", path).find("is absurd"), std::string::npos);
  EXPECT_NE(load_error(le64(~0ull) + "{}", path).find("is absurd"), std::string::npos);

  const std::string f4(4, '\0');
  expect_load_error("{not json", "", "header: invalid JSON");
  expect_load_error("", "", "header: invalid JSON");
  expect_load_error("[1, 2]", "", "expected a JSON object");
  expect_load_error("{\"a\": 3}", "", "tensor 'a': header entry must be an object");
  expect_load_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", f4,
                    "tensor 'a': header entry lacks 'dtype'");
  expect_load_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", f4, "lacks 'shape'");
  expect_load_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", f4, "lacks 'data_offsets'");
  expect_load_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", f4,
                    "unknown header field 'x'");
  expect_load_error("{" + entry("a", "BF16", "[2]", 0, 4) + "}", f4, "tensor 'a': unknown dtype \"BF16\"");
  expect_load_error("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", f4,
                    "dtype must be a string");
  expect_load_error("{" + entry("a", "F32", "[-1]", 0, 4) + "}", f4, "must be non-negative, got -1");
  expect_load_error("{" + entry("a", "F32", "[1.5]", 0, 4) + "}", f4, "must be an integer, got 1.5");
  expect_load_error("{" + entry("a", "F32", "[1,1,1,1,1]", 0, 4) + "}", f4, "shape has rank 5");
  expect_load_error("{" + entry("a", "F32", "1", 0, 4) + "}", f4, "shape must be an array");
  expect_load_error("{" + entry("a", "F64", "[4611686018427387904]", 0, 4) + "}", f4, "needs over 2^64");
  expect_load_error("{" + entry("a", "F32", "[4294967296,4294967296,4294967296,0]", 0, 0) + "}", "",
                    "too many elements");
  expect_load_error("{" + entry("a", "F32", "[1]", 0, 8) + "}", f4, "lie outside the data buffer of 4 bytes");
  expect_load_error("{" + entry("a", "F32", "[1]", 4, 0) + "}", f4, "lie outside");
  expect_load_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", f4,
                    "must be [begin, end]");
  expect_load_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", f4, "non-negative");
  expect_load_error("{" + entry("a", "F32", "[2]", 0, 4) + "}", f4, "span 4 bytes, but F32 [2] needs 8");
  expect_load_error("{" + entry("a", "F32", "[1000000000000]", 0, 4) + "}", f4, "needs 4000000000000");
  expect_load_error("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[1]", 4, 8) + "}",
                    std::string(8, '\0'), "tensor 'b' (bytes 4..8) overlaps tensor 'a' (bytes 0..8)");
  expect_load_error("{" + entry("a", "F32", "[1]", 4, 8) + "}", std::string(8, '\0'), "leaving a gap");
  expect_load_error("{" + entry("a", "F32", "[1]", 0, 4) + "}", std::string(8, '\0'), "trailing bytes");
  expect_load_error("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 0, 4) + "}", f4,
                    "duplicate key 'a'");
  expect_load_error("{" + entry("", "F32", "[1]", 0, 4) + "}", f4, "empty name");
  expect_load_error("{\"__metadata__\": [1]}", "", "__metadata__ must be an object");
  expect_load_error("{\"__metadata__\": {\"k\": 1}}", "", "__metadata__ 'k' must be a string");
  expect_load_error(std::string(5000, '[') + std::string(5000, ']'), "",
                    "header: invalid JSON: nested more than 4 levels deep");
}

namespace {

// What a loaded file changes against the file it was damaged from: "layout" (the number of
// tensors, a dtype or an offset), "data" (a tensor's bytes), "name:X" and "shape:X" (of the
// original tensor X), "meta" (the metadata) and "unchecked" (no checksum verified).
std::set<std::string> differences(const SafeTensorsFile& f, const SafeTensorsFile& orig,
                                  const std::string& bytes) {
  std::set<std::string> d;
  if (!f.checksummed()) d.insert("unchecked");
  if (f.metadata() != orig.metadata()) d.insert("meta");
  const auto& e = f.entries();
  const auto& o = orig.entries();
  if (e.size() != o.size()) return d.insert("layout"), d;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i].dtype != o[i].dtype || e[i].begin != o[i].begin || e[i].end != o[i].end) d.insert("layout");
    if (e[i].name != o[i].name) d.insert("name:" + o[i].name);
    if (!(e[i].shape == o[i].shape)) d.insert("shape:" + o[i].name);
    Buf dst(e[i].dtype, e[i].shape);
    f.read_into(e[i].name, dst);
    const size_t data0 = bytes.size() - size_t(o.back().end);  // the original's data buffer
    if (e[i].end > o.back().end ||
        std::memcmp(dst.t.data, bytes.data() + data0 + e[i].begin, size_t(e[i].end - e[i].begin)) != 0)
      d.insert("data");
  }
  return d;
}

// The span [begin, end) of the first `needle` at or after `from` in `s` (asserting it is there).
std::pair<size_t, size_t> span_of(const std::string& s, const std::string& needle, size_t from = 0) {
  const size_t at = s.find(needle, from);
  EXPECT_NE(at, std::string::npos) << needle;
  return {at, at + needle.size()};
}

}  // namespace

// Every truncation and every single-byte edit of a file, each with the outcome the format
// allows: an edit in the length prefix, the JSON structure, a dtype, an offset, the shape of a
// non-empty tensor or the padding is refused; one in the data or the checksum is refused as
// damaged data; one inside a tensor's name, a metadata string or the shape of the empty tensor
// is refused or loads with exactly that one thing changed (the tensors' dtypes, offsets and
// bytes as written); one in the checksum's key loads only with the data as written. Then
// random multi-byte edits: never a crash, and a file that loads with its checksum verified has
// the tensors' bytes as written.
TEST(SafeTensors, CorruptionNeverCrashes) {
  Buf a(DType::F32, {2, 3}, "blocks.0.w"), b(DType::U16, {5}, "tok"), c(DType::F64, {}, "s"),
      d(DType::I32, {0, 2}, "none");
  a.randn(1), b.set(0, 7), c.set(0, 3.5);
  const std::string path = tmp_path("fuzz_src.safetensors");
  io::save_safetensors(path, {a.t, b.t, c.t, d.t}, {{"k", "v"}});
  const std::string good = slurp(path);
  const SafeTensorsFile orig(path);
  const std::string fuzz = tmp_path("fuzz.safetensors");

  // The regions of the file, from its bytes.
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(good[i])) << (8 * i);
  const size_t data0 = 8 + size_t(hlen), json_end = good.rfind('}', data0) + 1;
  ASSERT_LT(json_end, data0 + 1);
  enum Region { Prefix, Structure, Data, Sum, SumKey, Name, Meta, EmptyShape, Padding };
  std::vector<Region> region(good.size(), Structure);
  std::vector<std::string> what(good.size());
  for (size_t i = 0; i < 8; ++i) region[i] = Prefix;
  for (size_t i = data0; i < good.size(); ++i) region[i] = Data;
  for (size_t i = json_end; i < data0; ++i) region[i] = Padding;
  auto mark = [&](std::pair<size_t, size_t> sp, Region r, const std::string& name = "") {
    for (size_t i = sp.first; i < sp.second; ++i) region[i] = r, what[i] = name;
  };
  const std::string header = good.substr(0, data0);
  const std::string sum = orig.metadata().at("data_sha256");
  mark(span_of(header, sum), Sum);  // the hex digits
  mark({span_of(header, "\"data_sha256\"").first + 1, span_of(header, "\"data_sha256\"").second - 1}, SumKey);
  mark({span_of(header, "\"k\":\"v\"").first + 1, span_of(header, "\"k\":\"v\"").first + 2}, Meta);
  mark({span_of(header, "\"k\":\"v\"").second - 2, span_of(header, "\"k\":\"v\"").second - 1}, Meta);
  for (const char* n : {"blocks.0.w", "tok", "s", "none"}) {
    const auto sp = span_of(header, "\"" + std::string(n) + "\":{");
    mark({sp.first + 1, sp.first + 1 + std::strlen(n)}, Name, n);
  }
  const auto none_shape = span_of(header, "\"shape\":[0,2]", span_of(header, "\"none\":{").first);
  mark({none_shape.second - 2, none_shape.second - 1}, EmptyShape, "none");  // the 2 of [0,2]

  // Tries to load (and fully read) `bytes`; any exception other than wersa::Error is a failure.
  // Returns the differences of a file that loads, or the message of one refused.
  int loaded = 0, rejected = 0;
  auto attempt = [&](const std::string& bytes, const std::string& label, std::set<std::string>* diffs) {
    spit(fuzz, bytes);
    try {
      SafeTensorsFile f(fuzz);
      *diffs = differences(f, orig, good);
      ++loaded;
      return std::string();
    } catch (const Error& e) {
      ++rejected;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << label << ": " << e.what();
      return std::string(e.what());
    } catch (const std::exception& e) {
      ADD_FAILURE() << label << ": escaped as " << typeid(e).name() << ": " << e.what();
      return std::string("escaped");
    }
  };

  // Every truncation is invalid: the tensors no longer fit (or the header is cut).
  for (size_t len = 0; len < good.size(); ++len) {
    spit(fuzz, good.substr(0, len));
    EXPECT_THROW(SafeTensorsFile{fuzz}, Error) << "truncated to " << len << " bytes";
  }
  // Single-byte corruptions everywhere, with bytes that matter to JSON and to the length prefix.
  const unsigned char repl[] = {0x00, 0xff, '"', '{', '}', '[', ']', ',', ':', '9', '-', ' ', '\\', 0x80};
  int loaded_per_region[9] = {};
  for (size_t pos = 0; pos < good.size(); ++pos) {
    std::vector<unsigned char> bytes(std::begin(repl), std::end(repl));
    bytes.push_back(static_cast<unsigned char>(good[pos] ^ 0x01));  // a bit flip
    for (unsigned char r : bytes) {
      if (char(r) == good[pos]) continue;  // not an edit
      std::string bad = good;
      bad[pos] = char(r);
      const std::string label = "byte " + std::to_string(pos) + " = " + std::to_string(int(r));
      std::set<std::string> diffs;
      const std::string msg = attempt(bad, label, &diffs);
      const Region g = region[pos];
      if (msg.empty()) ++loaded_per_region[g];
      switch (g) {
        case Data:
          EXPECT_NE(msg.find(fuzz + ": the tensor data is damaged"), std::string::npos)
              << label << ": " << msg;
          break;
        case Sum:  // a JSON string still: a checksum that does not match (or is not hex)
          EXPECT_EQ(msg.rfind(fuzz + ": ", 0), 0u) << label << ": " << msg;
          if (r >= 0x20 && r < 0x7f && r != '"' && r != '\\')
            EXPECT_NE(msg.find("damaged"), std::string::npos) << label << ": " << msg;
          break;
        case Name:
          if (msg.empty()) EXPECT_EQ(diffs, std::set<std::string>{"name:" + what[pos]}) << label;
          break;
        case Meta:
          if (msg.empty()) EXPECT_EQ(diffs, std::set<std::string>{"meta"}) << label;
          break;
        case EmptyShape:
          if (msg.empty()) EXPECT_EQ(diffs, std::set<std::string>{"shape:none"}) << label;
          break;
        case SumKey:  // the checksum is no longer found; the data is as written
          if (msg.empty()) EXPECT_EQ(diffs, (std::set<std::string>{"meta", "unchecked"})) << label;
          break;
        default:
          EXPECT_NE(msg, "") << label << " (region " << int(g) << ") loaded";
      }
    }
  }
  // Each kind of harmless edit happens, and loads.
  EXPECT_GT(loaded_per_region[Name], 0);
  EXPECT_GT(loaded_per_region[Meta], 0);
  EXPECT_GT(loaded_per_region[EmptyShape], 0);
  // Random multi-byte corruptions, insertions and deletions: a file that still loads with its
  // checksum verified has every tensor's dtype, offsets and bytes as written.
  int unchecked = 0;
  for (uint64_t trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    const int edits = 1 + int(rng_bits(5, trial, 0) % 4);
    for (int k = 0; k < edits && !bad.empty(); ++k) {
      const uint64_t bits = rng_bits(5, trial, 1 + k);
      const size_t pos = size_t(bits % bad.size());
      const char byte = char((bits >> 32) & 0xff);
      switch ((bits >> 40) % 3) {
        case 0:
          bad[pos] = byte;
          break;
        case 1:
          bad.insert(bad.begin() + long(pos), byte);
          break;
        default:
          bad.erase(bad.begin() + long(pos));
      }
    }
    std::set<std::string> diffs;
    const std::string label = "random trial " + std::to_string(trial);
    if (!attempt(bad, label, &diffs).empty()) continue;
    if (diffs.count("unchecked")) {
      // The edits hit the checksum's key, so nothing can vouch for the data of this file (a
      // plain file with no mark of its writer; files whose metadata names this engine as their
      // writer must carry the checksum).
      ++unchecked;
      continue;
    }
    EXPECT_EQ(diffs.count("layout"), 0u) << label << ": " << ::testing::PrintToString(diffs);
    EXPECT_EQ(diffs.count("data"), 0u) << label << ": " << ::testing::PrintToString(diffs);
  }
  std::printf("random edits: %d loaded without a checksum (its key damaged)\n", unchecked);
  // Both paths are exercised.
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

// One flipped bit anywhere in the tensor data of a file this engine wrote is refused on load,
// naming the file; so is a damaged checksum.
TEST(SafeTensors, DamagedDataIsRefused) {
  Buf a(DType::F32, {64}, "a");
  for (int64_t i = 0; i < a.n(); ++i) a.set(i, rng_normal(3, 0, i));
  const std::string path = tmp_path("damaged.safetensors");
  io::save_safetensors(path, {a.t}, {{"k", "v"}});
  const std::string good = slurp(path);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(good[i])) << (8 * i);
  for (size_t at : {size_t(8 + hlen), size_t(8 + hlen + 100), good.size() - 1}) {
    std::string bad = good;
    bad[at] = char(bad[at] ^ 0x04);
    spit(path, bad);
    expect_error_contains([&] { SafeTensorsFile f(path); }, path + ": the tensor data is damaged");
  }
  std::string bad = good;
  const size_t sum_at = bad.find("data_sha256") + 14;
  bad[sum_at] = bad[sum_at] == '0' ? '1' : '0';
  spit(path, bad);
  expect_error_contains([&] { SafeTensorsFile f(path); }, "damaged");
  spit(path, good);
  EXPECT_NO_THROW(SafeTensorsFile f(path));
}

// Writing onto a device writes in place: /dev/full reports its error and stays a device.
TEST(SafeTensors, WriteOntoDeviceKeepsTheNode) {
  Buf a(DType::F32, {4}, "a");
  struct stat st {};
  if (::stat("/dev/full", &st) != 0) GTEST_SKIP() << "no /dev/full on this machine";
  expect_error_contains([&] { io::save_safetensors("/dev/full", {a.t}); },
                        "/dev/full: cannot write file: No space left on device");
  ASSERT_EQ(::stat("/dev/full", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_NO_THROW(io::save_safetensors("/dev/null", {a.t}));
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}
