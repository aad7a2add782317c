#pragma once
// The tags that say where a named object comes from, for every shared object's constructors:
//   multiproc::Event e{multiproc::create, "ready"};   multiproc::Event f{multiproc::open, "ready"};
// (A header of their own, below the segments, so that the codec can open an object by name.)

namespace multiproc {

// Create a new named object; AlreadyExists if the name is taken. `create.with_mode(0660)` widens
// the permissions (the default 0600 lets only the creating user in; the umask is not applied).
struct create_t {
  unsigned permissions = 0600;
  [[nodiscard]] constexpr create_t with_mode(unsigned mode) const noexcept { return create_t{mode}; }
};
// Open an existing named object; NotFound if absent, LayoutMismatch if it holds another type.
struct open_t {};
// Open the named object if it exists, else create it.
struct open_or_create_t {
  unsigned permissions = 0600;
  [[nodiscard]] constexpr open_or_create_t with_mode(unsigned mode) const noexcept {
    return open_or_create_t{mode};
  }
};
inline constexpr create_t create{};
inline constexpr open_t open{};
inline constexpr open_or_create_t open_or_create{};

}  // namespace multiproc
