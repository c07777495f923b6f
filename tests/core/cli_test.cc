// Tests for the `numagrid` command-line tool (core/cli/), run as a child
// process: its exit codes (the StatusCode values), what it prints on stdout
// and stderr, and its --json output, parsed. Grid names come from
// UniqueName(), so every segment the tool creates is removed when this
// binary exits.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/key_hash.h"
#include "tests/support/test_grid.h"

namespace numagrid {
namespace {

using ::numagrid::testing::UniqueName;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::string_literals;

constexpr const char* kCli = NUMAGRID_CLI;
constexpr const char* kTwoNodes = "pack:2 numa:1 core:2 pu:1";

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

// Runs the CLI with `args`, `input` on its stdin, and the environment of this
// process plus `env` (NAME=VALUE). HWLOC_SYNTHETIC and HWLOC_XMLFILE are
// dropped unless `env` sets them, so the tool sees this system by default.
CliRun RunCli(const std::vector<std::string>& args,
              const std::string& input = "",
              const std::vector<std::string>& env = {}) {
  CliRun r;
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> in(std::tmpfile()), out(std::tmpfile()),
      err(std::tmpfile());
  if (!in || !out || !err) {
    ADD_FAILURE() << "tmpfile: "
                  << std::strerror(errno);  // NOLINT(concurrency-mt-unsafe)
    return r;
  }
  std::fwrite(input.data(), 1, input.size(), in.get());
  std::fflush(in.get());
  std::rewind(in.get());

  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    if (kv.rfind("HWLOC_SYNTHETIC=", 0) == 0 ||
        kv.rfind("HWLOC_XMLFILE=", 0) == 0) {
      continue;
    }
    envs.emplace_back(kv);
  }
  for (const std::string& e : env) envs.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_s = {kCli};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fileno(in.get()), 0);
  posix_spawn_file_actions_adddup2(&fa, fileno(out.get()), 1);
  posix_spawn_file_actions_adddup2(&fa, fileno(err.get()), 2);
  pid_t pid = 0;
  const int rc =
      posix_spawn(&pid, kCli, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << kCli << ": "
                  << std::strerror(rc);  // NOLINT(concurrency-mt-unsafe)
    return r;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  r.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadAll(out.get());
  r.err = ReadAll(err.get());
  return r;
}

std::string Describe(const CliRun& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out +
         "\nstderr: " + r.err;
}

// --- a minimal JSON reader, enough to check the tool's output ---------------

struct Json {
  enum class Type {
    kNull,
    kBool,
    kNumber,
    kString,
    kArray,
    kObject
  } type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json* Find(std::string_view key) const {
    for (const auto& [k, v] : object) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : t_(text) {}

  // The document, or nullopt if `text` is not exactly one JSON value.
  std::optional<Json> Parse() {
    std::optional<Json> v = Value();
    Space();
    if (!v || i_ != t_.size()) return std::nullopt;
    return v;
  }

 private:
  void Space() {
    while (i_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[i_]))) {
      ++i_;
    }
  }
  bool Eat(char c) {
    Space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  std::optional<std::string> String() {
    if (!Eat('"')) return std::nullopt;
    std::string s;
    while (i_ < t_.size() && t_[i_] != '"') {
      char c = t_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      if (c == '\\') {
        if (i_ >= t_.size()) return std::nullopt;
        const char e = t_[i_++];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            s += e;
            break;
          case 'b':
            s += '\b';
            break;
          case 'f':
            s += '\f';
            break;
          case 'n':
            s += '\n';
            break;
          case 'r':
            s += '\r';
            break;
          case 't':
            s += '\t';
            break;
          case 'u': {
            if (i_ + 4 > t_.size()) return std::nullopt;
            const unsigned long cp = std::strtoul(
                std::string(t_.substr(i_, 4)).c_str(), nullptr, 16);
            i_ += 4;
            s += cp < 0x80 ? static_cast<char>(cp) : '?';
            break;
          }
          default:
            return std::nullopt;
        }
      } else {
        s += c;
      }
    }
    if (i_ >= t_.size()) return std::nullopt;
    ++i_;  // closing quote
    return s;
  }
  std::optional<Json> Value() {
    Space();
    if (i_ >= t_.size()) return std::nullopt;
    Json j;
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      j.type = Json::Type::kObject;
      if (Eat('}')) return j;
      do {
        std::optional<std::string> k = String();
        if (!k || !Eat(':')) return std::nullopt;
        std::optional<Json> v = Value();
        if (!v) return std::nullopt;
        j.object.emplace_back(std::move(*k), std::move(*v));
      } while (Eat(','));
      if (!Eat('}')) return std::nullopt;
    } else if (c == '[') {
      ++i_;
      j.type = Json::Type::kArray;
      if (Eat(']')) return j;
      do {
        std::optional<Json> v = Value();
        if (!v) return std::nullopt;
        j.array.push_back(std::move(*v));
      } while (Eat(','));
      if (!Eat(']')) return std::nullopt;
    } else if (c == '"') {
      std::optional<std::string> s = String();
      if (!s) return std::nullopt;
      j.type = Json::Type::kString;
      j.string = std::move(*s);
    } else if (Word("true")) {
      j.type = Json::Type::kBool;
      j.boolean = true;
    } else if (Word("false")) {
      j.type = Json::Type::kBool;
    } else if (Word("null")) {
      j.type = Json::Type::kNull;
    } else {
      const std::string rest(t_.substr(i_, 40));
      char* end = nullptr;
      j.number = std::strtod(rest.c_str(), &end);
      if (end == rest.c_str()) return std::nullopt;
      i_ += static_cast<std::size_t>(end - rest.c_str());
      j.type = Json::Type::kNumber;
    }
    return j;
  }

  std::string_view t_;
  std::size_t i_ = 0;
};

