// scikit-learn's breast-cancer table as breast_cancer.cpp and tune_breast_cancer.cpp split it.
//
// Data: a CSV file written by scripts/prepare_tables.py (569 tumours, 30 features and a
// "target" column). The positive class is "malignant" (scikit-learn's target 0), as float 0/1.
// Split, fixed: every fifth row (rows 0, 5, 10, ...) validates (114), the rest train (455).
// Features are standardised with the training rows' mean and standard deviation.
#pragma once

#include <kiln/data/batches.hpp>
#include <kiln/data/csv.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>

namespace examples {

struct breast_cancer_split {
  kiln::data::tensor_batches train, val;
  std::int64_t val_tumours = 0, val_malignant = 0;
};

inline breast_cancer_split split_breast_cancer(const std::filesystem::path& path, std::int64_t batch_size,
                                               std::int64_t val_batch_size) {
  const auto table = kiln::data::read_csv(path);  // names the line and column of anything not a number
  const auto features = table.values.narrow(1, 0, table.index_of("target"));  // the 30 columns before it
  const auto malignant = table.column("target").eq(0).to(torch::kFloat);      // 1 malignant, 0 benign
  const auto rows = torch::arange(features.size(0));
  const auto val_rows = rows.masked_select(rows.remainder(5).eq(0));
  const auto train_rows = rows.masked_select(rows.remainder(5).ne(0));
  auto train_x = features.index_select(0, train_rows);
  auto val_x = features.index_select(0, val_rows);
  const auto mean = train_x.mean(0), scale = train_x.std(0);
  train_x = (train_x - mean) / scale;
  val_x = (val_x - mean) / scale;
  const auto val_y = malignant.index_select(0, val_rows);
  return {kiln::data::tensor_batches{train_x, malignant.index_select(0, train_rows),
                                     {.batch_size = batch_size, .shuffle = true, .seed = 3}},
          kiln::data::tensor_batches{val_x, val_y, {.batch_size = val_batch_size}}, val_rows.size(0),
          static_cast<std::int64_t>(val_y.sum().item<double>())};
}

}  // namespace examples
