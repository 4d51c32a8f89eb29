// The one translation unit of kiln::compiled (see CMakeLists.txt): kiln's non-template
// functions, compiled once for a program that links kiln::compiled.
#include <kiln/compiled.hpp>
