#pragma once
// Internal: naming a function so that another rank can find it.
//
// Ranks are separate processes, maybe on other machines: the same function sits at another address
// in each (ASLR), so an address means nothing on the wire. A function is named instead by the
// object it lies in (the program or a shared library) and its offset from that object's load base.
// The object is named by a fingerprint of its ELF build-id (the linker's hash of the object's
// contents; Debian's toolchain writes one into every object), so two ranks agree on an object only
// if they loaded the very same build: the same offset is then the same function. A rank that
// receives a name checks that the offset falls inside one of that object's executable segments
// before it calls anything there.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace multiproc::mpi::detail {

// A function as every rank can name it.
struct CodeName {
  std::uint64_t object;  // fingerprint of the containing object's build-id
  std::uint64_t offset;  // from the object's load base
};

// One object loaded in this process.
struct LoadedObject {
  std::uint64_t fingerprint = 0;  // 0: the object has no build-id, so no other rank can name it
  std::string build_id;           // in hex, for messages
  std::string path;               // the file, for messages ("the program" for the main executable)
  std::uintptr_t base = 0;
  struct Range {
    std::uintptr_t first, end;  // absolute addresses, [first, end)
  };
  std::vector<Range> executable;  // its executable segments
};

// The objects this process has loaded, as found by dl_iterate_phdr when it was made.
class LoadedCode {
 public:
  static LoadedCode of_this_process();

  // The object whose executable segments hold `address`; none if no loaded object's do.
  [[nodiscard]] const LoadedObject* containing(std::uintptr_t address) const;
  [[nodiscard]] const LoadedObject* with_fingerprint(std::uint64_t fingerprint) const;
  // The address `name` stands for in this process, if it falls in executable code of an object
  // with that fingerprint.
  [[nodiscard]] std::optional<std::uintptr_t> address_of(const CodeName& name) const;
  // Fingerprints of every object that has one, to tell another rank what it may name.
  [[nodiscard]] std::vector<std::uint64_t> fingerprints() const;

 private:
  std::vector<LoadedObject> objects_;
};

}  // namespace multiproc::mpi::detail
