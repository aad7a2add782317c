// libFuzzer target: a corrupt or hostile peer. Each input makes a valid named object of the kind
// its first byte picks, overwrites bytes of the segment (header, control block, ring indices,
// records) with the rest of the input, then opens the object by name and uses it without blocking.
// Every outcome must be an exception or a normal result; a crash, an out-of-bounds access
// (AddressSanitizer) or undefined behaviour (UBSan) is a finding.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>

#include <cereal/types/string.hpp>

#include <multiproc/multiproc.hpp>

namespace mp = multiproc;

namespace {

const std::string name = "fuzz-segment-" + std::to_string(::getpid());

// Overwrites the segment's bytes from `offset` on with `patch` (clipped to the file), through a
// mapping of our own, as a hostile process would. The `kept` bytes (a lock's mutex) are put back:
// a peer that can write a lock word can hold the lock forever, a denial of service that no check
// can tell from a slow holder, and that would only show here as a hang.
struct Range {
  std::size_t offset = 0;
  std::size_t size = 0;
};
void overwrite(std::size_t offset, const std::uint8_t* patch, std::size_t size, Range kept) {
  const int fd = ::open(("/dev/shm/" + mp::shm_file_name(name)).c_str(), O_RDWR);
  if (fd < 0) return;
  struct stat st {};
  ::fstat(fd, &st);
  const auto file = static_cast<std::size_t>(st.st_size);
  void* base = ::mmap(nullptr, file, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) return;
  std::string saved(kept.size, '\0');
  if (kept.offset + kept.size <= file) {
    std::memcpy(saved.data(), static_cast<char*>(base) + kept.offset, kept.size);
  }
  if (offset < file) {
    std::memcpy(static_cast<char*>(base) + offset, patch, std::min(size, file - offset));
  }
  if (kept.offset + kept.size <= file) {
    std::memcpy(static_cast<char*>(base) + kept.offset, saved.data(), kept.size);
  }
  // A zero magic means "being built": openers then wait 2 s for the creator (tested elsewhere),
  // which would only slow the fuzzer down. Any other wrong magic is refused at once.
  auto& magic = static_cast<mp::SegmentHeader*>(base)->magic;
  if (magic == 0) {
    magic = 1;
  }
  ::munmap(base, file);
}

std::size_t prefix_offset() {
  const int fd = ::open(("/dev/shm/" + mp::shm_file_name(name)).c_str(), O_RDONLY);
  mp::SegmentHeader header{};
  if (fd >= 0 && ::pread(fd, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
    header.prefix_offset = 0;
  }
  ::close(fd);
  return static_cast<std::size_t>(header.prefix_offset);
}

// Makes the object, lets `damage` loose on it, then opens and uses it with `use`.
template <class Make, class Use>
void attack(const std::uint8_t* data, std::size_t size, Make make, Use use, bool keep_prefix_lock = false) {
  mp::ScopedUnlink cleanup{name};
  Range lock;
  {
    make();  // and unmap it again
    if (keep_prefix_lock) {
      lock = {prefix_offset(), sizeof(mp::LockState)};
    }
  }
  // Byte 1 and 2: where the patch starts (the first 64 KiB: header, control block, first slots).
  const std::size_t offset = size >= 3 ? (static_cast<std::size_t>(data[1]) << 8 | data[2]) % 1024 : 0;
  if (size > 3) overwrite(offset, data + 3, size - 3, lock);
  try {
    use();
  } catch (const std::exception&) {  // multiproc's errors, a pthread call refusing a garbage
  }                                  // mutex, a semaphore count at its maximum...
  try {
    (void)mp::describe_segment(name);
    (void)mp::inspect_segment(name);
  } catch (const mp::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 9) {
    case 0:
      attack(data, size, [] { mp::Value<long>(mp::create, name, 5); },
             [] { (void)mp::Value<long>(mp::open, name).value(); });
      break;
    case 1:
      attack(data, size, [] { mp::Array<int>(mp::create, name, 100); }, [] {
        mp::Array<int> array(mp::open, name);
        long sum = 0;
        for (const int x : array) sum += x;
        (void)sum;
      });
      break;
    case 2:
      attack(data, size, [] { mp::Semaphore(mp::create, name, 2); }, [] {
        mp::Semaphore s(mp::open, name);
        (void)s.get_value();
        if (s.acquire(std::chrono::milliseconds(0))) s.release();
      });
      break;
    case 3:
      attack(data, size, [] { mp::Event(mp::create, name); }, [] {
        mp::Event e(mp::open, name);
        (void)e.is_set();
        (void)e.wait(std::chrono::milliseconds(0));
      });
      break;
    case 4:
      attack(data, size, [] { mp::Barrier(mp::create, name, 3); }, [] {
        mp::Barrier b(mp::open, name);
        (void)b.parties();  // the others take the guard lock, whose word the patch may hold
      });
      break;
    case 5:
      attack(data, size,
             [] {
               mp::Queue<long> q(mp::create, name, 8);
               for (long i = 0; i < 5; ++i) q.put(i);
             },
             [] {
               mp::Queue<long> q(mp::open, name);
               (void)q.qsize();
               for (int i = 0; i < 10; ++i) (void)q.try_get();
               (void)q.try_put(1);
             });
      break;
    case 6:
      attack(data, size,
             [] {
               mp::Queue<std::string> q(mp::create, name, 8);
               q.put("hello");
               q.put(std::string(100, 'x'));
             },
             [] {
               mp::Queue<std::string> q(mp::open, name);
               (void)q.qsize();
               for (int i = 0; i < 10; ++i) (void)q.try_get();
               (void)q.try_put("again");
             },
             true);
      break;
    case 7:
      attack(data, size,
             [] {
               mp::SpscRing<int> r(mp::create, name, 8);
               (void)r.try_push(1);
             },
             [] {
               mp::SpscRing<int> r(mp::open, name);
               for (int i = 0; i < 10; ++i) (void)r.try_pop();
               (void)r.try_push(2);
             });
      break;
    case 8:
      attack(data, size,
             [] {
               mp::MpmcRing<int> r(mp::create, name, 8);
               (void)r.try_push(1);
             },
             [] {
               mp::MpmcRing<int> r(mp::open, name);
               for (int i = 0; i < 10; ++i) (void)r.try_pop();
               (void)r.try_push(2);
             });
      break;
  }
  return 0;
}