std::vector<int> Ints(const Json* array) {
  std::vector<int> out;
  if (array == nullptr || array->type != Json::Type::kArray) return {-1};
  for (const Json& v : array->array) out.push_back(static_cast<int>(v.number));
  return out;
}

TEST(JsonReader, ParsesWhatTheTestsNeedAndRejectsGarbage) {
  std::optional<Json> j =
      JsonParser(
          R"({"a": [1, 2.5, -3], "b": {"c": "x\ny\"z"}, "t": true, "n": null})")
          .Parse();
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(Ints(j->Find("a")), (std::vector<int>{1, 2, -3}));
  EXPECT_EQ(j->Find("b")->Find("c")->string, "x\ny\"z");
  EXPECT_TRUE(j->Find("t")->boolean);
  EXPECT_EQ(j->Find("n")->type, Json::Type::kNull);
  EXPECT_FALSE(JsonParser(R"({"a": 1)").Parse().has_value());
  EXPECT_FALSE(JsonParser(R"({"a": 1} x)").Parse().has_value());
  EXPECT_FALSE(JsonParser("").Parse().has_value());
}

// --- fixtures --------------------------------------------------------------

// A grid created by the tool: 8 MiB, 8 partitions.
std::string CreateGrid(const std::vector<std::string>& env = {},
                       const std::vector<std::string>& extra = {"--partitions",
                                                                "8"}) {
  std::string name = UniqueName();
  std::vector<std::string> args = {"create", name, "--memory", "8MiB",
                                   "--no-journal"};
  args.insert(args.end(), extra.begin(), extra.end());
  const CliRun r = RunCli(args, "", env);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  return name;
}

bool Listed(const std::string& name) {
  const CliRun r = RunCli({"list"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  return r.out.find(name + "\n") != std::string::npos ||
         r.out.find(name + "\t") != std::string::npos;
}

// --- create, put, get ------------------------------------------------------

TEST(Cli, CreatePutGetPrintsTheValue) {
  const std::string name = UniqueName();
  const CliRun c = RunCli({"create", name, "--memory", "8MiB", "--partitions",
                           "8", "--no-journal"});
  ASSERT_EQ(c.exit_code, 0) << Describe(c);
  EXPECT_THAT(c.out, HasSubstr("8 partitions"));
  const CliRun put = RunCli({"put", name, "k", "v"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_EQ(put.out, "");
  const CliRun get = RunCli({"get", name, "k"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, "v\n");
  EXPECT_EQ(get.err, "");
}

TEST(Cli, GetOfMissingKeyExits3WithNotFound) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli({"get", name, "missing"});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("not found"));
  EXPECT_EQ(r.out, "");
}

TEST(Cli, DataCommandsOnAMissingGridExit3SayingItDoesNotExist) {
  const std::string name = UniqueName();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"get", name, "k"},
                                             {"put", name, "k", "v"},
                                             {"del", name, "k"},
                                             {"scan", name}}) {
    const CliRun r = RunCli(args);
    EXPECT_EQ(r.exit_code, 3) << args[0] << "\n" << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("does not exist")) << args[0];
  }
}

