#pragma once
// Internal: readable C++ type names, for error messages and reports from other processes.
#include <string>

namespace multiproc::detail {

// "std::runtime_error" for "St13runtime_error"; the input itself if it cannot be demangled.
std::string demangle(const char* mangled);
// The type of the exception being handled, or "unknown exception".
std::string current_exception_type();

}  // namespace multiproc::detail
