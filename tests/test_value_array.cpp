// Value, RawValue, Array and RawArray shared between real processes.
#define BOOST_TEST_MODULE value_array
#include <array>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;

namespace {

struct Point {
  double x;
  double y;
  std::int32_t tag;
};

// Starts `n` children running `body(i)`, waits for all, and returns how many exited non-zero.
template <class Body>
int run_all(int n, Body body) {
  std::vector<mp::Process> children;
  for (int i = 0; i < n; ++i) {
    children.emplace_back([&body, i] { return body(i); });
  }
  for (auto& c : children) c.start();
  int failures = 0;
  for (auto& c : children) {
    BOOST_REQUIRE(c.join(std::chrono::seconds(60)));
    failures += *c.exitcode() != 0;
  }
  return failures;
}

}  // namespace

BOOST_AUTO_TEST_CASE(anonymous_value_is_shared_with_a_child) {
  mp::Value<int> v{10};
  BOOST_CHECK_EQUAL(v.load(), 10);
  BOOST_CHECK_EQUAL(test::in_child([&] { return v.load() == 10 ? (v.store(11), 0) : 1; }), 0);
  BOOST_CHECK_EQUAL(v.load(), 11);
  mp::RawValue<int> raw;
  BOOST_CHECK_EQUAL(raw.load(), 0);
  BOOST_CHECK_EQUAL(test::in_child([&] { raw.value() = 5; return 0; }), 0);
  BOOST_CHECK_EQUAL(raw.value(), 5);
}

BOOST_AUTO_TEST_CASE(a_plain_variable_is_not_shared) {
  // The contrast every lesson starts from: the child changes its own copy only.
  int plain = 10;
  BOOST_CHECK_EQUAL(test::in_child([&] { plain += 10; return plain == 20 ? 0 : 1; }), 0);
  BOOST_CHECK_EQUAL(plain, 10);
}

BOOST_AUTO_TEST_CASE(named_value_holds_a_struct) {
  const auto name = test::unique_name("point");
  mp::ScopedUnlink cleanup{name};
  mp::Value<Point> p{mp::create, name, Point{1.5, -2.0, 7}};
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Value<Point> q{mp::open, name};
    Point got = q.load();
    if (got.x != 1.5 || got.tag != 7) return 1;
    got.tag = 8;
    q.store(got);
    return 0;
  }), 0);
  BOOST_CHECK_EQUAL(p.load().tag, 8);
  BOOST_CHECK_EQUAL(p.name(), name);
}

BOOST_AUTO_TEST_CASE(get_lock_makes_concurrent_increments_exact) {
  constexpr int processes = 4;
  constexpr int increments = 20000;
  mp::Value<long> counter{0};
  BOOST_REQUIRE_EQUAL(run_all(processes, [&](int) {
    for (int i = 0; i < increments; ++i) {
      std::scoped_lock guard(counter.get_lock());
      counter.value() += 1;
    }
    return 0;
  }), 0);
  BOOST_CHECK_EQUAL(counter.load(), processes * increments);
}

BOOST_AUTO_TEST_CASE(atomic_fetch_add_is_exact_without_a_lock) {
  constexpr int processes = 4;
  constexpr int increments = 50000;
  mp::RawValue<std::uint64_t> counter;
  BOOST_REQUIRE_EQUAL(run_all(processes, [&](int) {
    for (int i = 0; i < increments; ++i) counter.atomic().fetch_add(1, std::memory_order_relaxed);
    return 0;
  }), 0);
  BOOST_CHECK_EQUAL(counter.load(), std::uint64_t{processes * increments});
}

BOOST_AUTO_TEST_CASE(array_constructors_follow_python) {
  mp::Array<int> zeros{5};  // a size, as Array('i', 5)
  BOOST_CHECK_EQUAL(zeros.size(), 5u);
  BOOST_CHECK_EQUAL(std::accumulate(zeros.begin(), zeros.end(), 0), 0);

  mp::Array<int> listed{3, 1, 4, 1, 5};
  BOOST_CHECK_EQUAL(listed.size(), 5u);
  BOOST_CHECK_EQUAL(listed[2], 4);

  const std::vector<double> source{0.5, 1.5};
  mp::Array<double> copied{source};
  BOOST_CHECK_EQUAL(copied.size(), 2u);
  BOOST_CHECK_EQUAL(copied.span()[1], 1.5);

  const auto il = {7, 8, 9};
  mp::RawArray<int> from_list{il};
  BOOST_CHECK_EQUAL(from_list.size(), 3u);
  BOOST_CHECK_EQUAL(from_list[0], 7);

  BOOST_CHECK_THROW((void)listed.at(5), mp::IndexError);
  BOOST_CHECK_THROW((void)listed.load(99), mp::IndexError);
  listed.store(0, 9);
  BOOST_CHECK_EQUAL(listed.load(0), 9);
}

