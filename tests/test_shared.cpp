// SharedDict and SharedList across processes: Python's dict/list methods, concurrent writers, a
// full segment, and writers killed in the middle of a change.
#define BOOST_TEST_MODULE shared
#include <signal.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <multiproc/multiproc.hpp>

#include "support.hpp"

namespace mp = multiproc;
using namespace std::chrono_literals;

namespace {

// "<tag><number>", built without chained operator+ (which g++ 12 misreads under -Wrestrict).
std::string key(const char* tag, long number) {
  std::string text(tag);
  text.append(std::to_string(number));
  return text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(dict_methods_as_in_python) {
  mp::SharedDict<std::string, std::string> dict;
  BOOST_TEST(dict.empty());
  dict.set("a", "alpha");
  dict.set("b", "beta");
  dict.set("a", "ALPHA");  // replaces
  BOOST_TEST(dict.size() == 2u);
  BOOST_TEST(*dict.get("a") == "ALPHA");
  BOOST_TEST(!dict.get("zzz"));
  BOOST_TEST(dict.get("zzz", "none") == "none");
  BOOST_CHECK_THROW((void)dict.at("zzz"), mp::KeyError);
  BOOST_TEST(dict.contains("b"));
  BOOST_TEST(*dict.pop("b") == "beta");
  BOOST_TEST(!dict.contains("b"));
  BOOST_TEST(!dict.erase("b"));
  dict.set("c", std::string(10000, 'c'));  // long values are fine
  const auto all = dict.snapshot();
  BOOST_TEST((all == std::map<std::string, std::string>{{"a", "ALPHA"}, {"c", std::string(10000, 'c')}}));
  BOOST_TEST(dict.keys().size() == 2u);
  BOOST_TEST(dict.values().size() == 2u);
  dict.clear();
  BOOST_TEST(dict.size() == 0u);
  dict.set("after", "clear");
  BOOST_TEST(dict.at("after") == "clear");
}

BOOST_AUTO_TEST_CASE(list_methods_as_in_python) {
  mp::SharedList<std::string> list;
  list.append("one");
  list.extend(std::vector<std::string>{"two", "three"});
  BOOST_TEST(list.size() == 3u);
  BOOST_TEST(list[1] == "two");
  list.set(1, "TWO");
  BOOST_TEST((list.snapshot() == std::vector<std::string>{"one", "TWO", "three"}));
  BOOST_TEST(list.pop() == "three");
  BOOST_CHECK_THROW((void)list[2], mp::IndexError);
  BOOST_CHECK_THROW(list.set(5, "x"), mp::IndexError);
  list.clear();
  BOOST_CHECK_THROW((void)list.pop(), mp::IndexError);
}

BOOST_AUTO_TEST_CASE(concurrent_writers_lose_nothing) {
  const auto name = test::unique_name("dict");
  mp::ScopedUnlink cleanup{name};
  mp::SharedDict<std::string, long> dict(mp::create, name, 4 << 20);
  mp::SharedList<int> list(1 << 20);
  constexpr int writers = 4;
  constexpr long per_writer = 2000;
  std::vector<mp::Process> processes;
  for (int w = 0; w < writers; ++w) {
    processes.emplace_back([&, w] {
      mp::SharedDict<std::string, long> mine(mp::open, name);  // by name, as an unrelated program would
      for (long k = 0; k < per_writer; ++k) {
        mine.set(key(key("w", w).append("-").c_str(), k), w * per_writer + k);
        mine.update("hits", [](long n) { return n + 1; });
        list.append(w);
      }
    });
  }
  for (auto& p : processes) p.start();
  for (auto& p : processes) {
    BOOST_REQUIRE(p.join(60s));
    BOOST_TEST((p.exitcode() == 0));
  }
  BOOST_TEST(dict.size() == static_cast<std::size_t>(writers * per_writer + 1));
  BOOST_TEST(dict.at("hits") == writers * per_writer);
  for (int w = 0; w < writers; ++w) {
    for (long k = 0; k < per_writer; k += 97) {
      BOOST_TEST(dict.at(key(key("w", w).append("-").c_str(), k)) == w * per_writer + k);
    }
  }
  const auto appended = list.snapshot();
  BOOST_TEST(appended.size() == static_cast<std::size_t>(writers * per_writer));
  for (int w = 0; w < writers; ++w) {
    BOOST_TEST(std::count(appended.begin(), appended.end(), w) == per_writer);
  }
}

BOOST_AUTO_TEST_CASE(a_full_dict_throws_full_and_keeps_what_it_had) {
  mp::SharedDict<int, std::string> dict(16 << 10);
  int stored = 0;
  BOOST_CHECK_THROW(
      {
        for (;; ++stored) dict.set(stored, std::string(100, 'v'));
      },
      mp::Full);
  BOOST_TEST(stored > 10);
  BOOST_TEST(dict.size() == static_cast<std::size_t>(stored));
  BOOST_TEST(dict.at(0) == std::string(100, 'v'));
  BOOST_TEST(dict.at(stored - 1) == std::string(100, 'v'));
  BOOST_TEST(!dict.contains(stored));
  dict.erase(0);
  dict.set(stored, "fits again");  // freed room is reused
  BOOST_TEST(dict.at(stored) == "fits again");
  mp::SharedList<std::string> list(16 << 10);
  BOOST_CHECK_THROW(list.extend(std::vector<std::string>(1000, std::string(100, 'x'))), mp::Full);
  BOOST_TEST(list.size() == 0u);  // extend is all or nothing
}

BOOST_AUTO_TEST_CASE(types_are_checked_on_open) {
  const auto name = test::unique_name("typed");
  mp::ScopedUnlink cleanup{name};
  mp::SharedDict<std::string, long> dict(mp::create, name);
  BOOST_CHECK_THROW((mp::SharedDict<std::string, double>(mp::open, name)), mp::LayoutMismatch);
  BOOST_CHECK_THROW((mp::SharedList<long>(mp::open, name)), mp::LayoutMismatch);
  BOOST_CHECK_THROW((mp::SharedDict<std::string, long>(mp::open, test::unique_name("absent"))), mp::NotFound);
  const auto info = mp::inspect_segment(name);
  BOOST_TEST(!info.empty());
}

// A writer SIGKILLed at random moments, many of them inside the lock (mid-allocation, mid-grow,
// between a commit and its bookkeeping). After each kill the dict must open, hold every key that
// was there before the writer started, agree with itself (size == items), and take changes.
BOOST_AUTO_TEST_CASE(a_writer_killed_mid_update_leaves_the_dict_consistent) {
  const auto name = test::unique_name("killed");
  mp::ScopedUnlink cleanup{name};
  mp::SharedDict<std::string, std::string> dict(mp::create, name, 256 << 10);
  for (int k = 0; k < 50; ++k) {
    dict.set(key("stable-", k), key("value-", k));
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    mp::Process writer{[&] {
      std::mt19937 mine(static_cast<unsigned>(round));
      for (long i = 0;; ++i) {
        const std::string churn = key("churn-", mine() % 400);
        switch (mine() % 4) {
          case 0: dict.erase(churn); break;
          case 1: dict.update("counter", [](std::string s) { return s.append("x"); }); break;
          default: dict.set(churn, std::string(mine() % 300, 'z')); break;
        }
        if (i % 5000 == 4999) dict.erase("counter");
      }
    }};
    writer.start();
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(200, 5000)(rng)));
    writer.kill();
    writer.join();
    const auto items = dict.items();
    BOOST_REQUIRE_EQUAL(dict.size(), items.size());
    for (int k = 0; k < 50; ++k) {
      BOOST_REQUIRE_EQUAL(dict.get(key("stable-", k), "MISSING"), key("value-", k));
    }
    dict.set(key("after-", round), "ok");
    BOOST_REQUIRE_EQUAL(dict.at(key("after-", round)), "ok");
  }
  // The writer spends most of its time inside the lock, so some kills landed there and the dict
  // was rebuilt from its complete entries: the recovery path itself was exercised.
  std::uint64_t rebuilds = 0;
  for (const auto& field : mp::inspect_segment(name)) {
    if (field.key == "rebuilds_after_crashes_or_clears") rebuilds = std::get<std::uint64_t>(field.value);
  }
  BOOST_TEST(rebuilds > 0u);
}

