#include "core/journal_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/base/check.h"
#include "io/errno_status.h"

namespace numagrid::core {
namespace {

using io::detail::ErrnoIoError;
using io::detail::ErrnoStatus;

Status MakeDirs(const std::string& dir, mode_t mode,
                std::optional<std::uint32_t> gid) {
  // Each missing component, parents first; only the last gets `mode`/`gid`
  // (parents are ordinary directories such as /var/lib/numagrid).
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    const bool last = i == dir.size();
    if (mkdir(part.c_str(), last ? mode : 0755) == 0) {
      if (last) {
        // mkdir applies the umask; the journal's mode must not depend on it.
        if (chmod(part.c_str(), mode) != 0) {
          return ErrnoStatus(errno, "chmod " + part);
        }
        if (gid && chown(part.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
          return ErrnoStatus(errno, "chown " + part);
        }
      }
    } else if (errno != EEXIST) {
      return ErrnoStatus(errno, "create journal directory " + part);
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument("journal directory " + dir +
                           " exists and is not a directory");
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + dir);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return ErrnoIoError(err, "fsync " + dir);
  return Status::Ok();
}

bool IsJournalFileName(std::string_view n) {
  auto ends = [&](std::string_view suffix) {
    return n.size() >= suffix.size() &&
           n.substr(n.size() - suffix.size()) == suffix;
  };
  return (n.starts_with("journal-") && ends(".log")) ||
         (n.starts_with("snapshot-") && ends(".snap"));
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

std::string DefaultJournalDir(std::string_view name) {
  return "/var/lib/numagrid/" + std::string(name);
}

bool HasJournalFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (IsJournalFileName(e->d_name)) {
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

Status ClaimJournalDir(const std::string& dir,
                       std::optional<std::uint32_t> gid) {
  if (dir.empty() || dir[0] != '/') {
    return InvalidArgument("--journal-dir must be an absolute path, got '" +
                           dir + "'");
  }
  if (dir.size() >= 256) {
    return InvalidArgument("--journal-dir is longer than 255 bytes");
  }
  NUMAGRID_RETURN_IF_ERROR(MakeDirs(dir, gid ? 0770 : 0700, gid));
  auto existing = ReadManifest(dir);
  if (existing.ok()) {
    return AlreadyExists(
        "journal directory " + dir + " belongs to grid '" + existing->name +
        "' (id " + std::to_string(existing->grid_id) +
        "): rebuild that grid with `numagrid recover " + existing->name +
        "`, or remove the directory to start afresh");
  }
  if (existing.status().code() != StatusCode::kNotFound ||
      HasJournalFiles(dir)) {
    return AlreadyExists("journal directory " + dir +
                         " holds journal files without a readable manifest (" +
                         existing.status().message() +
                         "); remove them or choose another --journal-dir");
  }
  return Status::Ok();
}

Status WriteManifest(const std::string& dir, const GridManifest& m,
                     std::uint32_t file_mode,
                     std::optional<std::uint32_t> gid) {
  std::ostringstream out;
  out << "# numagrid grid manifest: written by `create`, read by `recover`\n"
      // format 2: the grid has several journal streams per node. A build
      // that knows only format 1 refuses the manifest instead of recovering
      // stream 0 of each node alone (it would ignore `streams_per_node` as
      // an unknown key). One stream per node stays format 1, as before.
      << "format=" << (m.streams_per_node > 1 ? 2 : 1) << "\n"
      << "name=" << m.name << "\n"
      << "grid_id=" << m.grid_id << "\n"
      << "node_count=" << m.node_count << "\n"
      << "partitions=" << m.partitions << "\n"
      << "memory_bytes=" << m.memory_bytes << "\n"
      << "max_key_bytes=" << m.max_key_bytes << "\n"
      << "max_value_bytes=" << m.max_value_bytes << "\n"
      << "max_entries=" << m.max_entries << "\n"
      << "ring_capacity=" << m.ring_capacity << "\n"
      << "process_capacity=" << m.process_capacity << "\n"
      << "lock_timeout_ms=" << m.lock_timeout_ms << "\n"
      << "ring_wait_ms=" << m.ring_wait_ms << "\n"
      << "group=" << m.group << "\n"
      << "durability=" << m.durability << "\n"
      << "flush_interval_us=" << m.flush_interval_us << "\n"
      << "segment_bytes=" << m.segment_bytes << "\n"
      << "sync_wait_ms=" << m.sync_wait_ms << "\n"
      << "snapshot_bytes=" << m.snapshot_bytes << "\n"
      << "snapshot_interval_s=" << m.snapshot_interval_s << "\n"
      << "streams_per_node=" << m.streams_per_node << "\n"
      << "eviction=" << EvictionPolicyName(m.eviction.policy) << "\n"
      << "high_watermark_pct=" << m.eviction.high_watermark_pct << "\n"
      << "low_watermark_pct=" << m.eviction.low_watermark_pct << "\n"
      << "eviction_samples=" << m.eviction.samples << "\n"
      << "eviction_max_entries=" << m.eviction.max_entries << "\n"
      << "default_ttl_ms=" << m.eviction.default_ttl_ms << "\n"
      << "max_idle_ms=" << m.eviction.max_idle_ms << "\n";
  const std::string text = out.str();
  const std::string path = dir + "/" + std::string(kManifestFileName);
  const std::string tmp = path + ".tmp";
  (void)unlink(tmp.c_str());
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "create " + tmp);
  Status s;
  if (fchmod(fd, file_mode) != 0) s = ErrnoStatus(errno, "chmod " + tmp);
  if (s.ok() && gid && fchown(fd, static_cast<uid_t>(-1), *gid) != 0) {
    s = ErrnoStatus(errno, "chown " + tmp);
  }
  if (s.ok()) {
    const ssize_t n = write(fd, text.data(), text.size());
    if (n != static_cast<ssize_t>(text.size())) {
      s = ErrnoIoError(n < 0 ? errno : EIO, "write " + tmp);
    }
  }
  if (s.ok() && fdatasync(fd) != 0) s = ErrnoIoError(errno, "fdatasync " + tmp);
  close(fd);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename " + tmp);
  }
  if (!s.ok()) {
    (void)unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

Result<GridManifest> ReadManifest(const std::string& dir) {
  const std::string path = dir + "/" + std::string(kManifestFileName);
  std::ifstream in(path);
  if (!in) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
      return NotFound("no manifest " + path);
    }
    return ErrnoStatus(errno, "open " + path);
  }
  GridManifest m;
  std::string line;
  int line_no = 0;
  bool format_seen = false;
  auto bad = [&](const std::string& why) {
    return Corruption(path + " line " + std::to_string(line_no) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) return bad("no '='");
    const std::string_view key(line.data(), eq);
    const std::string_view val(line.data() + eq + 1, line.size() - eq - 1);
    bool ok = true;
    if (key == "format") {
      ok = val == "1" || val == "2";
      format_seen = ok;
    } else if (key == "name") {
      m.name = std::string(val);
      ok = !val.empty();
    } else if (key == "grid_id") {
      ok = ParseNumber(val, &m.grid_id);
    } else if (key == "node_count") {
      ok = ParseNumber(val, &m.node_count);
    } else if (key == "partitions") {
      ok = ParseNumber(val, &m.partitions);
    } else if (key == "memory_bytes") {
      ok = ParseNumber(val, &m.memory_bytes);
    } else if (key == "max_key_bytes") {
      ok = ParseNumber(val, &m.max_key_bytes);
    } else if (key == "max_value_bytes") {
      ok = ParseNumber(val, &m.max_value_bytes);
    } else if (key == "max_entries") {
      ok = ParseNumber(val, &m.max_entries);
    } else if (key == "ring_capacity") {
      ok = ParseNumber(val, &m.ring_capacity);
    } else if (key == "process_capacity") {
      ok = ParseNumber(val, &m.process_capacity);
    } else if (key == "lock_timeout_ms") {
      ok = ParseNumber(val, &m.lock_timeout_ms);
    } else if (key == "ring_wait_ms") {
      ok = ParseNumber(val, &m.ring_wait_ms);
    } else if (key == "group") {
      m.group = std::string(val);
    } else if (key == "durability") {
      m.durability = std::string(val);
      ok = val == "async" || val == "sync";
    } else if (key == "flush_interval_us") {
      ok = ParseNumber(val, &m.flush_interval_us);
    } else if (key == "segment_bytes") {
      ok = ParseNumber(val, &m.segment_bytes);
    } else if (key == "sync_wait_ms") {
      ok = ParseNumber(val, &m.sync_wait_ms);
    } else if (key == "snapshot_bytes") {
      ok = ParseNumber(val, &m.snapshot_bytes);
    } else if (key == "snapshot_interval_s") {
      ok = ParseNumber(val, &m.snapshot_interval_s);
    } else if (key == "streams_per_node") {
      ok = ParseNumber(val, &m.streams_per_node) && m.streams_per_node >= 1 &&
           m.streams_per_node <= 8;
    } else if (key == "eviction") {
      auto policy = ParseEvictionPolicy(val);
      ok = policy.ok();
      if (ok) m.eviction.policy = *policy;
    } else if (key == "high_watermark_pct") {
      ok = ParseNumber(val, &m.eviction.high_watermark_pct);
    } else if (key == "low_watermark_pct") {
      ok = ParseNumber(val, &m.eviction.low_watermark_pct);
    } else if (key == "eviction_samples") {
      ok = ParseNumber(val, &m.eviction.samples);
    } else if (key == "eviction_max_entries") {
      ok = ParseNumber(val, &m.eviction.max_entries);
    } else if (key == "default_ttl_ms") {
      ok = ParseNumber(val, &m.eviction.default_ttl_ms);
    } else if (key == "max_idle_ms") {
      ok = ParseNumber(val, &m.eviction.max_idle_ms);
    }  // unknown keys: written by a later version; ignored
    if (!ok) return bad("bad value for " + std::string(key));
  }
  if (!format_seen) return Corruption(path + ": no 'format=1' line");
  if (m.name.empty() || m.grid_id == 0 || m.node_count == 0 ||
      m.partitions == 0 || m.durability.empty()) {
    return Corruption(path +
                      ": incomplete (name, grid_id, node_count, "
                      "partitions and durability are required)");
  }
  return m;
}

Status PurgeJournalDir(const std::string& dir, std::string_view name) {
  auto m = ReadManifest(dir);
  if (!m.ok()) return m.status();
  if (m->name != name) {
    return InvalidArgument(dir + " holds the journal of grid '" + m->name +
                           "', not '" + std::string(name) + "'");
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "open " + dir);
  std::vector<std::string> doomed;
  while (dirent* e = readdir(d)) {
    const std::string_view n = e->d_name;
    if (IsJournalFileName(n) ||
        (n.starts_with("journal-") && n.ends_with(".lock")) ||
        (n.starts_with("snapshot-") && n.ends_with(".snap.tmp")) ||
        n == "events.log" || n == "numagrid.log" || n == "watchdog.lock" ||
        n == "grid.conf.tmp") {
      doomed.emplace_back(n);
    }
  }
  closedir(d);
  for (const auto& n : doomed) {
    const std::string path = dir + "/" + n;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "delete " + path);
    }
  }
  // The manifest last: until it goes, the directory still says whose it is.
  const std::string manifest = dir + "/" + std::string(kManifestFileName);
  if (unlink(manifest.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "delete " + manifest);
  }
  (void)rmdir(dir.c_str());  // fails, harmlessly, if other files remain
  return Status::Ok();
}

int OpenJournalDirFile(const std::string& dir, std::string_view name,
                       int flags) {
  const std::string path = dir + "/" + std::string(name);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return -1;
  const bool shared = (st.st_mode & 0070) != 0;
  const mode_t mode = shared ? 0660 : 0600;
  const int fd = open(path.c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd >= 0) {
    // A new file: exactly the directory's access, whatever the umask.
    if (fchmod(fd, mode) != 0 ||
        (shared && fchown(fd, static_cast<uid_t>(-1), st.st_gid) != 0)) {
      const int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
    return fd;
  }
  if (errno != EEXIST) return -1;
  return open(path.c_str(), flags | O_CLOEXEC);
}

void RemoveManifest(const std::string& dir) {
  const std::string path = dir + "/" + std::string(kManifestFileName);
  (void)unlink(path.c_str());
}

}  // namespace numagrid::core
