# test_install: installs the build into a temporary prefix and uses it as a user would.
#   1. cmake --install BUILD_DIR --prefix WORK_DIR/prefix;
#   2. the prefix holds the tools, the libraries, exactly the public headers of include/wersa, the
#      CMake package and share/wersa (configs, scripts);
#   3. a consumer project (consumer/) configured with -DCMAKE_PREFIX_PATH=prefix finds the package
#      (find_package(wersa 0.1)), builds, and trains two steps of share/wersa/configs/tiny.json
#      through the library;
#   4. every installed tool answers --version with the engine's version line (this checkout's
#      commit) and --help; the installed wersa-train trains two steps and wersa-eval reads them.
# Run by ctest: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=...
#   -DCXX_COMPILER=... -DBUILD_TYPE=... -DVERSION=... [-DCUDA_ROOT=...] -P run.cmake
cmake_minimum_required(VERSION 3.24)
foreach(v BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER VERSION)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "test_install: -D${v}=... is required")
  endif()
endforeach()

# run(OUT_VAR cmd...): runs cmd in WORK_DIR; fails the test unless it exits 0. OUT_VAR gets
# stdout and stderr together.
function(run out_var)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "test_install: '${cmd}' failed (${rc}):\n${out}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# check_version(WHAT TEXT): TEXT is one version line (and its newline) of this build: "wersa
# VERSION (commit COMMIT[-dirty]; backends CPU...; BLAS ...)".
function(check_version what text)
  string(FIND "${text}" "wersa ${VERSION} (commit ${commit}; " clean)
  string(FIND "${text}" "wersa ${VERSION} (commit ${commit}-dirty; " dirty)
  if(NOT (clean EQUAL 0 OR dirty EQUAL 0) OR NOT text MATCHES "; backends CPU[^;\n]*; BLAS [^\n]+\\)\n$")
    message(FATAL_ERROR "test_install: ${what}: '${text}' is not the version line of this build (expected "
      "'wersa ${VERSION} (commit ${commit}[-dirty]; backends CPU...; BLAS ...)' and a newline)")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# ---- 1. install ----------------------------------------------------------------------------
