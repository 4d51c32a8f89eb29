// kiln/io/submission.hpp — a submission file: one CSV row per sample.
//
// With class indices [N] the file is `id,prediction`; with class probabilities [N, C] it is
// `id,class_0,...,class_{C-1}`. Written atomically.
//
//   kiln::write_submission("submission.csv", ids, logits.argmax(1));
//   kiln::write_submission("probabilities.csv", ids, logits.softmax(1));
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/writable_directory.hpp>
#include <kiln/io/atomic_file.hpp>

#include <torch/types.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace kiln {

KILN_DECL void write_submission(const std::filesystem::path& path, const torch::Tensor& ids,
                                const torch::Tensor& predictions);

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void write_submission(const std::filesystem::path& path, const torch::Tensor& ids,
                                const torch::Tensor& predictions) {
  if (ids.dim() != 1 || predictions.dim() < 1 || predictions.dim() > 2 ||
      ids.size(0) != predictions.size(0)) {
    throw std::invalid_argument(detail::concat(
        "kiln::write_submission: ids must be [N] and predictions [N] (classes) or [N, C] "
        "(probabilities), got ", ids.sizes(), " and ", predictions.sizes()));
  }
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path{"."};
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) detail::check_writable_directory(dir, "kiln::write_submission");
  const auto id = ids.to(torch::kCPU, torch::kLong).contiguous();
  const bool classes = predictions.dim() == 1;
  const auto values = classes ? predictions.to(torch::kCPU, torch::kLong).contiguous()
                              : predictions.to(torch::kCPU, torch::kDouble).contiguous();
  atomic_write(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error(detail::concat("cannot create '", tmp.string(), "': ", std::strerror(errno)));
    out << std::setprecision(std::numeric_limits<double>::max_digits10);
    const auto n = id.size(0);
    const auto* ids_data = id.data_ptr<std::int64_t>();
    if (classes) {
      out << "id,prediction\n";
      const auto* v = values.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < n; ++i) out << ids_data[i] << ',' << v[i] << '\n';
    } else {
      const auto c = values.size(1);
      out << "id";
      for (std::int64_t k = 0; k < c; ++k) out << ",class_" << k;
      out << '\n';
      const auto* v = values.data_ptr<double>();
      for (std::int64_t i = 0; i < n; ++i) {
        out << ids_data[i];
        for (std::int64_t k = 0; k < c; ++k) out << ',' << v[i * c + k];
        out << '\n';
      }
    }
    out.flush();
    if (!out) throw std::runtime_error("writing " + tmp.string() + " failed (disk full?)");
  });
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
