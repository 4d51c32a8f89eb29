# Included from tests/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/compile_fail_and_consumer.cmake)
#
# compile_fail.<name>   each misuse in compile_fail/<name>.cpp must fail to compile with kiln's own
#                       static_assert message; compile_fail.valid_pipeline is the positive control.
# consumer.*            a separate CMake project consumes kiln by add_subdirectory (kiln::kiln,
#                       header-only) and by find_package after cmake --install (kiln::compiled),
#                       then builds and runs a tiny fit.

set(_kiln_cf_dir ${CMAKE_CURRENT_LIST_DIR}/compile_fail)
set(_kiln_consumer_dir ${CMAKE_CURRENT_LIST_DIR}/consumer)

# ---------------------------------------------------------------------------------------------
# compile_fail.*
#
# Each case is an OBJECT library (compiled, never linked) left out of `all`; its test asks
# cmake --build for that one target and passes only when the output holds
#   static assertion failed: ... <message>
# on one line (GCC: "static assertion failed: <msg>"; Clang: "static assertion failed due to
# requirement '...': <msg>" or "static_assert failed ... \"<msg>\""). PASS_REGULAR_EXPRESSION
# makes ctest ignore the exit status, so a case that compiled, or failed for another reason,
# prints no such line and fails.
#
# Each case also gets a target cf_<name>_fixed, built with KILN_CF_FIXED, that swaps the misuse
# for its correct form and must compile: `cmake --build . --target kiln_compile_fail_fixed`
# checks that every case fails for its one misuse only. These are not tests (they would double
# the time of `ctest -R compile_fail`).

