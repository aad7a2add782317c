// Named and anonymous segments: names, exclusivity, permissions, type checks, hostile contents.
#define BOOST_TEST_MODULE segment
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;

namespace {

std::string shm_path(const std::string& name) { return "/dev/shm/" + mp::shm_file_name(name); }

unsigned permissions_of(const std::string& name) {
  struct stat st{};
  BOOST_REQUIRE_EQUAL(::stat(shm_path(name).c_str(), &st), 0);
  return st.st_mode & 0777;
}

void write_file(const std::string& name, const std::string& bytes) {
  const int fd = ::open(shm_path(name).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

}  // namespace

BOOST_AUTO_TEST_CASE(malformed_names_are_refused_everywhere) {
  for (const std::string& bad : {std::string(), std::string("a/b"), std::string("../escape"), std::string("has space"),
                                std::string(201, 'x'), std::string("nul\0in", 6), std::string("tab\t")}) {
    BOOST_CHECK_THROW(mp::Value<int>(mp::create, bad), mp::InvalidName);
    BOOST_CHECK_THROW(mp::Value<int>(mp::open, bad), mp::InvalidName);
    BOOST_CHECK_THROW(mp::Lock(mp::open_or_create, bad), mp::InvalidName);
    BOOST_CHECK_THROW(mp::unlink(bad), mp::InvalidName);
  }
  const std::string longest = test::unique_name("") + std::string(mp::max_name_length - test::unique_name("").size(), 'n');
  mp::ScopedUnlink cleanup{longest};
  BOOST_CHECK_NO_THROW(mp::Value<int>(mp::create, longest));
}

BOOST_AUTO_TEST_CASE(invalid_name_message_says_what_is_wrong) {
  try {
    mp::Value<int> v{mp::create, "a/b"};
    BOOST_FAIL("expected InvalidName");
  } catch (const mp::InvalidName& e) {
    BOOST_TEST(std::string(e.what()).find("'/'") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(create_is_exclusive_and_open_needs_the_name) {
  const auto name = test::unique_name("excl");
  BOOST_CHECK_THROW(mp::Value<int>(mp::open, name), mp::NotFound);
  mp::Value<int> first{mp::create, name, 1};
  mp::ScopedUnlink cleanup{name};
  BOOST_CHECK_THROW(mp::Value<int>(mp::create, name, 2), mp::AlreadyExists);
  BOOST_CHECK_EQUAL(first.load(), 1);  // the failed create changed nothing
  BOOST_CHECK_EQUAL(mp::Value<int>(mp::open, name).load(), 1);
}

BOOST_AUTO_TEST_CASE(new_segments_are_0600_unless_asked_and_ignore_the_umask) {
  const auto name = test::unique_name("perm");
  mp::Value<int> v{mp::create, name};
  mp::ScopedUnlink cleanup{name};
  BOOST_CHECK_EQUAL(permissions_of(name), 0600u);

  const auto shared_name = test::unique_name("perm");
  const mode_t old_mask = ::umask(0077);
  mp::Lock wide{mp::create.with_mode(0660), shared_name};
  ::umask(old_mask);
  mp::ScopedUnlink cleanup_shared{shared_name};
  BOOST_CHECK_EQUAL(permissions_of(shared_name), 0660u);
}

BOOST_AUTO_TEST_CASE(opening_as_another_type_throws_layout_mismatch) {
  const auto name = test::unique_name("type");
  mp::Value<int> v{mp::create, name, 5};
  mp::ScopedUnlink cleanup{name};
  BOOST_CHECK_THROW(mp::Value<double>(mp::open, name), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::Value<unsigned>(mp::open, name), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::RawValue<int>(mp::open, name), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::Array<int>(mp::open, name), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::Lock(mp::open, name), mp::LayoutMismatch);
  BOOST_CHECK_THROW(mp::Value<double>(mp::open_or_create, name), mp::LayoutMismatch);
  try {
    mp::Value<double> wrong{mp::open, name};
  } catch (const mp::LayoutMismatch& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("Value<int>") != std::string::npos, what);
    BOOST_TEST(what.find("Value<double>") != std::string::npos, what);
  }
  BOOST_CHECK_EQUAL(v.load(), 5);
}

BOOST_AUTO_TEST_CASE(open_or_create_creates_once_then_opens) {
  const auto name = test::unique_name("ooc");
  mp::ScopedUnlink cleanup{name};
  mp::Value<int> made{mp::open_or_create, name, 7};
  mp::Value<int> found{mp::open_or_create, name, 99};
  BOOST_CHECK_EQUAL(found.load(), 7);
  found.store(8);
  BOOST_CHECK_EQUAL(made.load(), 8);

  const auto array_name = test::unique_name("ooc");
  mp::ScopedUnlink cleanup_array{array_name};
  mp::Array<int> four{mp::open_or_create, array_name, 4};
  BOOST_CHECK_THROW(mp::Array<int>(mp::open_or_create, array_name, 5), mp::LayoutMismatch);
  BOOST_CHECK_EQUAL(mp::Array<int>(mp::open_or_create, array_name, 4).size(), 4u);
}

BOOST_AUTO_TEST_CASE(racing_open_or_create_initialises_exactly_once) {
  // Each round, four processes race to open_or_create the same counter and add 1. If any of them
  // re-initialised it, or read it before it was built, the total would come out short.
  constexpr int rounds = 30;
  constexpr int racers = 4;
  for (int round = 0; round < rounds; ++round) {
    const auto name = test::unique_name("race");
    mp::ScopedUnlink cleanup{name};
    std::vector<mp::Process> children;
    for (int i = 0; i < racers; ++i) {
      children.emplace_back([name] {
        mp::Value<long> counter{mp::open_or_create, name, 0};
        counter.atomic().fetch_add(1);
      });
    }
    for (auto& c : children) c.start();
    for (auto& c : children) {
      BOOST_REQUIRE(c.join(std::chrono::seconds(30)));
      BOOST_REQUIRE_EQUAL(*c.exitcode(), 0);
    }
    BOOST_REQUIRE_EQUAL(mp::Value<long>(mp::open, name).load(), racers);
  }
}

BOOST_AUTO_TEST_CASE(unlink_removes_the_name_but_not_the_mapping) {
  const auto name = test::unique_name("unlink");
  mp::Value<int> v{mp::create, name, 1};
  BOOST_CHECK(mp::unlink(name));
  BOOST_CHECK(!mp::unlink(name));
  BOOST_CHECK_THROW(mp::Value<int>(mp::open, name), mp::NotFound);
  BOOST_CHECK_EQUAL(test::in_child([&] { v.store(2); return 0; }), 0);
  BOOST_CHECK_EQUAL(v.load(), 2);
  mp::Value<int> again{mp::create, name, 3};  // the name is free for a new object
  mp::ScopedUnlink cleanup{name};
  BOOST_CHECK_EQUAL(v.load(), 2);
}

BOOST_AUTO_TEST_CASE(a_child_opens_by_name_what_it_did_not_inherit) {
  const auto name = test::unique_name("late");
  mp::ScopedUnlink cleanup{name};
  int ready[2];
  BOOST_REQUIRE_EQUAL(::pipe(ready), 0);
  mp::Process child{[&] {
    char go = 0;
    if (::read(ready[0], &go, 1) != 1) return 2;
    mp::Array<int> numbers{mp::open, name};  // created by the parent after this child started
    if (numbers.size() != 3 || numbers[2] != 30) return 3;
    numbers[0] = -1;
    return 0;
  }};
  child.start();
  mp::Array<int> numbers{mp::create, name, std::vector<int>{10, 20, 30}};
  BOOST_REQUIRE_EQUAL(::write(ready[1], "g", 1), 1);
  BOOST_REQUIRE(child.join(std::chrono::seconds(30)));
  ::close(ready[0]);
  ::close(ready[1]);
  BOOST_CHECK_EQUAL(*child.exitcode(), 0);
  BOOST_CHECK_EQUAL(numbers[0], -1);

  // And the other way: a child creates, the parent opens after the child is gone.
  const auto made_by_child = test::unique_name("late");
  mp::ScopedUnlink cleanup_child{made_by_child};
  BOOST_CHECK_EQUAL(test::in_child([&] { mp::Value<int>(mp::create, made_by_child, 42); return 0; }), 0);
  BOOST_CHECK_EQUAL(mp::Value<int>(mp::open, made_by_child).load(), 42);
}

BOOST_AUTO_TEST_CASE(foreign_and_truncated_segments_throw_instead_of_crashing) {
  const auto foreign = test::unique_name("foreign");
  mp::ScopedUnlink cleanup_foreign{foreign};
  write_file(foreign, std::string(4096, '\x5a'));
  BOOST_CHECK_THROW(mp::Value<int>(mp::open, foreign), mp::LayoutMismatch);

  const auto tiny = test::unique_name("tiny");
  mp::ScopedUnlink cleanup_tiny{tiny};
  write_file(tiny, "MPSG");
  BOOST_CHECK_THROW(mp::Value<int>(mp::open, tiny), mp::LayoutMismatch);

  const auto cut = test::unique_name("cut");
  mp::ScopedUnlink cleanup_cut{cut};
  { mp::Array<long> big{mp::create, cut, 10000}; }
  BOOST_REQUIRE_EQUAL(::truncate(shm_path(cut).c_str(), 4096), 0);
  BOOST_CHECK_THROW(mp::Array<long>(mp::open, cut), mp::LayoutMismatch);
}

BOOST_AUTO_TEST_CASE(hostile_header_fields_are_bounds_checked) {
  const auto name = test::unique_name("hostile");
  mp::ScopedUnlink cleanup{name};
  mp::Array<long> honest{mp::create, name, 8};
  test::RawSegment raw{name};
  const mp::SegmentHeader saved = raw.header();
  const auto expect_refusal = [&](auto&& damage) {
    raw.header() = saved;
    damage(raw.header());
    BOOST_CHECK_THROW(mp::Array<long>(mp::open, name), mp::LayoutMismatch);
  };
  expect_refusal([](mp::SegmentHeader& h) { h.element_count = 1ull << 40; });     // past the end
  expect_refusal([](mp::SegmentHeader& h) { h.element_count = ~0ull / 4; });      // overflows
  expect_refusal([](mp::SegmentHeader& h) { h.elements_offset = 1ull << 50; });
  expect_refusal([](mp::SegmentHeader& h) { h.prefix_offset += 8; });
  expect_refusal([](mp::SegmentHeader& h) { h.mapped_bytes *= 2; });
  expect_refusal([](mp::SegmentHeader& h) { h.layout_version = 99; });
  expect_refusal([](mp::SegmentHeader& h) { h.magic = 0x12345678; });
  expect_refusal([](mp::SegmentHeader& h) { h.element_size = 4; });
  expect_refusal([](mp::SegmentHeader& h) { h.element_count = 7; });  // fewer than the file holds
  expect_refusal([](mp::SegmentHeader& h) { h.element_count = 0; });
  raw.header() = saved;
  BOOST_CHECK_EQUAL(mp::Array<long>(mp::open, name).size(), 8u);
}

// Found by the segment fuzzer: a codec queue whose element count was rewritten to 0 was opened
// as a ring of 0 bytes, and the first get divided by zero. Counts must match the file exactly.
BOOST_AUTO_TEST_CASE(a_codec_queue_with_a_rewritten_count_is_refused) {
  for (const std::uint64_t count : {std::uint64_t{0}, std::uint64_t{8}}) {
    const auto name = test::unique_name("hostile-queue");
    mp::ScopedUnlink cleanup{name};
    mp::Queue<std::string> honest{mp::create, name, 4};
    honest.put("message");
    test::RawSegment raw{name};
    raw.header().element_count = count;
    BOOST_CHECK_THROW(mp::Queue<std::string>(mp::open, name), mp::LayoutMismatch);
  }
}

BOOST_AUTO_TEST_CASE(a_creator_that_fails_while_building_leaves_no_name) {
  const auto name = test::unique_name("fail");
  const mp::Segment::Layout layout{mp::ObjectKind::raw_value, mp::fingerprint_of<int>()};
  BOOST_CHECK_THROW(mp::Segment(mp::create, name, layout, [](mp::Segment&) { throw std::runtime_error("no"); }),
                    std::runtime_error);
  BOOST_CHECK_THROW(mp::RawValue<int>(mp::open, name), mp::NotFound);
}

