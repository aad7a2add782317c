#include "mpi/loaded_code.hpp"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <system_error>

namespace multiproc::mpi::detail {

namespace {

constexpr std::uint64_t fnv_offset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;

std::uint64_t fingerprint_of(std::span<const unsigned char> build_id) {
  std::uint64_t hash = fnv_offset;
  for (const unsigned char byte : build_id) {
    hash = (hash ^ byte) * fnv_prime;
  }
  return hash == 0 ? 1 : hash;  // 0 stands for "no build-id"
}

std::string hex(std::span<const unsigned char> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char byte : bytes) {
    out += digits[byte >> 4];
    out += digits[byte & 0xf];
  }
  return out;
}

// The GNU build-id among the notes of one PT_NOTE segment, if it has one. The notes are the
// object's own, mapped read-only by the loader; their sizes are still checked against the segment.
std::span<const unsigned char> build_id_in(const unsigned char* notes, std::size_t size, std::size_t align) {
  const auto padded = [align](std::size_t n) { return (n + align - 1) / align * align; };
  std::size_t at = 0;
  while (size - at >= sizeof(ElfW(Nhdr))) {
    ElfW(Nhdr) header;
    std::memcpy(&header, notes + at, sizeof header);
    at += sizeof header;
    const std::size_t name_size = padded(header.n_namesz);
    const std::size_t desc_size = padded(header.n_descsz);
    if (name_size > size - at || desc_size > size - at - name_size) {
      break;
    }
    const bool gnu = header.n_namesz == 4 && std::memcmp(notes + at, "GNU", 4) == 0;
    if (gnu && header.n_type == NT_GNU_BUILD_ID) {
      return {notes + at + name_size, header.n_descsz};
    }
    at += name_size + desc_size;
  }
  return {};
}

std::string program_path() {
  std::error_code error;
  std::string path = std::filesystem::read_symlink("/proc/self/exe", error).string();
  return path.empty() ? "the program" : path;
}

int add_object(dl_phdr_info* info, std::size_t, void* data) {
  auto& objects = *static_cast<std::vector<LoadedObject>*>(data);
  LoadedObject object;
  object.base = info->dlpi_addr;
  object.path = info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' ? info->dlpi_name : program_path();
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    const std::uintptr_t first = info->dlpi_addr + segment.p_vaddr;
    if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
      object.executable.push_back({first, first + segment.p_memsz});
    } else if (segment.p_type == PT_NOTE && object.fingerprint == 0) {
      // NOLINTNEXTLINE(performance-no-int-to-ptr): the loader's own report of where it mapped the notes
      const auto* notes = reinterpret_cast<const unsigned char*>(first);
      const auto id = build_id_in(notes, segment.p_filesz, segment.p_align == 8 ? 8 : 4);
      if (!id.empty()) {
        object.fingerprint = fingerprint_of(id);
        object.build_id = hex(id);
      }
    }
  }
  if (!object.executable.empty()) {
    objects.push_back(std::move(object));
  }
  return 0;
}

}  // namespace

LoadedCode LoadedCode::of_this_process() {
  LoadedCode code;
  dl_iterate_phdr(add_object, &code.objects_);
  return code;
}

const LoadedObject* LoadedCode::containing(std::uintptr_t address) const {
  for (const LoadedObject& object : objects_) {
    for (const LoadedObject::Range& range : object.executable) {
      if (address >= range.first && address < range.end) {
        return &object;
      }
    }
  }
  return nullptr;
}

const LoadedObject* LoadedCode::with_fingerprint(std::uint64_t fingerprint) const {
  const auto found = std::find_if(objects_.begin(), objects_.end(),
                                  [&](const LoadedObject& object) { return fingerprint != 0 && object.fingerprint == fingerprint; });
  return found == objects_.end() ? nullptr : &*found;
}

std::optional<std::uintptr_t> LoadedCode::address_of(const CodeName& name) const {
  const LoadedObject* object = with_fingerprint(name.object);
  if (object == nullptr || name.offset > UINTPTR_MAX - object->base) {
    return std::nullopt;
  }
  const std::uintptr_t address = object->base + name.offset;
  if (containing(address) != object) {
    return std::nullopt;
  }
  return address;
}

std::vector<std::uint64_t> LoadedCode::fingerprints() const {
  std::vector<std::uint64_t> out;
  for (const LoadedObject& object : objects_) {
    if (object.fingerprint != 0) {
      out.push_back(object.fingerprint);
    }
  }
  return out;
}

}  // namespace multiproc::mpi::detail
