// run_lanes (ops/lanes.h): every item runs once, on the caller's context or on the lane of the
// team thread that runs it, each context from one thread only; with a thread count the lanes were
// not made for, or while planning, every item runs on the caller's context; an item's exception
// reaches the caller after the others ran.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "decode_threads.h"
#include "wersa/common/error.h"
#include "wersa/ops/lanes.h"

using namespace wersa;

namespace {

struct Record {
  std::mutex mu;
  std::vector<int> runs;                          // per item: how often it ran
  std::vector<Ctx*> where;                        // per item: the context it got
  std::map<Ctx*, std::set<std::thread::id>> who;  // per context: the threads that used it
  std::atomic<int> on_lane{0};
  explicit Record(int64_t n) : runs(size_t(n)), where(size_t(n)) {}
};

// n items; each waits (up to 10 s in all) until some item has run on a lane, so that a worker of
// the team, even one that was asleep, takes items before the caller has run them all.
void run_items(Ctx& ctx, const std::vector<Ctx*>& lanes, Record& r, bool wait_for_lane) {
  const auto t0 = std::chrono::steady_clock::now();
  auto item = [&](int64_t i, Ctx& c) {
    if (&c != &ctx) r.on_lane++;
    while (wait_for_lane && r.on_lane == 0 &&
           std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::lock_guard<std::mutex> lk(r.mu);
    r.runs[size_t(i)]++;
    r.where[size_t(i)] = &c;
    r.who[&c].insert(std::this_thread::get_id());
  };
  run_lanes(ctx, lanes, int64_t(r.runs.size()), item);
}

}  // namespace

TEST(Lanes, EachItemOnceEachContextOneThread) {
  const test::Threads two(2, -1);
  Ctx ctx, lane;
  ASSERT_EQ(extra_lanes(ctx), 1);
  const std::vector<Ctx*> lanes = {&lane};
  for (int round = 0; round < 5; ++round) {
    Record r(16);
    run_items(ctx, lanes, r, true);
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(r.runs[size_t(i)], 1) << "item " << i;
      EXPECT_TRUE(r.where[size_t(i)] == &ctx || r.where[size_t(i)] == &lane) << "item " << i;
    }
    EXPECT_GT(r.on_lane.load(), 0) << "no item ran on the lane of the team's worker";
    for (const auto& [c, threads] : r.who) EXPECT_EQ(threads.size(), 1u) << "a context used by two threads";
    if (r.who.count(&ctx)) EXPECT_EQ(*r.who[&ctx].begin(), std::this_thread::get_id());
    if (r.who.count(&lane)) EXPECT_NE(*r.who[&lane].begin(), std::this_thread::get_id());
  }
}

TEST(Lanes, OnTheCallersContextWhenTheLanesDoNotFit) {
  Ctx lane;
  const std::vector<Ctx*> lanes = {&lane};
  for (int threads : {1, 3}) {  // one thread; more threads than lanes
    const test::Threads t(threads, -1);
    Ctx ctx;
    Record r(8);
    run_items(ctx, lanes, r, false);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(r.where[size_t(i)], &ctx) << threads << " threads, item " << i;
  }
  const test::Threads two(2, -1);
  Ctx ctx;
  Record r(8);
  ctx.plan([&] { run_items(ctx, lanes, r, false); });  // planning: the caller's context, in order
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r.where[size_t(i)], &ctx) << "planning, item " << i;
}

TEST(Lanes, AnItemsErrorReachesTheCaller) {
  const test::Threads two(2, -1);
  Ctx ctx, lane;
  const std::vector<Ctx*> lanes = {&lane};
  std::atomic<int> ran{0};
  auto item = [&](int64_t i, Ctx&) {
    ran++;
    if (i == 3) throw Error("item 3 failed");
  };
  try {
    run_lanes(ctx, lanes, 8, item);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "item 3 failed");
  }
  EXPECT_GE(ran.load(), 4);
  // The team is free again: a second call runs every item.
  Record r(8);
  run_items(ctx, lanes, r, false);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r.runs[size_t(i)], 1);
}
