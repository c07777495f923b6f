#include "tests/fuzz/fuzz_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace numagrid::fuzz {
namespace {

std::string* scratch_dir = nullptr;

void RemoveScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(*scratch_dir, ec);
}

}  // namespace

const std::string& ScratchDir() {
  if (scratch_dir == nullptr) {
    struct stat st {};
    std::string tmpl = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
                           ? "/dev/shm/ngfuzz-XXXXXX"
                           : "/tmp/ngfuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    scratch_dir = new std::string(tmpl);
    std::atexit(RemoveScratchDir);
  }
  return *scratch_dir;
}

void WriteFile(const std::string& path, std::span<const std::uint8_t> bytes) {
  (void)unlink(path.c_str());
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t rc = write(fd, bytes.data() + done, bytes.size() - done);
    if (rc < 0 && errno == EINTR) continue;
    FUZZ_CHECK(rc > 0);
    done += static_cast<std::size_t>(rc);
  }
  FUZZ_CHECK(close(fd) == 0);
}

void ClearDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  FUZZ_CHECK(d != nullptr);
  std::vector<std::string> names;
  // readdir is safe here: this DIR stream is ours alone.
  while (const dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  for (const std::string& n : names) {
    std::string path = dir;
    path += '/';
    path += n;
    (void)unlink(path.c_str());
  }
}

}  // namespace numagrid::fuzz
