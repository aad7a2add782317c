#pragma once
// Internal to the registry: what /proc says about the processes that made and map our objects.
// Another user's processes, or another PID namespace's, may be unreadable: each function says what
// it answers then.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace multiproc::detail {

// The creator is alive if a live process has its pid and did not start after the object was made
// (with a second of slack: the boot time is known to the second only).
bool creator_alive(pid_t pid, std::chrono::system_clock::time_point created);

// The inode of a line of /proc/<pid>/maps ("start-end perms offset major:minor inode path"); 0
// when the line has none.
std::uint64_t mapped_inode(const std::string& line);

// The pids mapping each file of ours in /dev/shm, by inode (sorted). By inode, not by path: a
// creator maps its object under the temporary file it was built in, which its maps show as
// deleted once the object has its name.
std::map<std::uint64_t, std::vector<pid_t>> mappers();

// Some process maps the anonymous shared memory (a memfd of this library) of inode `inode`.
bool anonymous_memory_mapped(std::uint64_t inode);

}  // namespace multiproc::detail