get_property(_kiln_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(_kiln_multi_config)
  set(_kiln_config_args --config $<CONFIG>)
else()
  set(_kiln_config_args)
endif()

add_custom_target(kiln_compile_fail_fixed)

# kiln_compile_fail(<name> <message>): compile_fail/<name>.cpp must fail with <message>, a
# plain substring of the static_assert text in the headers (regex specials are escaped here).
function(kiln_compile_fail name message)
  add_library(cf_${name} OBJECT EXCLUDE_FROM_ALL ${_kiln_cf_dir}/${name}.cpp)
  kiln_use_pch(cf_${name})

  add_library(cf_${name}_fixed OBJECT EXCLUDE_FROM_ALL ${_kiln_cf_dir}/${name}.cpp)
  kiln_use_pch(cf_${name}_fixed)
  target_compile_definitions(cf_${name}_fixed PRIVATE KILN_CF_FIXED)
  add_dependencies(kiln_compile_fail_fixed cf_${name}_fixed)

  string(REGEX REPLACE "([].[()*+?^$|\\])" "\\\\\\1" escaped "${message}")
  add_test(NAME compile_fail.${name}
    COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target cf_${name} ${_kiln_config_args})
  set_tests_properties(compile_fail.${name} PROPERTIES
    PASS_REGULAR_EXPRESSION "static.assert[^\n]*failed[^\n]*${escaped}"
    RESOURCE_LOCK kiln_build_tree
    TIMEOUT 600
    LABELS compile_fail)
endfunction()

kiln_compile_fail(no_backbone            "kiln::trainer: the pipeline has no backbone")
kiln_compile_fail(two_losses             "kiln::trainer: the pipeline names two losses")
kiln_compile_fail(two_optimizers         "kiln::trainer: the pipeline names two optimizers")
kiln_compile_fail(not_a_policy           "kiln: a type in this pipeline plays no role")
kiln_compile_fail(accumulate_zero        "K is the number of batches per optimizer step and must be at least 1")
kiln_compile_fail(freeze_too_deep        "kiln::freeze<N>: N is larger than the number of top-level children the backbone declares")
kiln_compile_fail(hook_wrong_parameter   "a callback declares 'on_epoch_end' but kiln cannot call it as a hook")
kiln_compile_fail(hook_returns_bool      "a callback declares 'on_batch_end' but kiln cannot call it as a hook")
kiln_compile_fail(callback_without_hook  "kiln::callbacks: a type inside kiln::callbacks{...} has no hook")
kiln_compile_fail(loss_one_argument      "kiln::loss{f}: f must be callable as f(output, target)")
kiln_compile_fail(metric_without_compute "kiln::metrics<Ms...>: a type is not a kiln::Metric")
kiln_compile_fail(backbone_not_a_module  "kiln::backbone<M>: M must be a torch::nn module holder")
kiln_compile_fail(plateau_monitor_never_computed "the pipeline never computes the metric the scheduler monitors")
kiln_compile_fail(plateau_val_monitor_without_validation "which needs validation data")
kiln_compile_fail(warmup_of_one_cycle    "one_cycle already warms up")
kiln_compile_fail(captured_adam          "kiln::cuda_graph: LibTorch's Adam, AdamW and Adagrad keep their step count on the host")
kiln_compile_fail(captured_step_callback "kiln::cuda_graph: a callback has on_before_optimizer_step, which a captured step runs once")
kiln_compile_fail(config_option_type     "has a type kiln::config cannot read")
kiln_compile_fail(ensemble_mixed_kinds   "kiln::ensemble::predict: the members' outputs are of different kinds")
kiln_compile_fail(augment_mix_without_probabilities "kiln::augment: kiln::mixup and kiln::cutmix turn the targets into class probabilities")
kiln_compile_fail(dense_tta_without_inverse "kiln::dense_tta: every variant needs an inverse")
kiln_compile_fail(one_of_mixed_roles     "kiln::one_of: the alternatives play different roles")
kiln_compile_fail(freeze_through_unknown_stage "kiln::models::freeze_through<M, \"stage\">: M has no stage of that name")
kiln_compile_fail(metric_without_reduce  "kiln::metrics<Ms...>: in a data-parallel fit each process validates a share of the data")
# Where LibTorch has NCCL, kiln::nccl compiles: the case is for the others (Debian's CPU build).
get_target_property(_kiln_torch_definitions torch INTERFACE_COMPILE_DEFINITIONS)
if(NOT "${_kiln_torch_definitions}" MATCHES "USE_C10D_NCCL")
  kiln_compile_fail(nccl_without_nccl    "kiln::nccl: this LibTorch was built without NCCL")
endif()

# Positive control: the same mechanism on a valid pipeline must build (exit status 0).
add_library(cf_valid_pipeline OBJECT EXCLUDE_FROM_ALL ${_kiln_cf_dir}/valid_pipeline.cpp)
kiln_use_pch(cf_valid_pipeline)
add_test(NAME compile_fail.valid_pipeline
  COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target cf_valid_pipeline ${_kiln_config_args})
set_tests_properties(compile_fail.valid_pipeline PROPERTIES
  RESOURCE_LOCK kiln_build_tree
  TIMEOUT 600
  LABELS compile_fail)

# ---------------------------------------------------------------------------------------------
# consumer.*
#
# Both configure, build (-j2) and run tests/consumer/main.cpp in a project of their own under
# ${CMAKE_CURRENT_BINARY_DIR}/consumer; see consumer/run.cmake.

string(REPLACE ";" "|" _kiln_prefix_path "${CMAKE_PREFIX_PATH}")  # one argument; run.cmake splits it
set(_kiln_consumer_args
  -DKILN_SOURCE_DIR=${kiln_SOURCE_DIR}
  -DCONSUMER_DIR=${_kiln_consumer_dir}
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer
  "-DGENERATOR=${CMAKE_GENERATOR}"
  -DCONFIG=$<CONFIG>
  -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
  -DTorch_DIR=${Torch_DIR}
  -DBoost_DIR=${Boost_DIR}
  "-DPARENT_PREFIX_PATH=${_kiln_prefix_path}")

foreach(_mode IN ITEMS add_subdirectory find_package)
  add_test(NAME consumer.${_mode}
    COMMAND ${CMAKE_COMMAND} -DMODE=${_mode} ${_kiln_consumer_args}
            -P ${_kiln_consumer_dir}/run.cmake)
  set_tests_properties(consumer.${_mode} PROPERTIES
    RUN_SERIAL TRUE
    TIMEOUT 600
    LABELS consumer)
endforeach()