run(out "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
message(STATUS "installed into ${prefix}")

# ---- 2. what the prefix holds -----------------------------------------------------------------
file(GLOB tool_sources RELATIVE "${SOURCE_DIR}/tools" "${SOURCE_DIR}/tools/wersa-*.cpp")
set(tools)
foreach(src ${tool_sources})
  string(REGEX REPLACE "\\.cpp$" "" name "${src}")
  list(APPEND tools ${name})
  if(NOT EXISTS "${prefix}/bin/${name}")
    message(FATAL_ERROR "test_install: bin/${name} is not installed")
  endif()
endforeach()
list(LENGTH tools n_tools)
if(n_tools LESS 6)
  message(FATAL_ERROR "test_install: found ${n_tools} tools in ${SOURCE_DIR}/tools")
endif()
file(GLOB_RECURSE config_file "${prefix}/*/wersaConfig.cmake")
file(GLOB_RECURSE version_file "${prefix}/*/wersaConfigVersion.cmake")
file(GLOB_RECURSE targets_file "${prefix}/*/wersaTargets.cmake")
if(NOT config_file OR NOT version_file OR NOT targets_file)
  message(FATAL_ERROR "test_install: no wersaConfig.cmake, wersaConfigVersion.cmake and wersaTargets.cmake under ${prefix}")
endif()
get_filename_component(package_dir "${config_file}" DIRECTORY)
file(GLOB_RECURSE libs "${prefix}/*/libwersa.a" "${prefix}/*/libwersa_core.a")
list(LENGTH libs n_libs)
if(NOT n_libs EQUAL 2)
  message(FATAL_ERROR "test_install: libwersa.a and libwersa_core.a are not installed (found: ${libs})")
endif()
# Exactly the public headers: every one of include/wersa, nothing from src/.
file(GLOB_RECURSE want RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/*")
file(GLOB_RECURSE got RELATIVE "${prefix}/include" "${prefix}/include/*")
list(SORT want)
list(SORT got)
if(NOT want STREQUAL got)
  message(FATAL_ERROR "test_install: the installed headers differ from include/:\n  want ${want}\n  got  ${got}")
endif()
foreach(f share/wersa/configs/tiny.json share/wersa/configs/small.json share/wersa/scripts/licence-corpus.sh)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "test_install: ${f} is not installed")
  endif()
endforeach()

# The version line every tool must print: this version, and this checkout's commit (the build
# refreshes it at every build), or "unknown" outside a git checkout.
set(commit "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --show-toplevel WORKING_DIRECTORY "${SOURCE_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE top OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0)
    get_filename_component(top "${top}" REALPATH)
    get_filename_component(src "${SOURCE_DIR}" REALPATH)
    if(top STREQUAL src)
      execute_process(COMMAND "${GIT_EXECUTABLE}" describe --always --abbrev=12 WORKING_DIRECTORY "${SOURCE_DIR}"
        OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE)
    endif()
  endif()
endif()

# ---- 3. a consumer project --------------------------------------------------------------------
# A text to train on: 32 KB of sentences (configs/tiny.json reads 8 x 128 tokens a step).
set(text "")
foreach(i RANGE 1 400)
  math(EXPR a "(${i} * 7919) % 97")
  string(APPEND text "Line ${i}: the quick brown fox ${a} jumps over the lazy dog near the river bank.\n")
endforeach()
file(WRITE "${WORK_DIR}/text.txt" "${text}")

set(consumer_args -S "${SOURCE_DIR}/tests/install/consumer" -B "${WORK_DIR}/consumer" -G "${GENERATOR}"
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON)
if(BUILD_TYPE)
  list(APPEND consumer_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()
if(CUDA_ROOT)
  list(APPEND consumer_args -DCUDAToolkit_ROOT=${CUDA_ROOT})
endif()
run(out "${CMAKE_COMMAND}" ${consumer_args})
string(FIND "${out}" "consumer: wersa ${VERSION} from ${package_dir} " at)
if(at EQUAL -1)
  message(FATAL_ERROR "test_install: the consumer did not find wersa ${VERSION} in ${package_dir}:\n${out}")
endif()
run(out "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer")
run(out "${WORK_DIR}/consumer/consumer" "${prefix}/share/wersa/configs/tiny.json" "${WORK_DIR}/text.txt"
  "${WORK_DIR}/consumer-run")
message(STATUS "consumer:\n${out}")
string(REGEX MATCH "^[^\n]*\n" line "${out}")
check_version("the consumer's first line" "${line}")
if(NOT out MATCHES "consumer: trained 2 steps")
  message(FATAL_ERROR "test_install: the consumer did not train:\n${out}")
endif()

# ---- 4. the installed tools ---------------------------------------------------------------------
foreach(tool ${tools})
  run(out "${prefix}/bin/${tool}" --version)
  check_version("${tool} --version" "${out}")
  run(help "${prefix}/bin/${tool}" --help)
  if(NOT help MATCHES "--version")
    message(FATAL_ERROR "test_install: ${tool} --help does not list --version:\n${help}")
  endif()
endforeach()
message(STATUS "every tool's --version: ${out}")
run(out "${prefix}/bin/wersa-train" --config "${prefix}/share/wersa/configs/tiny.json"
  --set "data.train=${WORK_DIR}/text.txt" --set data.val= --set train.steps=2 --set train.warmup_steps=0
  --set train.eval_every=0 --out "${WORK_DIR}/tool-run")
# The training log starts with the version line (after the time and the level).
string(REGEX MATCH "^[^\n]*\n" first "${out}")
string(REGEX REPLACE "^[0-9:]+ info " "" first "${first}")
check_version("the first line of the installed wersa-train's log" "${first}")
file(READ "${WORK_DIR}/tool-run/config.json" cfg)
string(JSON written_by GET "${cfg}" written_by)
check_version("tool-run/config.json's written_by" "${written_by}\n")
run(out "${prefix}/bin/wersa-eval" --checkpoint "${WORK_DIR}/tool-run" --text "${WORK_DIR}/text.txt"
  --max-tokens 2000)
message(STATUS "the installed wersa-eval on the installed wersa-train's checkpoint:\n${out}")
file(REMOVE_RECURSE "${WORK_DIR}")
message(STATUS "test_install: passed")
