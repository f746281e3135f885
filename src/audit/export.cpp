#include "audit/export.hpp"

#include <fstream>

#include "audit/audit_log.hpp"

namespace cg::audit {

LogExport build_log_export(const AuditLog& log, std::optional<clock::SysTime> oldest,
                           std::optional<clock::SysTime> latest, std::size_t max_bytes) {
  LogExport ex;
  std::string prev_of_first;
  std::size_t end_of_match = 0;  // body length after the last record inside the window
  std::uint64_t last_match = 0, records_at_match = 0, last_added = 0;
  for_each_record(log_file(log.dir()), 1, [&](const RecordView& r) {
    bool inside = true;
    if (oldest || latest) {
      const auto t = clock::parse_rfc3339(r.time);
      inside = t && !(oldest && *t < *oldest) && !(latest && *t > *latest);
    }
    if (!ex.records && !inside) return true;  // before the window
    if (ex.body.size() + r.line.size() + 1 > max_bytes) {
      ex.truncated = true;
      return false;
    }
    if (!ex.records) {
      ex.first_seq = r.seq;
      // ..."prev":"<64 hex>"}\t<hash>\t<mac>
      const auto t1 = r.line.find('\t');
      if (t1 != std::string::npos && t1 >= 66) prev_of_first = r.line.substr(t1 - 66, 64);
    }
    ex.body += r.line;
    ex.body += '\n';
    ++ex.records;
    last_added = r.seq;
    if (inside) {
      end_of_match = ex.body.size();
      last_match = r.seq;
      records_at_match = ex.records;
    }
    return true;
  });
  if (!ex.records) return ex;
  if (!ex.truncated) {  // records after the window are not part of it
    ex.body.resize(end_of_match);
    ex.records = records_at_match;
  }
  ex.last_seq = ex.truncated ? last_added : last_match;
  if (ex.first_seq > 1 && prev_of_first.size() == 64) ex.body.insert(0, log.continuation_line(ex.first_seq - 1, prev_of_first));
  return ex;
}

LogExport build_text_export(const std::vector<std::filesystem::path>& files, std::optional<clock::SysTime> oldest,
                            std::optional<clock::SysTime> latest, std::size_t max_bytes) {
  LogExport ex;
  bool keep = true;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() >= 24) {
        if (auto t = clock::parse_rfc3339(std::string_view(line).substr(0, 24))) {
          keep = !(oldest && *t < *oldest) && !(latest && *t > *latest);
        }
      }
      if (!keep) continue;
      if (ex.body.size() + line.size() + 1 > max_bytes) {
        ex.truncated = true;
        return ex;
      }
      ex.body += line;
      ex.body += '\n';
      ++ex.records;
    }
  }
  return ex;
}

}  // namespace cg::audit
