#!/usr/bin/env bash
# Makes gpu-bundle.tar.xz in the repository root: what scripts/gpu-check.sh runs on a bare GPU
# machine (CUDA toolkit and driver, none of this project's Debian packages, no network). It holds
# gpu-bundle/bin (the tools and the CUDA tests, built here with -DWERSA_CUDA=ON for
# $WERSA_BUNDLE_ARCH, default 90: the H100 and H200) and gpu-bundle/lib (the shared libraries they
# need that such a machine lacks: OpenBLAS, spdlog, fmt, SentencePiece, the compiler's runtime);
# every binary finds them through the rpath $ORIGIN/../lib. Left out: glibc (the machine's own) and
# cuBLAS and the CUDA runtime (the machine's CUDA toolkit; gpu-check.sh finds them). The tarball
# must stay under 60 MiB (the limit of what travels to the GPU machine with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
command -v nvcc >/dev/null 2>&1 || {
  echo "error: gpu-bundle.sh needs nvcc (the CUDA toolkit) to build the CUDA backend" >&2
  exit 1
}
arch=${WERSA_BUNDLE_ARCH:-90}
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
# The binaries carry the rpath $ORIGIN/../lib from the link on (no patching afterwards), as
# DT_RPATH (--disable-new-dtags), which also serves the bundled libraries' own needs (OpenBLAS's
# libgfortran); a DT_RUNPATH would serve the binary's direct needs only.
cmake -S . -B build-bundle "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DWERSA_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH='$ORIGIN/../lib' \
  -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -DWERSA_TESTS=ON >/dev/null
tools=(wersa-train wersa-eval wersa-generate wersa-bench wersa-server)
tests=(test_backend_ops test_cuda_model)
cmake --build build-bundle -j "$(nproc)" --target "${tools[@]}" "${tests[@]}"
rm -rf gpu-bundle gpu-bundle.tar.xz
mkdir -p gpu-bundle/bin gpu-bundle/lib
for t in "${tools[@]}"; do cp "build-bundle/$t" gpu-bundle/bin/; done
for t in "${tests[@]}"; do cp "build-bundle/tests/$t" gpu-bundle/bin/; done
strip --strip-unneeded gpu-bundle/bin/*
# The libraries: everything ldd resolves, less glibc's own, the dynamic loader, and CUDA's.
keep='^(libc|libm|libdl|libpthread|librt|libresolv|libutil|ld-linux[^ ]*|linux-vdso|libcuda|libcublas|libcublasLt|libcudart|libnvidia[^ ]*)\.so'
for b in gpu-bundle/bin/*; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r soname path; do
  if [[ $soname =~ $keep ]]; then continue; fi
  cp -L "$path" "gpu-bundle/lib/$soname"
done
strip --strip-unneeded gpu-bundle/lib/* 2>/dev/null || true
# Each binary must resolve every bundled library (and what those need) through $ORIGIN/../lib.
for b in gpu-bundle/bin/*; do
  if ldd "$b" | grep -q 'not found'; then
    ldd "$b" >&2
    echo "error: $b: a library is not found" >&2
    exit 1
  fi
  for lib in gpu-bundle/lib/*; do
    n=$(basename "$lib")
    if ldd "$b" | awk -v n="$n" '$1 == n && $3 !~ /gpu-bundle\/bin\/..\/lib\// { bad = 1 } END { exit !bad }'; then
      echo "error: $b: $n resolves outside the bundle: $(ldd "$b" | grep "$n")" >&2
      exit 1
    fi
  done
done
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), CUDA architectures $arch, built $(date -u '+%Y-%m-%d %H:%M UTC')"
  gpu-bundle/bin/wersa-train --version
} >gpu-bundle/BUILD.txt
tar -cJf gpu-bundle.tar.xz gpu-bundle
size=$(stat -c %s gpu-bundle.tar.xz)
echo "gpu-bundle.tar.xz: $((size / 1048576)) MiB ($(du -sh gpu-bundle | cut -f1) unpacked): $(ls gpu-bundle/bin | tr '\n' ' ')"
if [ "$size" -ge $((60 * 1048576)) ]; then
  echo "error: the bundle is over 60 MiB" >&2
  exit 1
fi