BOOST_AUTO_TEST_CASE(raw_array_slices_filled_by_ten_workers) {
  constexpr int workers = 10;
  constexpr int per_worker = 1000;
  mp::RawArray<std::int64_t> squares(workers * per_worker);
  BOOST_REQUIRE_EQUAL(run_all(workers, [&](int w) {
    for (int i = w * per_worker; i < (w + 1) * per_worker; ++i) squares[i] = std::int64_t{i} * i;
    return 0;
  }), 0);
  for (int i = 0; i < workers * per_worker; ++i) {
    BOOST_REQUIRE_EQUAL(squares[i], std::int64_t{i} * i);
  }
}

BOOST_AUTO_TEST_CASE(named_array_opened_by_a_child_reads_its_size) {
  const auto name = test::unique_name("arr");
  mp::ScopedUnlink cleanup{name};
  mp::Array<double> a{mp::create, name, 1000};
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Array<double> b{mp::open, name};
    if (b.size() != 1000) return 1;
    std::scoped_lock guard(b.get_lock());
    for (double& x : b) x = 2.0;
    return 0;
  }), 0);
  double sum = 0;
  for (double x : a.span()) sum += x;
  BOOST_CHECK_EQUAL(sum, 2000.0);
}

BOOST_AUTO_TEST_CASE(objects_move_without_losing_their_mapping) {
  std::vector<mp::Value<int>> values;
  for (int i = 0; i < 8; ++i) values.emplace_back(i);  // reallocation moves the earlier ones
  BOOST_CHECK_EQUAL(test::in_child([&] {
    for (auto& v : values) {
      std::scoped_lock guard(v.get_lock());
      v.value() *= 10;
    }
    return 0;
  }), 0);
  for (int i = 0; i < 8; ++i) BOOST_CHECK_EQUAL(values[i].load(), i * 10);
}

// CPython _TestValue.test_getobj_getlock (and _TestArray's): a Value or Array built over a lock
// the user passes in is guarded by that lock; one lock can cover several objects, so a transfer
// between a Value and an Array element is atomic for every process that takes it.
BOOST_AUTO_TEST_CASE(test_getobj_getlock) {
  mp::Lock shared;
  mp::Value<long> balance{100, shared};
  mp::Array<long> ledger(4, shared);
  BOOST_CHECK_EQUAL(&balance.get_lock(), &shared);
  BOOST_CHECK_EQUAL(&ledger.get_lock(), &shared);
  mp::Value<long> own{0};
  BOOST_CHECK(&own.get_lock() != &shared);
  {
    std::scoped_lock held(shared);  // load() and store() take the lock that was passed in
    BOOST_CHECK_EQUAL(test::in_child([&] { return balance.get_lock().try_acquire() ? 1 : 0; }), 0);
  }
  constexpr int transfers = 5000;
  BOOST_REQUIRE_EQUAL(run_all(4, [&](int i) {
    for (int t = 0; t < transfers; ++t) {
      std::scoped_lock held(balance.get_lock());
      balance.value() -= 1;
      ledger[static_cast<std::size_t>(i)] += 1;
      if (balance.value() + std::accumulate(ledger.begin(), ledger.end(), 0L) != 100) return 1;
    }
    return 0;
  }), 0);
  BOOST_CHECK_EQUAL(balance.load(), 100 - 4 * transfers);
  BOOST_CHECK_EQUAL(ledger.load(3), transfers);
}

BOOST_AUTO_TEST_CASE(named_value_and_array_over_a_named_lock) {
  const auto lock_name = test::unique_name("lock"), value_name = test::unique_name("value"),
             array_name = test::unique_name("array");
  mp::ScopedUnlink cleanup_lock{lock_name}, cleanup_value{value_name}, cleanup_array{array_name};
  mp::Lock lock{mp::create, lock_name};
  mp::Value<int> value{mp::create, value_name, 7, lock};
  mp::Array<int> array{mp::create, array_name, 3, lock};
  std::scoped_lock held(lock);
  BOOST_CHECK_EQUAL(test::in_child([&] {
    mp::Lock mine{mp::open, lock_name};
    mp::Value<int> v{mp::open, value_name, mine};
    mp::Array<int> a{mp::open, array_name, mine};
    // Held by the parent: both are guarded by it, and a handle opened without it is not.
    if (v.get_lock().try_acquire() || a.get_lock().try_acquire()) return 1;
    mp::Value<int> plain{mp::open, value_name};
    return plain.load() == 7 && a.size() == 3 ? 0 : 2;
  }), 0);
}
