// Value, RawValue, Array and RawArray as `multiproc inspect` shows them: their bytes in hex, and
// their values when the element type is a built-in arithmetic type; the lock of the locked forms.
// (The objects themselves are header-only templates: detail/sync/cells.hpp.)
#include <algorithm>
#include <cstring>
#include <sstream>
#include <string_view>

#include <multiproc/lock.hpp>

#include "shm/inspection.hpp"
#include "sync/lock_inspection.hpp"

namespace multiproc::detail {

namespace {

// At most this many values and bytes are shown.
constexpr std::uint64_t shown_values = 64;
constexpr std::uint64_t shown_bytes = 256;

// The elements as numbers: "value" for one, "values" (a list) for several.
template <class T>
void add_numbers_as(const SegmentSnapshot& snapshot, FieldList& out) {
  const SegmentHeader& h = snapshot.header();
  std::ostringstream text;
  const std::uint64_t count = std::min(h.element_count, shown_values);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto bytes = snapshot.element_bytes(i * sizeof(T), sizeof(T));
    if (bytes.size() != sizeof(T)) {
      return;
    }
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    if (h.element_count == 1) {
      out.add("value", value);
      return;
    }
    text << (i == 0 ? "[" : ", ") << +value;
  }
  text << (h.element_count > shown_values ? ", ...]" : "]");
  out.add("values", text.str());
}

void add_elements(const SegmentSnapshot& snapshot, FieldList& out) {
  const SegmentHeader& h = snapshot.header();
  out.add("count", h.element_count);
  const std::uint64_t total = h.element_count * h.element_size;  // checked by header_problem: fits the file
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (const std::byte byte : snapshot.element_bytes(0, std::min(total, shown_bytes))) {
    hex += digits[static_cast<unsigned>(byte) >> 4];
    hex += digits[static_cast<unsigned>(byte) & 15];
  }
  out.add("bytes_hex", hex + (total > shown_bytes ? "..." : ""));
  // Built-in arithmetic types by their Itanium codes.
  const std::string_view type(h.element_name, strnlen(h.element_name, sizeof h.element_name));
  const auto is = [&](auto sample, const char* code) { return type == code && h.element_size == sizeof(sample); };
  if (is(int{}, "i")) add_numbers_as<int>(snapshot, out);
  else if (is(unsigned{}, "j")) add_numbers_as<unsigned>(snapshot, out);
  else if (is(long{}, "l")) add_numbers_as<long>(snapshot, out);
  else if (is(0UL, "m")) add_numbers_as<unsigned long>(snapshot, out);
  else if (is(0LL, "x")) add_numbers_as<long long>(snapshot, out);
  else if (is(0ULL, "y")) add_numbers_as<unsigned long long>(snapshot, out);
  else if (is(short{}, "s")) add_numbers_as<short>(snapshot, out);
  else if (is(static_cast<unsigned short>(0), "t")) add_numbers_as<unsigned short>(snapshot, out);
  else if (is(char{}, "c")) add_numbers_as<char>(snapshot, out);
  else if (is(static_cast<signed char>(0), "a")) add_numbers_as<signed char>(snapshot, out);
  else if (is(static_cast<unsigned char>(0), "h")) add_numbers_as<unsigned char>(snapshot, out);
  else if (is(false, "b")) add_numbers_as<bool>(snapshot, out);
  else if (is(0.0F, "f")) add_numbers_as<float>(snapshot, out);
  else if (is(0.0, "d")) add_numbers_as<double>(snapshot, out);
}

bool inspect_locked_cells(const SegmentSnapshot& snapshot, FieldList& out) {
  const auto lock = snapshot.control<LockState>();
  if (!lock) {
    return false;
  }
  describe_lock(*lock, false, out, "lock_");
  add_elements(snapshot, out);
  return true;
}

bool inspect_raw_cells(const SegmentSnapshot& snapshot, FieldList& out) {
  add_elements(snapshot, out);
  return true;
}

[[maybe_unused]] const bool cells_inspectors_registered =
    register_inspector(ObjectKind::value, {element_type_as_is, inspect_locked_cells}) &&
    register_inspector(ObjectKind::array, {element_type_as_is, inspect_locked_cells}) &&
    register_inspector(ObjectKind::raw_value, {element_type_as_is, inspect_raw_cells}) &&
    register_inspector(ObjectKind::raw_array, {element_type_as_is, inspect_raw_cells});

}  // namespace

}  // namespace multiproc::detail