TEST(Cli, GetJsonHasKeyValueAndVersion) {
  const std::string name = CreateGrid();
  ASSERT_EQ(RunCli({"put", name, "k", "a\"b"}).exit_code, 0);
  const CliRun r = RunCli({"get", name, "k", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::optional<Json> j = JsonParser(r.out).Parse();
  ASSERT_TRUE(j.has_value()) << r.out;
  ASSERT_NE(j->Find("value"), nullptr);
  EXPECT_EQ(j->Find("value")->string, "a\"b");
  EXPECT_EQ(j->Find("key")->string, "k");
  EXPECT_GT(j->Find("version")->number, 0);
}

TEST(Cli, PutOfOversizeKeyExits2NamingTheLimit) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli({"put", name, std::string(300, 'k'), "v"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("250"));
  const CliRun scan = RunCli({"scan", name});
  EXPECT_EQ(scan.exit_code, 0) << Describe(scan);
  EXPECT_EQ(scan.out, "") << "the refused put wrote nothing";
}

TEST(Cli, PutReadsTheValueFromStdinWithDash) {
  const std::string name = CreateGrid();
  const std::string value = "line one\nline two\0after a NUL\n"s;
  const CliRun put = RunCli({"put", name, "k", "-"}, value);
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  const CliRun get = RunCli({"get", name, "k", "--raw"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, value);
}

TEST(Cli, DelRemovesTheKeyAndASecondDelExits3) {
  const std::string name = CreateGrid();
  ASSERT_EQ(RunCli({"put", name, "k", "v"}).exit_code, 0);
  EXPECT_EQ(RunCli({"del", name, "k"}).exit_code, 0);
  EXPECT_EQ(RunCli({"get", name, "k"}).exit_code, 3);
  const CliRun again = RunCli({"del", name, "k"});
  EXPECT_EQ(again.exit_code, 3) << Describe(again);
  EXPECT_THAT(again.err, HasSubstr("not found"));
}

TEST(Cli, ScanListsEveryEntryOnceAsKeyTabValue) {
  const std::string name = CreateGrid();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(RunCli({"put", name, "key" + std::to_string(i),
                      "v" + std::to_string(i)})
                  .exit_code,
              0);
  }
  const CliRun r = RunCli({"scan", name});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::map<std::string, std::string> seen;
  std::size_t lines = 0;
  for (std::size_t pos = 0; pos < r.out.size();) {
    const std::size_t nl = r.out.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    const std::string line = r.out.substr(pos, nl - pos);
    const std::size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    seen[line.substr(0, tab)] = line.substr(tab + 1);
    ++lines;
    pos = nl + 1;
  }
  EXPECT_EQ(lines, 20u);
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_EQ(seen["key7"], "v7");
  const CliRun json = RunCli({"scan", name, "--json", "--prefix", "key1"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  std::optional<Json> j = JsonParser(json.out).Parse();
  ASSERT_TRUE(j.has_value()) << json.out;
  EXPECT_EQ(j->Find("count")->number, 11) << "key1 and key10..key19";
}

// --- create, info, list, destroy --------------------------------------------

TEST(Cli, CreateOfAnExistingGridExits4) {
  const std::string name = CreateGrid();
  ASSERT_EQ(RunCli({"put", name, "k", "v"}).exit_code, 0);
  const CliRun r = RunCli({"create", name, "--memory", "8MiB", "--partitions",
                           "8", "--no-journal"});
  EXPECT_EQ(r.exit_code, 4) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  EXPECT_EQ(RunCli({"get", name, "k"}).out, "v\n")
      << "the existing grid is untouched";
}

TEST(Cli, CreateWithABadOptionExits2AndLeavesNothing) {
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{
           {"--partitions", "0"},
           {"--group", "no-such-group-numagrid"},
           {"--memory", "lots"},
           {"--partitions", "many"}}) {
    const std::string name = UniqueName();
    std::vector<std::string> args = {"create", name, "--memory", "8MiB",
                                     "--no-journal"};
    args.insert(args.end(), extra.begin(), extra.end());
    const CliRun r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << extra[0] << " " << extra[1] << "\n"
                              << Describe(r);
    EXPECT_FALSE(Listed(name)) << extra[0];
    EXPECT_EQ(RunCli({"info", name}).exit_code, 3) << extra[0];
  }
}

TEST(Cli, InfoOfMissingGridExits3SayingItDoesNotExist) {
  const std::string name = UniqueName();
  const CliRun r = RunCli({"info", name});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
}

TEST(Cli, InfoJsonIsJsonDescribingTheGrid) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli({"info", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::optional<Json> j = JsonParser(r.out).Parse();
  ASSERT_TRUE(j.has_value()) << "not JSON: " << r.out;
  ASSERT_NE(j->Find("partitions"), nullptr) << r.out;
  EXPECT_EQ(j->Find("partitions")->number, 8);
  EXPECT_EQ(j->Find("name")->string, name);
  EXPECT_EQ(j->Find("mode")->string, "0600");
  const Json* nodes = j->Find("nodes");
  ASSERT_NE(nodes, nullptr);
  ASSERT_EQ(nodes->type, Json::Type::kArray);
  std::size_t partitions = 0;
  for (const Json& n : nodes->array) {
    partitions += Ints(n.Find("partitions")).size();
  }
  EXPECT_EQ(partitions, 8u);
}

TEST(Cli, InfoWithoutJsonNamesTheControlSegment) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli({"info", name});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("/dev/shm/numagrid." + name + ".ctl"));
  EXPECT_THAT(r.out, HasSubstr("partitions  8"));
}

TEST(Cli, TopologyJsonUnderASyntheticTwoNodeMachineListsTheirCores) {
  const CliRun r = RunCli({"topology", "--json"}, "",
                          {std::string("HWLOC_SYNTHETIC=") + kTwoNodes});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::optional<Json> j = JsonParser(r.out).Parse();
  ASSERT_TRUE(j.has_value()) << "not JSON: " << r.out;
  EXPECT_THAT(j->Find("source")->string, HasSubstr("synthetic"));
  EXPECT_FALSE(j->Find("this_system")->boolean);
  const Json* nodes = j->Find("nodes");
  ASSERT_NE(nodes, nullptr);
  ASSERT_EQ(nodes->array.size(), 2u) << r.out;
  EXPECT_EQ(Ints(nodes->array[0].Find("cores")), (std::vector<int>{0, 1}));
  EXPECT_EQ(Ints(nodes->array[1].Find("cores")), (std::vector<int>{2, 3}));
  EXPECT_EQ(Ints(nodes->array[0].Find("cpus")), (std::vector<int>{0, 1}));
  EXPECT_EQ(Ints(nodes->array[1].Find("cpus")), (std::vector<int>{2, 3}));
}

TEST(Cli, CreateUnderASyntheticTwoNodeMachinePlaces32PartitionsOnEach) {
  const std::vector<std::string> env = {std::string("HWLOC_SYNTHETIC=") +
                                        kTwoNodes};
  const std::string name = UniqueName();
  const CliRun c = RunCli({"create", name, "--memory", "8MiB", "--partitions",
                           "64", "--no-journal"},
                          "", env);
  ASSERT_EQ(c.exit_code, 0) << Describe(c);
  EXPECT_THAT(c.out, HasSubstr("binding skipped"));
  const CliRun r = RunCli({"info", name, "--json"}, "", env);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::optional<Json> j = JsonParser(r.out).Parse();
  ASSERT_TRUE(j.has_value()) << "not JSON: " << r.out;
  const Json* nodes = j->Find("nodes");
  ASSERT_NE(nodes, nullptr);
  ASSERT_EQ(nodes->array.size(), 2u);
  for (int n = 0; n < 2; ++n) {
    const std::vector<int> ids = Ints(nodes->array[n].Find("partitions"));
    EXPECT_EQ(ids.size(), 32u) << "node " << n;
    for (int p : ids) {
      EXPECT_EQ(p % 2, n) << "partition " << p << " on node " << n;
    }
    EXPECT_FALSE(nodes->array[n].Find("bound")->boolean);
  }
  // The grid is usable without the synthetic topology.
  ASSERT_EQ(RunCli({"put", name, "k", "v"}).exit_code, 0);
  EXPECT_EQ(RunCli({"get", name, "k"}).out, "v\n");
}

TEST(Cli, CheckOfAHealthyGridExits0AndPrintsOk) {
  const std::string name = CreateGrid();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(RunCli({"put", name, "k" + std::to_string(i), "v"}).exit_code, 0);
  }
  ASSERT_EQ(RunCli({"del", name, "k3"}).exit_code, 0);
  const CliRun r = RunCli({"check", name});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("9 live entries"));
  EXPECT_TRUE(r.out.size() >= 3 && r.out.substr(r.out.size() - 3) == "ok\n")
      << r.out;
  const CliRun json = RunCli({"check", name, "--json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  std::optional<Json> j = JsonParser(json.out).Parse();
  ASSERT_TRUE(j.has_value()) << json.out;
  EXPECT_TRUE(j->Find("ok")->boolean);
  EXPECT_EQ(j->Find("live_entries")->number, 9);
  EXPECT_TRUE(j->Find("problems")->array.empty());
}

TEST(Cli, CheckOfMissingGridExits3) {
  EXPECT_EQ(RunCli({"check", UniqueName()}).exit_code, 3);
}

TEST(Cli, DestroyRemovesTheGridFromList) {
  const std::string name = CreateGrid();
  EXPECT_TRUE(Listed(name));
  const CliRun d = RunCli({"destroy", name});
  ASSERT_EQ(d.exit_code, 0) << Describe(d);
  EXPECT_FALSE(Listed(name));
  EXPECT_EQ(RunCli({"info", name}).exit_code, 3);
  const CliRun again = RunCli({"destroy", name});
  EXPECT_EQ(again.exit_code, 3) << Describe(again);
}

TEST(Cli, ListJsonMarksTheGridComplete) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  std::optional<Json> j = JsonParser(r.out).Parse();
  ASSERT_TRUE(j.has_value()) << r.out;
  bool found = false;
  for (const Json& g : j->Find("grids")->array) {
    if (g.Find("name")->string == name) {
      found = true;
      EXPECT_TRUE(g.Find("complete")->boolean);
    }
  }
  EXPECT_TRUE(found) << r.out;
}

// --- usage -----------------------------------------------------------------

TEST(Cli, HelpOfEveryCommandExits0AndPrintsUsage) {
  for (const char* cmd : {"create", "destroy", "info", "list", "put", "get",
                          "del", "scan", "check", "topology"}) {
    for (const char* flag : {"--help", "-h"}) {
      const CliRun r = RunCli({cmd, flag});
      EXPECT_EQ(r.exit_code, 0) << cmd << " " << flag << "\n" << Describe(r);
      EXPECT_THAT(r.out, HasSubstr("usage: numagrid " + std::string(cmd)))
          << cmd;
    }
  }
  const CliRun top = RunCli({"--help"});
  EXPECT_EQ(top.exit_code, 0) << Describe(top);
  EXPECT_THAT(top.out, HasSubstr("usage:"));
}

TEST(Cli, HelpWinsOverMissingArguments) {
  const CliRun r = RunCli({"put", "--help"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("usage:"));
}

TEST(Cli, UnknownOptionExits2) {
  const std::string name = CreateGrid();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"list", "--bogus"},
           {"get", name, "k", "--bogus"},
           {"info", name, "-x"},
           {"create", UniqueName(), "--partitons", "8"}}) {
    const CliRun r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("unknown option")) << args[0];
  }
}

