#pragma once
// The library is built with hidden visibility; only what carries MULTIPROC_API is exported.
// Exception classes must be exported so that `catch (const multiproc::Timeout&)` in a user's
// program matches the type thrown inside libmultiproc.so.
#define MULTIPROC_API [[gnu::visibility("default")]]
