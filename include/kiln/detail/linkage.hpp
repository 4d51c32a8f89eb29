// kiln/detail/linkage.hpp — where kiln's non-template functions are compiled.
//
// By default kiln is header-only: each header defines its non-template functions `inline`, at
// its end, and every translation unit that calls one compiles it. A program built with
// KILN_SEPARATE_COMPILATION sees only their declarations; their definitions are compiled once,
// in the one translation unit that includes <kiln/compiled.hpp>. With CMake, linking
// kiln::compiled instead of kiln::kiln does both.
//
// These are the free functions of more than a few lines and the members of the callbacks, the
// configuration, the readers and the data sets. Templates stay in the headers either way, and
// so do one-line helpers and the small members of policies (a loss's validate(), an
// optimizer's options()), which read best where the policy is defined.
//
//   KILN_DECL void write_submission(...);   // `inline` when header-only, else nothing
//   #if KILN_FUNCTION_DEFINITIONS           // the definitions, at the end of the header
#pragma once

#if !defined(KILN_SEPARATE_COMPILATION)
#define KILN_DECL inline
#define KILN_FUNCTION_DEFINITIONS 1
#elif defined(KILN_COMPILING_DEFINITIONS)
#define KILN_DECL
#define KILN_FUNCTION_DEFINITIONS 1
#else
#define KILN_DECL
#define KILN_FUNCTION_DEFINITIONS 0
#endif
