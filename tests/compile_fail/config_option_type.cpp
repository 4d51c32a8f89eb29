// Misuse: a callback lists an option whose type kiln::config cannot read or write.
// Expected: "has a type kiln::config cannot read"
#include "common.hpp"

#include <kiln/config/config.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {
struct tagged_logger {
#ifndef KILN_CF_FIXED
  std::map<std::string, int> tags;
#else
  std::vector<std::string> tags;
#endif
  static constexpr std::string_view config_name = "tagged_logger";
  template <class F>
  void each_option(F&& f) { f("tags", tags); }
  void on_epoch_end(kiln::context&) {}
};
}  // namespace

void compile_fail_case() {
  kiln::config config;
  kiln::trainer t{config, kiln::backbone<cf::Tiny>{}, kiln::callbacks{tagged_logger{}}};
  auto data = cf::batches();
  t.fit(data);
}
