// The only way a unit test starts a program: every program must be listed in
// scripts/programs.tsv (group "test") with the package that provides it — that
// table is what scripts/test.sh installs from — and be installed; otherwise
// the call throws, naming the program and the package, and the test fails (a
// security test that skips because a tool is missing is a silent pass).
// Programs run without a shell: arguments are passed as they are.
// scripts/check-programs.sh fails when a test starts a program another way.
#pragma once
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace cg::test {

#ifndef CG_SOURCE_DIR
#error "CG_SOURCE_DIR (the repository root) must be defined for the unit tests"
#endif

// The absolute path of `name`, or throws.
inline std::string program(std::string_view name) {
  const std::filesystem::path table = std::filesystem::path(CG_SOURCE_DIR) / "scripts" / "programs.tsv";
  std::ifstream in(table);
  if (!in) throw std::runtime_error("cannot read " + table.string());
  std::string line, source;
  bool listed = false, in_test = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string prog, src, check, groups;
    if (!(ls >> prog) || prog[0] == '#') continue;
    ls >> src >> check >> groups;
    if (prog != name) continue;
    listed = true;
    source = src;
    in_test = ("," + groups + ",").find(",test,") != std::string::npos;
  }
  if (!listed)
    throw std::runtime_error("a test runs '" + std::string(name) +
                             "', which is not in scripts/programs.tsv: add it there with the Debian package that "
                             "provides it (scripts/test.sh installs from that table)");
  if (!in_test)
    throw std::runtime_error("'" + std::string(name) +
                             "' is in scripts/programs.tsv but not in the group 'test': scripts/test.sh does not "
                             "install it");
  std::string path = ::getenv("PATH") ? ::getenv("PATH") : "";
  path += ":/usr/local/sbin:/usr/sbin:/sbin";  // rsyslogd is in /usr/sbin
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string f = dir + "/" + std::string(name);
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(f.c_str(), X_OK) == 0) return f;
  }
  throw std::runtime_error("'" + std::string(name) + "' is not installed (" + source +
                           "); ./scripts/test.sh installs it from scripts/programs.tsv");
}

// Starts `name` with `args` (no shell), stdout and stderr appended to
// `output_file` (or /dev/null when empty), in `cwd` when given. Returns the pid.
inline pid_t spawn_program(std::string_view name, const std::vector<std::string>& args,
                           const std::filesystem::path& output_file = {}, const std::filesystem::path& cwd = {}) {
  const std::string file = program(name);
  std::vector<std::string> all{file};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string out = output_file.empty() ? std::string("/dev/null") : output_file.string();
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // glibc 2.36 (Debian 12) has posix_spawn_file_actions_addchdir_np.
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, file.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + file);
  return pid;
}

struct RunResult {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string output;  // stdout and stderr
};

// Runs `name` to completion (no shell).
inline RunResult run_program(std::string_view name, const std::vector<std::string>& args,
                             const std::filesystem::path& cwd = {}) {
  char tmpl[] = "/tmp/cg-run-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  const pid_t pid = spawn_program(name, args, tmpl, cwd);
  int st = 0;
  ::waitpid(pid, &st, 0);
  RunResult r;
  std::ifstream in(tmpl, std::ios::binary);
  r.output.assign(std::istreambuf_iterator<char>(in), {});
  ::unlink(tmpl);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace cg::test
