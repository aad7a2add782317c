// libFuzzer target: the codec's decoder fed arbitrary bytes. Every input must decode or throw
// DecodeError; a crash, an out-of-bounds read (AddressSanitizer) or undefined behaviour
// (UBSan) is a finding. The first byte picks the message type, the rest is the message.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>

#include <multiproc/codec.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/error.hpp>

namespace {

struct Order {
  std::string customer;
  std::vector<std::pair<std::string, int>> lines;
  double total = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(customer, lines, total);
  }
};

// `one_spelling`: each value has exactly one encoding, so what decodes must encode to the same
// bytes again (not so for a map, whose input may repeat or disorder keys).
template <class T, bool one_spelling = true>
void decode_as(std::span<const std::byte> bytes) {
  try {
    const T value = multiproc::decode<T>(bytes);
    if (!one_spelling) {
      return;
    }
    std::vector<std::byte> again;
    multiproc::encode(value, again);
    if (again.size() != bytes.size() || !std::equal(again.begin(), again.end(), bytes.begin())) {
      __builtin_trap();
    }
  } catch (const multiproc::DecodeError&) {
  }
}

// A pool worker's reading of an inbox record (what the manager wrote: a TaskHeader's parts): a
// record it accepts must be exactly the header followed by the arguments it names.
void read_task_record(std::span<const std::byte> bytes) {
  try {
    const auto header = multiproc::detail::TaskHeader::read(bytes);
    std::vector<std::byte> again;
    for (const auto part : header.record_parts(bytes.subspan(sizeof header))) {
      again.insert(again.end(), part.begin(), part.end());
    }
    if (again.size() != bytes.size() || !std::equal(again.begin(), again.end(), bytes.begin())) {
      __builtin_trap();
    }
  } catch (const multiproc::DecodeError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0: decode_as<std::string>(bytes); break;
    case 1: decode_as<std::vector<std::int32_t>>(bytes); break;
    case 2: decode_as<std::vector<std::string>>(bytes); break;
    case 3: decode_as<std::map<std::string, double>, false>(bytes); break;
    case 4: decode_as<std::tuple<std::int64_t, std::string, std::vector<std::uint8_t>>>(bytes); break;
    case 5: decode_as<Order>(bytes); break;
    case 6: read_task_record(bytes); break;
    case 7: decode_as<multiproc::detail::ResultMessage>(bytes); break;
  }
  return 0;
}
