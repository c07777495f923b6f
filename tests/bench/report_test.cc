// Tests of bench/numagrid_bench/report.h: the JSON report parses as strict
// JSON and has every key the docs and scripts/bench_peers_report.py rely on,
// including the physical baselines; unmeasured baselines are null and form
// no ratio; the ratios against the baselines have the right values, for the
// journaled variants of numagrid too. Also
// tests the strict checker itself, so a lenient checker cannot hide a bad
// report.
#include "bench/numagrid_bench/report.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "tests/bench/strict_json.h"

namespace numagrid::bench {
namespace {

using testing::JsonValue;
using testing::ParseStrictJson;
using Kind = JsonValue::Kind;

JsonValue Parse(const std::string& text) {
  std::string error;
  auto v = ParseStrictJson(text, &error);
  EXPECT_TRUE(v.has_value()) << error << "\n" << text;
  return v.value_or(JsonValue{});
}

TEST(ReportStrictJson, RejectsWhatJsonForbids) {
  std::string error;
  for (const char* bad :
       {"{\"a\": 1,}", "[1, 2,]", "{\"a\": NaN}", "{\"a\": inf}", "{\"a\": 01}",
        "{\"a\": 1} x", "{\"a\": 1, \"a\": 2}", "{'a': 1}", "{\"a\": \"x\ny\"}",
        "{\"a\": 1.}", "", "{\"a\" 1}", "[1 2]", "{\"a\": tru}"}) {
    EXPECT_FALSE(ParseStrictJson(bad, &error).has_value()) << bad;
  }
  auto ok = ParseStrictJson(
      " {\"a\": [1, -2.5e3, true, null], \"b\": {\"c\": \"\\\"q\\u0001\"}} ",
      &error);
  ASSERT_TRUE(ok.has_value()) << error;
  EXPECT_EQ((*ok)["a"].array.size(), 4U);
  EXPECT_DOUBLE_EQ((*ok)["a"].array[1].number, -2500);
  EXPECT_EQ((*ok)["b"]["c"].string, "\"q\x01");
}

OpSummary Op(std::string name, std::uint64_t p50) {
  LatencyHistogram h;
  for (int i = 0; i < 100; ++i) h.Record(p50);
  return Summarize(std::move(name), h, 0, 0, 1.0);
}

RunResult Run(std::string target, std::uint32_t procs, std::uint64_t read_p50,
              std::uint64_t update_p50) {
  RunResult r;
  r.target = std::move(target);
  r.store = "store \"with quotes\"\tand a tab";
  r.procs = procs;
  r.workers = "processes";
  r.persistence = "none";
  r.wall_seconds = 1;
  r.ops = {Op("read", read_p50), Op("update", update_p50)};
  r.all = Op("all", read_p50);
  return r;
}

Report SampleReport() {
  Report rep;
  rep.workload = "A";
  rep.workload_description = "50% read, 50% update";
  rep.distribution = "zipfian";
  rep.records = 1000;
  rep.key_size = 16;
  rep.value_size = 100;
  rep.seconds = 1;
  rep.cpus = 2;
  rep.clock_source = "steady_clock";
  rep.dram_ns_per_access = 100;
  rep.chase_bytes = 256 << 20;
  rep.cacheline.round_trip_ns = 200;
  rep.cacheline.cpu_a = 0;
  rep.cacheline.cpu_b = 1;
  rep.cacheline.round_trips = 1000;
  rep.disk.dir = "/var/tmp";
  rep.disk.fs_type = "ext4";
  rep.disk.seq_write_mib_per_s = 500;
  rep.disk.write_bytes = 64 << 20;
  rep.disk.fdatasync_p50_ns = 80'000;
  rep.disk.fdatasync_max_ns = 90'000;
  rep.disk.samples = 50;
  rep.runs.push_back(Run("numagrid", 1, 400, 800));
  rep.runs.push_back(Run("lmdb-sync", 1, 1000, 160'000));
  rep.runs.back().syncs_each_write = true;
  rep.skipped.push_back({"memcached", "workload E needs scans: none"});
  return rep;
}

const JsonValue* FindRatio(const JsonValue& doc, const std::string& name) {
  for (const JsonValue& r : doc["ratios"].array) {
    if (r["name"].string == name) return &r["value"];
  }
  return nullptr;
}

void ExpectKeys(const JsonValue& v, std::initializer_list<const char*> keys,
                const char* where) {
  ASSERT_TRUE(v.is(Kind::kObject)) << where;
  for (const char* k : keys) EXPECT_TRUE(v.Has(k)) << where << " lacks " << k;
}

TEST(ReportJson, HasEveryRequiredKeyIncludingTheBaselines) {
  Report rep = SampleReport();
  ComputeRatios(rep);
  const JsonValue doc = Parse(ToJson(rep));
  ExpectKeys(doc,
             {"benchmark", "workload", "workload_description", "distribution",
              "records", "key_size", "value_size", "seed", "seconds", "ops",
              "warmup_seconds", "cpus", "host", "clock", "baselines", "method",
              "runs", "skipped", "ratios"},
             "top level");
  EXPECT_EQ(doc["benchmark"].string, "numagrid-bench");
  const JsonValue& b = doc["baselines"];
  ExpectKeys(
      b,
      {"dram_ns_per_access", "chase_bytes", "cacheline_round_trip_ns",
       "cacheline_one_way_ns", "cacheline_cpus", "cacheline_error", "disk"},
      "baselines");
  EXPECT_DOUBLE_EQ(b["cacheline_round_trip_ns"].number, 200);
  EXPECT_DOUBLE_EQ(b["cacheline_one_way_ns"].number, 100);
  ASSERT_EQ(b["cacheline_cpus"].array.size(), 2U);
  ExpectKeys(
      b["disk"],
      {"dir", "fs_type", "seq_write_mib_per_s", "write_bytes",
       "fdatasync_p50_ns", "fdatasync_max_ns", "fdatasync_samples", "error"},
      "baselines.disk");
  EXPECT_DOUBLE_EQ(b["disk"]["fdatasync_p50_ns"].number, 80'000);
  EXPECT_DOUBLE_EQ(b["disk"]["seq_write_mib_per_s"].number, 500);
  ExpectKeys(doc["method"],
             {"loop", "latency", "coordinated_omission", "statement"},
             "method");
  EXPECT_EQ(doc["method"]["loop"].string, "closed");

  ASSERT_EQ(doc["runs"].array.size(), 2U);
  for (const JsonValue& run : doc["runs"].array) {
    ExpectKeys(
        run,
        {"target", "procs", "workers", "store", "persistence",
         "syncs_each_write", "wall_seconds", "operations", "all", "errors"},
        "run");
    EXPECT_EQ(run["store"].string, "store \"with quotes\"\tand a tab");
    for (const JsonValue& op : run["operations"].array) {
      ExpectKeys(op,
                 {"op", "count", "not_found", "failed", "throughput_ops_per_s",
                  "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p99.9_ns",
                  "p99.99_ns", "max_ns"},
                 "operation");
    }
  }
  EXPECT_TRUE(doc["runs"].array[1]["syncs_each_write"].boolean);
  ASSERT_EQ(doc["skipped"].array.size(), 1U);
  EXPECT_EQ(doc["skipped"].array[0]["target"].string, "memcached");
  EXPECT_FALSE(doc["skipped"].array[0]["reason"].string.empty());
}

TEST(ReportJson, RatiosSetNumagridAgainstEachBaseline) {
  Report rep = SampleReport();
  ComputeRatios(rep);
  const JsonValue doc = Parse(ToJson(rep));
  // Percentiles are bucket tops (at most 0.8% above): compare loosely.
  const struct {
    const char* name;
    double want;
  } wants[] = {
      {"numagrid.procs1.read.p50_ns / dram_ns_per_access", 4.0},
      {"numagrid.procs1.read.p50_ns / cacheline_round_trip_ns", 2.0},
      {"numagrid.procs1.update.p50_ns / dram_ns_per_access", 8.0},
      {"numagrid.procs1.update.p50_ns / cacheline_round_trip_ns", 4.0},
      {"numagrid.procs1.update.p50_ns / fdatasync_p50_ns", 0.01},
      {"lmdb-sync.procs1.update.p50_ns / fdatasync_p50_ns", 2.0},
      {"numagrid.procs1.update.p50_ns / lmdb-sync.procs1.update.p50_ns",
       800.0 / 160'000},
  };
  for (const auto& w : wants) {
    const JsonValue* v = FindRatio(doc, w.name);
    ASSERT_NE(v, nullptr) << w.name;
    EXPECT_NEAR(v->number, w.want, w.want * 0.01) << w.name;
  }
  // A read does not wait for the disk: no read ratio to fdatasync.
  EXPECT_EQ(FindRatio(doc, "numagrid.procs1.read.p50_ns / fdatasync_p50_ns"),
            nullptr);
}

TEST(ReportJson, JournaledVariantsMeetTheBaselinesAndAreRatioedToNumagrid) {
  Report rep = SampleReport();
  rep.runs.push_back(bench::Run("numagrid-async", 1, 400, 1000));
  rep.runs.push_back(bench::Run("numagrid-sync", 1, 400, 120'000));
  rep.runs.back().syncs_each_write = true;
  ComputeRatios(rep);
  const JsonValue doc = Parse(ToJson(rep));
  const struct {
    const char* name;
    double want;
  } wants[] = {
      {"numagrid-async.procs1.update.p50_ns / dram_ns_per_access", 10.0},
      {"numagrid-async.procs1.update.p50_ns / fdatasync_p50_ns", 0.0125},
      {"numagrid-sync.procs1.update.p50_ns / fdatasync_p50_ns", 1.5},
      {"numagrid.procs1.update.p50_ns / numagrid-async.procs1.update.p50_ns",
       0.8},
      {"numagrid.procs1.update.p50_ns / numagrid-sync.procs1.update.p50_ns",
       800.0 / 120'000},
  };
  for (const auto& w : wants) {
    const JsonValue* v = FindRatio(doc, w.name);
    ASSERT_NE(v, nullptr) << w.name;
    EXPECT_NEAR(v->number, w.want, w.want * 0.01) << w.name;
  }
  // Each ratio once (the sync variant's fdatasync ratio is not also formed
  // as a store that syncs each write), and the variants are not set
  // against the peers: only the memory-only grid is.
  int sync_ratios = 0;
  for (const JsonValue& r : doc["ratios"].array) {
    const std::string& name = r["name"].string;
    if (name == "numagrid-sync.procs1.update.p50_ns / fdatasync_p50_ns") {
      ++sync_ratios;
    }
    EXPECT_EQ(name.find("numagrid-async.procs1.update.p50_ns / lmdb"),
              std::string::npos)
        << name;
  }
  EXPECT_EQ(sync_ratios, 1);
}

TEST(ReportJson, UnmeasuredBaselinesAreNullAndFormNoRatio) {
  Report rep = SampleReport();
  rep.cacheline = CacheLineRoundTrip{};
  rep.cacheline.error = "needs two CPUs";
  rep.disk = DiskBaseline{};
  rep.disk.error = "not measured (--no-disk-baseline)";
  ComputeRatios(rep);
  const JsonValue doc = Parse(ToJson(rep));
  const JsonValue& b = doc["baselines"];
  EXPECT_TRUE(b["cacheline_round_trip_ns"].is(Kind::kNull));
  EXPECT_TRUE(b["cacheline_one_way_ns"].is(Kind::kNull));
  EXPECT_EQ(b["cacheline_error"].string, "needs two CPUs");
  EXPECT_TRUE(b["disk"]["fdatasync_p50_ns"].is(Kind::kNull));
  EXPECT_TRUE(b["disk"]["seq_write_mib_per_s"].is(Kind::kNull));
  EXPECT_EQ(b["disk"]["error"].string, "not measured (--no-disk-baseline)");
  for (const JsonValue& r : doc["ratios"].array) {
    EXPECT_EQ(r["name"].string.find("cacheline"), std::string::npos);
    EXPECT_EQ(r["name"].string.find("fdatasync"), std::string::npos);
    EXPECT_TRUE(r["value"].is(Kind::kNumber)) << r["name"].string;
  }
  EXPECT_NE(FindRatio(doc, "numagrid.procs1.read.p50_ns / dram_ns_per_access"),
            nullptr);
}

}  // namespace
}  // namespace numagrid::bench