TEST(Cli, UnknownCommandAndNoCommandExit2) {
  const CliRun unknown = RunCli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2) << Describe(unknown);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command"));
  const CliRun none = RunCli({});
  EXPECT_EQ(none.exit_code, 2) << Describe(none);
  EXPECT_THAT(none.err, HasSubstr("usage:"));
}

TEST(Cli, WrongNumberOfArgumentsExits2WithUsage) {
  const std::string name = CreateGrid();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"get", name}, {"put", name, "k"}, {"info"}, {"list", "extra"}}) {
    const CliRun r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("usage:")) << args[0];
  }
}

TEST(Cli, OptionThatNeedsAValueWithoutOneExits2) {
  const CliRun r = RunCli({"create", UniqueName(), "--partitions"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("--partitions"));
}

TEST(Cli, DoubleDashEndsOptionsSoAKeyMayStartWithDash) {
  const std::string name = CreateGrid();
  ASSERT_EQ(RunCli({"put", name, "--", "-k", "v"}).exit_code, 0);
  const CliRun r = RunCli({"get", name, "--", "-k"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "v\n");
  EXPECT_THAT(RunCli({"get", name, "-k"}).err, Not(HasSubstr("not found")));
}

TEST(Cli, StatsCountsTheCliOperationsInEveryFormat) {
  const std::string name = CreateGrid();
  ASSERT_EQ(RunCli({"put", name, "k", "v"}).exit_code, 0);
  ASSERT_EQ(RunCli({"get", name, "k"}).exit_code, 0);
  ASSERT_EQ(RunCli({"get", name, "absent"}).exit_code, 3);
  const CliRun table = RunCli({"stats", name});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr("gets 2 (hit rate 50.0%), puts 1"));
  const CliRun json = RunCli({"stats", name, "--json"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  std::optional<Json> j = JsonParser(json.out).Parse();
  ASSERT_TRUE(j.has_value()) << "not JSON: " << json.out;
  ASSERT_NE(j->Find("totals"), nullptr);
  EXPECT_EQ(j->Find("totals")->Find("get_misses")->number, 1);
  EXPECT_EQ(j->Find("hit_rate")->number, 0.5);
  const CliRun prom = RunCli({"stats", name, "--prometheus"});
  ASSERT_EQ(prom.exit_code, 0) << Describe(prom);
  EXPECT_THAT(prom.out, HasSubstr("# TYPE numagrid_get_hits_total counter\n"));
  // One sample per partition: the hit is in k's partition, nowhere else.
  const std::string k_partition = std::to_string(base::PartitionOf(
      base::KeyHash("k"), j->Find("partitions")->array.size()));
  int samples = 0;
  std::istringstream lines(prom.out);
  for (std::string line; std::getline(lines, line);) {
    const std::string prefix =
        "numagrid_get_hits_total{grid=\"" + name + "\",node=\"0\",partition=\"";
    if (line.rfind(prefix, 0) != 0) continue;
    ++samples;
    const bool in_k = line.rfind(prefix + k_partition + "\"} ", 0) == 0;
    EXPECT_EQ(line.substr(line.rfind(' ') + 1), in_k ? "1" : "0") << line;
  }
  EXPECT_EQ(samples, static_cast<int>(j->Find("partitions")->array.size()));
}

TEST(Cli, StatsRefusesContradictoryOrBadOptions) {
  const std::string name = CreateGrid();
  EXPECT_EQ(RunCli({"stats", name, "--json", "--prometheus"}).exit_code, 2);
  EXPECT_EQ(RunCli({"stats", name, "--watch", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"stats", name, "--watch", "x"}).exit_code, 2);
  EXPECT_EQ(RunCli({"stats", UniqueName()}).exit_code, 3);
}

TEST(Cli, StartRefusesANonLoopbackMetricsAddress) {
  const std::string name = CreateGrid();
  const CliRun r = RunCli(
      {"start", name, "--foreground", "--metrics-listen", "0.0.0.0:9464"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("--metrics-listen-any"));
}

}  // namespace
}  // namespace numagrid