// CPython _TestContainers.test_dict and test_dict_iter: setdefault, popitem, update, and
// iteration over a snapshot, with a child process changing the dict meanwhile.
BOOST_AUTO_TEST_CASE(test_dict) {
  mp::SharedDict<int, std::string> dict;
  for (int i = 0; i < 5; ++i) dict.set(i, key("v", i));
  BOOST_TEST(dict.setdefault(2, "other") == "v2");  // present: unchanged
  BOOST_TEST(dict.setdefault(7, "seven") == "seven");
  BOOST_TEST(dict.at(7) == "seven");
  BOOST_TEST(dict.setdefault(8) == "");
  BOOST_CHECK_EQUAL(test::in_child([&] {
    dict.update(std::map<int, std::string>{{0, "zero"}, {9, "nine"}});
    dict.update(std::vector<std::pair<int, std::string>>{{10, "ten"}});
    return 0;
  }), 0);
  BOOST_TEST(dict.at(0) == "zero");
  BOOST_TEST(dict.at(9) == "nine");
  BOOST_TEST(dict.at(10) == "ten");
  std::map<int, std::string> seen;
  for (auto& [k, v] : dict) {
    seen.emplace(k, v);
    v = "changed";  // the snapshot's copy, not the dict
    if (seen.size() == 1) {
      BOOST_CHECK_EQUAL(test::in_child([&] { return dict.erase(k) && (dict.set(100, "late"), true) ? 0 : 1; }), 0);
    }
  }
  BOOST_TEST(seen.size() == 9u);  // the snapshot taken before the child's changes
  BOOST_TEST(!seen.contains(100));
  BOOST_TEST(dict.size() == 9u);
  BOOST_TEST(dict.at(100) == "late");
  std::map<int, std::string> popped;
  while (!dict.empty()) popped.insert(dict.popitem());
  BOOST_TEST(popped.size() == 9u);
  BOOST_TEST(popped.at(100) == "late");
  BOOST_CHECK_THROW((void)dict.popitem(), mp::KeyError);
  mp::SharedDict<int, int> empty;
  BOOST_TEST((empty.begin() == empty.end()));
}

