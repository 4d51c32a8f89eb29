# Runs one consumer test: configure, build (-j2) and run tests/consumer/main.cpp in a project of
# its own, consuming kiln one of two ways.
#
#   cmake -DMODE=add_subdirectory|find_package -DKILN_SOURCE_DIR=<kiln source>
#         -DCONSUMER_DIR=<tests/consumer> -DWORK_DIR=<scratch dir> [-DGENERATOR=...] [-DCONFIG=...]
#         [-DCXX_COMPILER=...] [-DTorch_DIR=...] [-DBoost_DIR=...] [-DPARENT_PREFIX_PATH=a|b]
#         -P run.cmake
#
# find_package: configures a minimal kiln build (no tests, examples or benchmarks) from scratch,
# installs it into a fresh prefix, then builds the consumer against that prefix.
cmake_minimum_required(VERSION 3.22)

foreach(_var MODE KILN_SOURCE_DIR CONSUMER_DIR WORK_DIR)
  if(NOT ${_var})
    message(FATAL_ERROR "run.cmake: pass -D${_var}=...")
  endif()
endforeach()

# Settings that make the inner projects match the outer build.
set(_configure_args)
if(GENERATOR)
  list(APPEND _configure_args -G "${GENERATOR}")
endif()
if(CONFIG)
  list(APPEND _configure_args -DCMAKE_BUILD_TYPE=${CONFIG})
endif()
if(CXX_COMPILER)
  list(APPEND _configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
foreach(_var Torch_DIR Boost_DIR)
  if(${_var})
    list(APPEND _configure_args -D${_var}=${${_var}})
  endif()
endforeach()
string(REPLACE "|" ";" _prefix_path "${PARENT_PREFIX_PATH}")

set(_build_args --parallel 2)
if(CONFIG)
  list(APPEND _build_args --config ${CONFIG})
endif()

# execute_process gets each command written out (no ARGN), so that a quoted
# "-DCMAKE_PREFIX_PATH=a;b" stays one argument.
macro(check what)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer.${MODE}: ${what} failed (${rc})")
  endif()
endmacro()

if(MODE STREQUAL "add_subdirectory")
  set(_build ${WORK_DIR}/subdir-build)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_DIR}/subdir -B ${_build} ${_configure_args}
                          -DKILN_SOURCE_DIR=${KILN_SOURCE_DIR} "-DCMAKE_PREFIX_PATH=${_prefix_path}"
                  RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  check("configuring the consumer")
elseif(MODE STREQUAL "find_package")
  set(_kiln_build ${WORK_DIR}/kiln-build)
  set(_prefix ${WORK_DIR}/prefix)
  set(_build ${WORK_DIR}/package-build)
  # kiln itself from scratch each time: a reconfigured cache could hide a first-configure bug.
  file(REMOVE_RECURSE ${_kiln_build} ${_prefix})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${KILN_SOURCE_DIR} -B ${_kiln_build} ${_configure_args}
                          -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_EXAMPLES=OFF -DKILN_BUILD_BENCHMARKS=OFF
                          "-DCMAKE_PREFIX_PATH=${_prefix_path}"
                  RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  check("configuring kiln")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${_kiln_build} --prefix ${_prefix}
                  RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  check("installing kiln")
  list(PREPEND _prefix_path ${_prefix})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_DIR}/package -B ${_build} ${_configure_args}
                          "-DCMAKE_PREFIX_PATH=${_prefix_path}" -DKILN_EXPECTED_PREFIX=${_prefix}
                  RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  check("configuring the consumer")
else()
  message(FATAL_ERROR "run.cmake: MODE must be add_subdirectory or find_package, not '${MODE}'")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} --build ${_build} ${_build_args}
                RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
check("building the consumer")
execute_process(COMMAND ${_build}/bin/kiln_consumer${CMAKE_EXECUTABLE_SUFFIX}
                RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
check("running the consumer")
message(STATUS "consumer.${MODE}: passed")
