// kiln/data/batches.hpp — mini-batches over tensors already in memory.
//
// tensor_batches is a range of torch::data::Example<> over (inputs, targets) held as two
// tensors with the same first dimension. Each pass (each begin()) draws a new order when
// shuffling, from the seed and the pass number, so runs repeat exactly and resume exactly.
// Without shuffling a batch is a view (no copy).
//
// Data may live on the GPU (batches are then views or gathers there, and the trainer copies
// nothing). Data in CPU memory trained on a CUDA device copies each batch to the device; with
// pin_memory the tensors are page-locked once, at construction, and shuffled batches gathered
// into page-locked memory, so that those copies run asynchronously (the trainer asks for
// non-blocking copies).
//
//   kiln::data::tensor_batches train{x, y, {.batch_size = 64, .shuffle = true, .seed = 1}};
//   kiln::data::tensor_batches on_gpu{x.cuda(), y.cuda(), {.batch_size = 64}};
//   for (const auto& batch : train) { batch.data; batch.target; }
//
// In a data-parallel fit the trainer shards it (shard(): this process's share, as PyTorch's
// DistributedSampler gives it, kiln/data/distributed_sampler.hpp); its passes then draw their
// order as that sampler does, from seed + pass.
#pragma once

#include <kiln/data/distributed_sampler.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/data/example.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>

namespace kiln::data {

struct batch_options {
  std::int64_t batch_size = 64;
  bool shuffle = false;
  std::uint64_t seed = 0;
  bool drop_last = false;  ///< leave out the last batch when it is smaller than batch_size
  bool pin_memory = false; ///< page-lock CPU tensors, for asynchronous copies to a CUDA device
};

class tensor_batches {
 public:
  KILN_DECL tensor_batches(torch::Tensor inputs, torch::Tensor targets, batch_options options = {});

  class iterator {
   public:
    using value_type = torch::data::Example<>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(const tensor_batches* owner, std::int64_t index) : owner_(owner), index_(index) {}

    value_type operator*() const { return owner_->batch(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      auto old = *this;
      ++index_;
      return old;
    }
    bool operator==(const iterator& other) const { return index_ == other.index_; }

   private:
    const tensor_batches* owner_ = nullptr;
    std::int64_t index_ = 0;
  };

  /// Starts a pass; when shuffling, its order is drawn from the seed and the pass number alone,
  /// so that any pass can be replayed (a resumed run sees the orders of the uninterrupted one).
  KILN_DECL iterator begin();

  /// Makes the next pass the pass number `pass` (from 0); the trainer calls it before each epoch.
  void set_epoch(std::int64_t pass) noexcept { pass_ = pass; }
  iterator end() const { return {this, size()}; }

  /// From the next pass on, only process `rank`'s share of the samples among `world_size`
  /// processes (kiln/data/distributed_sampler.hpp), its order drawn from seed + pass when
  /// shuffling. The trainer calls it in a data-parallel fit.
  void shard(std::int64_t rank, std::int64_t world_size, shard_tail tail) {
    detail::check_option(world_size >= 1, "kiln::data::tensor_batches::shard", "world_size", "at least 1", world_size);
    detail::check_option(rank >= 0 && rank < world_size, "kiln::data::tensor_batches::shard", "rank",
                         "from 0 to world_size - 1", rank);
    shard_ = sharding{rank, world_size, tail};
  }
  [[nodiscard]] bool sharded() const noexcept { return shard_.has_value(); }

  /// Batches per pass.
  [[nodiscard]] std::int64_t size() const noexcept {
    const auto n = shard_ ? shard_size(samples(), shard_->world_size, shard_->rank, shard_->tail) : samples();
    const auto b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }
  [[nodiscard]] std::int64_t samples() const noexcept { return inputs_.size(0); }

