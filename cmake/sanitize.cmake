# KILN_SANITIZE: kiln's own tests and examples built with AddressSanitizer and
# UndefinedBehaviorSanitizer (`cmake --preset sanitize`, build-sanitize/).
#
# kiln_sanitize is an INTERFACE target that kiln_use_pch() links into each of kiln's own
# targets (and into the precompiled header they share, whose flags must match). Users of kiln
# are not affected. KILN_TEST_ENVIRONMENT is the environment the sanitized tests run with; it is
# empty otherwise.
#
# LibTorch (Debian's 1.13.1) is not built with the sanitizers, and needs no special treatment:
#  - ASan intercepts malloc/new process-wide, so kiln's reads and writes of memory LibTorch
#    allocated are checked too; LibTorch's own code is not. libstdc++'s container annotations
#    are off (no _GLIBCXX_SANITIZE_VECTOR), so a std::vector filled inside LibTorch and read in
#    kiln raises no false container-overflow.
#  - UBSan's vptr check (part of -fsanitize=undefined) reads the dynamic type of LibTorch's
#    polymorphic objects (modules, optimizers, autograd nodes) through the RTTI LibTorch is built
#    with; it finds nothing to report, so it stays on (no -fno-sanitize=vptr).
#  - LeakSanitizer: LibTorch's one-time allocations stay reachable from its globals and are not
#    reported; cmake/sanitize/lsan.supp is where a leak that is not kiln's would be listed.
# GCC, not clang: clang 14 cannot compile LibTorch 1.13's headers as C++20 against libstdc++ 12
# (see fuzz/fuzz.hpp). Measured: kiln_tests and both examples run clean with no suppression; kiln_tests takes about
# as long as in Release (its time is spent in uninstrumented LibTorch and in the Python
# references), the build about 2.5 times the CPU time of a Release build.
add_library(kiln_sanitize INTERFACE)
set(KILN_TEST_ENVIRONMENT "")
if(KILN_SANITIZE)
  target_compile_options(kiln_sanitize INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(kiln_sanitize INTERFACE -fsanitize=address,undefined)
  set(_kiln_sanitize_dir ${CMAKE_CURRENT_LIST_DIR}/sanitize)
  set(KILN_TEST_ENVIRONMENT
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
    "LSAN_OPTIONS=suppressions=${_kiln_sanitize_dir}/lsan.supp:print_suppressions=0")
endif()
