// Fuzz target: the safetensors reader. Feeds the input as a .safetensors file to SafeTensorsFile
// (header length, JSON header, dtypes, shapes, offsets, coverage), then reads every tensor into
// a buffer of its size, and once with a wrong dtype.
// Expected: a wersa::Error for a bad file (the reader validates everything up front). A
// finding: any other exception, a crash, an assert, a sanitizer report, or a read_into that
// fails (or a wrong-dtype read that succeeds) on a file the constructor accepted.
// libfuzzer-options: -max_len=4096
#include <vector>

#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/io/safetensors.h"

using wersa::DType;
using wersa::Tensor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wersa::fuzz::write_temp("input.safetensors", data, size);
  try {
    const wersa::io::SafeTensorsFile f(path);
    for (const auto& e : f.entries()) {
      if (!f.has(e.name) || &f.entry(e.name) != &e) wersa::fuzz::property_failed("entry lookup by name");
      // Accepted entries lie inside the file, so the buffer is at most the input's size.
      std::vector<char> buf(e.end - e.begin);
      const Tensor t(buf.empty() ? nullptr : buf.data(), e.dtype, wersa::Device::CPU, e.shape, e.name);
      f.read_into(e.name, t);
      const DType other = e.dtype == DType::F32 ? DType::I32 : DType::F32;
      bool refused = false;
      try {
        f.read_into(e.name, Tensor(buf.data(), other, wersa::Device::CPU, e.shape, e.name));
      } catch (const wersa::Error&) {
        refused = true;
      }
      if (!refused) wersa::fuzz::property_failed("read_into accepted a wrong dtype");
    }
  } catch (const wersa::Error&) {
    return 0;
  }
  return 0;
}