 private:
  [[nodiscard]] torch::data::Example<> batch(std::int64_t index) const {
    const std::int64_t start = index * options_.batch_size;
    const std::int64_t length = std::min(options_.batch_size, (shard_ ? order_.size(0) : samples()) - start);
    if (!options_.shuffle && !shard_) return {inputs_.narrow(0, start, length), targets_.narrow(0, start, length)};
    const auto rows = order_.narrow(0, start, length);
    if (options_.pin_memory) return {gather_pinned(inputs_, rows), gather_pinned(targets_, rows)};
    return {inputs_.index_select(0, rows), targets_.index_select(0, rows)};
  }

  KILN_DECL void pin();

  // index_select into page-locked memory. A new buffer per batch: LibTorch's pinned allocator
  // hands a buffer back only after the copies that read it have finished.
  KILN_DECL static torch::Tensor gather_pinned(const torch::Tensor& from, const torch::Tensor& rows);

  torch::Tensor inputs_;
  torch::Tensor targets_;
  batch_options options_;
  at::Generator generator_;
  std::int64_t pass_ = 0;
  torch::Tensor order_;
  struct sharding {
    std::int64_t rank, world_size;
    shard_tail tail;
  };
  std::optional<sharding> shard_;
};

}  // namespace kiln::data

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::data {

KILN_DECL tensor_batches::tensor_batches(torch::Tensor inputs, torch::Tensor targets, batch_options options)
    : inputs_(std::move(inputs)),
      targets_(std::move(targets)),
      options_(options),
      generator_(at::detail::createCPUGenerator(options.seed)) {
  detail::check_option(options_.batch_size >= 1, "kiln::data::tensor_batches", "batch_size",
                       "at least 1", options_.batch_size);
  if (!inputs_.defined() || !targets_.defined() || inputs_.dim() == 0 || targets_.dim() == 0 ||
      inputs_.size(0) != targets_.size(0)) {
    throw std::invalid_argument(detail::concat(
        "kiln::data::tensor_batches: inputs and targets must have the same first dimension "
        "(one row per sample), got ",
        inputs_.defined() ? inputs_.sizes() : c10::IntArrayRef{}, " and ",
        targets_.defined() ? targets_.sizes() : c10::IntArrayRef{}));
  }
  if (options_.pin_memory) pin();
}

KILN_DECL tensor_batches::iterator tensor_batches::begin() {
  if (shard_) {
    order_ = shard_indices(samples(), shard_->world_size, shard_->rank, pass_,
                           {.shuffle = options_.shuffle, .seed = options_.seed, .tail = shard_->tail});
    if (inputs_.device() != order_.device()) order_ = order_.to(inputs_.device());
  } else if (options_.shuffle) {
    generator_.set_current_seed(options_.seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(pass_));
    order_ = torch::randperm(samples(), generator_, torch::TensorOptions().dtype(torch::kLong));
    if (inputs_.device() != order_.device()) order_ = order_.to(inputs_.device());
  }
  ++pass_;
  return {this, 0};
}

KILN_DECL void tensor_batches::pin() {
  if (!inputs_.is_cpu() || !targets_.is_cpu()) {
    throw std::invalid_argument(detail::concat(
        "kiln::data::tensor_batches: pin_memory page-locks tensors in CPU memory, but these are on ",
        inputs_.is_cpu() ? targets_.device().str() : inputs_.device().str(),
        ", where batches need no copy; leave pin_memory false"));
  }
  if (!torch::cuda::is_available()) {
    throw std::invalid_argument(
        "kiln::data::tensor_batches: pin_memory needs a CUDA device (page-locked memory speeds up "
        "copies to one), and LibTorch sees none here; leave pin_memory false");
  }
  inputs_ = inputs_.pin_memory();
  targets_ = targets_.pin_memory();
}

KILN_DECL torch::Tensor tensor_batches::gather_pinned(const torch::Tensor& from, const torch::Tensor& rows) {
  at::DimVector sizes(from.sizes().begin(), from.sizes().end());
  sizes[0] = rows.size(0);
  auto out = torch::empty(sizes, from.options().pinned_memory(true));
  return torch::index_select_out(out, from, 0, rows);
}

}  // namespace kiln::data

#endif  // KILN_FUNCTION_DEFINITIONS
