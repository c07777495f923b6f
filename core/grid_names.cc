#include "core/grid_names.h"

namespace numagrid::core {

Status ValidateGridName(std::string_view name) {
  if (name.empty()) return InvalidArgument("grid name is empty");
  if (name.size() > kMaxGridNameBytes) {
    return InvalidArgument("grid name '" + std::string(name) +
                           "' is longer than " +
                           std::to_string(kMaxGridNameBytes) + " bytes");
  }
  if (name.front() == '-') {
    return InvalidArgument("grid name '" + std::string(name) +
                           "' starts with '-' (an option?)");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) {
      return InvalidArgument("grid name '" + std::string(name) +
                             "' may hold only letters, digits, '_' and '-'");
    }
  }
  return Status::Ok();
}

std::string GridSegmentPrefix(std::string_view grid) {
  std::string s(kSegmentPrefix);
  s += grid;
  s += '.';
  return s;
}

std::string ControlSegmentName(std::string_view grid) {
  return GridSegmentPrefix(grid) + "ctl";
}

std::string LockFileName(std::string_view grid) {
  return GridSegmentPrefix(grid) + "lock";
}

std::string DataSegmentName(std::string_view grid, std::uint32_t node_id) {
  return GridSegmentPrefix(grid) + "node" + std::to_string(node_id);
}

}  // namespace numagrid::core