// update() is all or nothing: a Full part-way takes back what it set and restores what it replaced.
BOOST_AUTO_TEST_CASE(dict_update_that_does_not_fit_changes_nothing) {
  mp::SharedDict<int, std::string> dict(16 << 10);
  dict.set(1, "one");
  std::map<int, std::string> many;
  for (int i = 0; i < 1000; ++i) many.emplace(i, std::string(100, 'x'));
  BOOST_CHECK_THROW(dict.update(many), mp::Full);
  BOOST_TEST((dict.snapshot() == std::map<int, std::string>{{1, "one"}}));
}

// CPython _TestContainers.test_list (and the MutableSequence methods its manager list offers):
// negative indices, pop(i), insert, remove, index, count, sort, slices as copies; the changes are
// made by another process and seen by this one.
BOOST_AUTO_TEST_CASE(test_list) {
  mp::SharedList<int> list;
  list.extend(std::vector<int>{5, 3, 8, 3, 1, 9});
  BOOST_TEST(list[-1] == 9);
  BOOST_TEST(list[-6] == 5);
  BOOST_CHECK_THROW((void)list[-7], mp::IndexError);
  BOOST_CHECK_THROW((void)list[6], mp::IndexError);
  BOOST_TEST(list.count(3) == 2u);
  BOOST_TEST(list.count(4) == 0u);
  BOOST_TEST(list.index(3) == 1u);
  BOOST_TEST(list.index(3, 2) == 3u);
  BOOST_TEST(list.index(3, -3) == 3u);
  BOOST_CHECK_THROW((void)list.index(3, 4), mp::ValueError);
  BOOST_CHECK_THROW((void)list.index(42), mp::ValueError);
  BOOST_TEST((list.slice(1, 4) == std::vector<int>{3, 8, 3}));
  BOOST_TEST((list.slice(-2, std::nullopt) == std::vector<int>{1, 9}));
  BOOST_TEST((list.slice(std::nullopt, std::nullopt, -2) == std::vector<int>{9, 3, 3}));
  BOOST_TEST((list.slice(4, 1, -1) == std::vector<int>{1, 3, 8}));
  BOOST_TEST((list.slice(-100, 100) == list.snapshot()));
  BOOST_TEST(list.slice(5, 2).empty());
  BOOST_CHECK_THROW((void)list.slice(0, 1, 0), mp::ValueError);
  BOOST_CHECK_EQUAL(test::in_child([&] {
    list.remove(3);                // first 3 only: 5 8 3 1 9
    if (list.pop(0) != 5) return 1;  // 8 3 1 9
    if (list.pop(-2) != 1) return 2;  // 8 3 9
    list.insert(-1, 7);            // 8 3 7 9
    list.insert(-100, 0);          // 0 8 3 7 9
    list.set(-1, 10);              // 0 8 3 7 10
    list.erase(-2);                // 0 8 3 10
    return 0;
  }), 0);
  BOOST_TEST((list.snapshot() == std::vector<int>{0, 8, 3, 10}));
  BOOST_CHECK_THROW(list.remove(42), mp::ValueError);
  BOOST_CHECK_THROW((void)list.pop(4), mp::IndexError);
  BOOST_TEST(list.size() == 4u);  // the refused calls changed nothing
  BOOST_CHECK_EQUAL(test::in_child([&] {
    list.sort();
    return 0;
  }), 0);
  BOOST_TEST((list.snapshot() == std::vector<int>{0, 3, 8, 10}));
  list.sort(std::greater<>{});
  BOOST_TEST((list.snapshot() == std::vector<int>{10, 8, 3, 0}));
}

// sort() is stable and keeps every value, checked against std::stable_sort on random lists.
BOOST_AUTO_TEST_CASE(sort_matches_std_stable_sort) {
  std::mt19937 random(14);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::pair<int, int>> values;  // sorted by .first only: ties show stability
    const int n = static_cast<int>(random() % 40);
    for (int i = 0; i < n; ++i) values.emplace_back(static_cast<int>(random() % 8), i);
    mp::SharedList<std::pair<int, int>> list;
    list.extend(values);
    auto by_first = [](const auto& a, const auto& b) { return a.first < b.first; };
    list.sort(by_first);
    std::stable_sort(values.begin(), values.end(), by_first);
    BOOST_TEST((list.snapshot() == values));
  }
}
