// The Prometheus text exposition format (version 0.0.4) of a GridStatsReport:
// `numagrid stats --prometheus` and the watchdog's /metrics. Every metric
// is prefixed `numagrid_`, counters end in `_total`, times are in seconds
// and sizes in bytes; labels are `grid`, and `node`, `partition` or `slot`
// where they apply. docs/monitoring.md lists every family.
#pragma once

#include <string>

#include "core/stats.h"

namespace numagrid::core {

// The content type to serve the text with.
inline constexpr const char* kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Every family with its # HELP and # TYPE lines before its samples.
std::string FormatPrometheus(const GridStatsReport& report);

}  // namespace numagrid::core
