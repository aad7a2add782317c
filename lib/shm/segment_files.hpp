#pragma once
// Internal (lib/shm/segment_files.cpp, which also holds shm_file_name, unlink and ScopedUnlink):
// making and finding the files of named segments under /dev/shm. A named segment is built whole in
// a file of its own ("multiproc~building-<pid>-<n>"), its pages allocated up front, held by a
// shared flock while mapped, and given its name by link(2) only once complete (see segment.hpp);
// a name left on a file that never became an object is taken over.
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace multiproc::detail {

[[noreturn]] inline void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// "12.5 MiB": sizes in the messages of refused allocations.
std::string mebibytes(std::uint64_t bytes);

// The path of a file in /dev/shm.
std::string path_of(std::string_view file);

// The name of the file a segment is built in: unique in this process, and no user name's file.
std::string building_file();

// Allocates every page of the file `fd` now (posix_fallocate), so that running out of shared
// memory is this error, not a SIGBUS at the first write past the end of what tmpfs has. A request
// beyond what the system has (the free space of /dev/shm if `named`, else the memory it could
// still give) is refused before any page is taken: allocating a huge anonymous object page by
// page would push the machine into its OOM killer first. `what` starts every message.
void allocate_pages(int fd, std::uint64_t bytes, const std::string& what, bool named);

// Takes the shared flock that says "in use" (see segment.hpp). Only `multiproc gc` and a create
// replacing a leftover ever hold the exclusive one, and only for an instant, so this waits little.
void hold_shared(int fd, const std::string& what);

// Gives the complete object built in `building` the name file `file` (link(2): atomic, and
// failing if the name is taken). A name held by a file that never became an object and that no
// process holds is taken over; any other holder makes it throw AlreadyExists. `what` starts every
// message. The building file stays; the caller removes it.
void link_name(const std::string& building, const std::string& file, const std::string& what);

}  // namespace multiproc::detail
