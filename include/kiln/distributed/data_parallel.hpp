// kiln/distributed/data_parallel.hpp — data-parallel training: one process per device, each with
// a copy of the model and a share of the data, their gradients averaged before every step
// (PyTorch's DistributedDataParallel, on the same c10d process groups).
//
//   kiln::data_parallel<kiln::gloo>   processes on CPUs (or a few GPUs without NCCL)
//   kiln::data_parallel<kiln::nccl>   one process per CUDA device
//
// The same program runs alone and under torchrun; alone (no RANK in the environment) the policy
// is one process and communicates nothing:
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::sgd{.lr = 0.1}, kiln::data_parallel<kiln::gloo>{}};
//   t.fit(train, val, {.epochs = 10});
//   // torchrun --standalone --nproc_per_node=2 --no_python -r 1 -t 1 ./program
//
// What the processes agree on, and when (the seams of kiln/distributed/distributed.hpp):
//   - at the start of every fit: every process's model has the same parameter and buffer names
//     and shapes (a difference is a kiln::distributed_error naming the tensor and the ranks), and
//     then rank 0's values;
//   - data: kiln::data::tensor_batches is sharded by the trainer (kiln/data/distributed_sampler.hpp:
//     PyTorch DistributedSampler's shares — training data padded so that every process has as many
//     batches, validation data unpadded so that no sample counts twice); other data is taken as
//     each process's share already;
//   - gradients: averaged over the processes in buckets (25 MB, the first 1 MB, as PyTorch's),
//     filled in reverse order of model.parameters() — about the order backward produces them. A
//     bucket is sent as soon as the last of its gradients is accumulated (a hook on each
//     parameter's gradient accumulator), while the backward pass goes on with the layers below;
//     buckets are sent in the same order in every process. Frozen parameters take no part; under
//     accumulate<K> only the backward pass of the batch that steps communicates (no_sync). A
//     parameter without a gradient counts as zero, and keeps none if no process had one;
//   - the loss and the validation metrics: sums and counts, or stored scores (AUROC), combine over
//     the processes before values are computed, so each reports what one process would on all the
//     data (kiln/core/processes.hpp);
//   - files: only rank 0 writes (loggers, checkpoints); every process waits at a barrier after the
//     epoch's checkpoint hooks and at the end of the fit, so a checkpoint is whole before any
//     process moves on and every process can resume from it.
//
// BatchNorm's running statistics are per process (each of its own batches), as in DDP without
// SyncBatchNorm; rank 0's are the ones checkpoints keep.
#pragma once

#include <kiln/core/processes.hpp>
#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/distributed/distributed.hpp>
#include <kiln/distributed/process_group.hpp>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace kiln {
namespace detail {

/// The gradients of a model's trainable parameters, in buckets that are averaged over the
/// processes while the backward pass runs.
class gradient_buckets {
 public:
  gradient_buckets(process_group& group, std::int64_t first_bucket_bytes, std::int64_t bucket_bytes)
      : group_(group), first_bucket_bytes_(first_bucket_bytes), bucket_bytes_(bucket_bytes) {}
  gradient_buckets(const gradient_buckets&) = delete;
  gradient_buckets& operator=(const gradient_buckets&) = delete;
  ~gradient_buckets() {
    *self_ = nullptr;  // a hook that outlives these buckets does nothing
    detach();
  }

  /// Buckets over `model`'s parameters that require gradients now; a hook on each.
  void attach(torch::nn::Module& model);

  /// Before a backward pass: whether the step follows it (then the hooks send buckets).
  void arm(bool steps) {
    if (steps && trainable_changed()) rebuild();  // a parameter was frozen or unfrozen since
    armed_ = steps;
    next_ = 0;
    for (auto& bucket : buckets_) bucket.pending = bucket.members.size();
  }

  /// After the backward pass of a step: every gradient becomes its mean over the processes.
  void average();

 private:
  struct member {
    std::size_t parameter;  // index in parameters_
    torch::Tensor slot;     // its gradient's place in the bucket, shaped as the parameter
    torch::Tensor present;  // 1 when the gradient was defined (after the sum: how many processes had one)
  };
  struct bucket {
    std::vector<member> members;
    std::vector<torch::Tensor> flat;  // one tensor: the gradients, then one presence flag per member
    std::size_t pending = 0;          // members whose gradient is not accumulated yet
    c10::intrusive_ptr<c10d::Work> work;
  };
  // The hook on a parameter's gradient accumulator: runs once its gradient is complete.
  struct ready_hook final : torch::autograd::FunctionPostHook {
    std::shared_ptr<gradient_buckets*> owner;
    std::size_t parameter;
    ready_hook(std::shared_ptr<gradient_buckets*> o, std::size_t p) : owner(std::move(o)), parameter(p) {}
    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
      if (*owner != nullptr) (*owner)->ready(parameter);
      return outputs;
    }
  };

  void ready(std::size_t parameter) {
    if (!armed_) return;
    const std::size_t b = bucket_of_[parameter];
    if (b == none) return;
    if (--buckets_[b].pending == 0) {
      while (next_ < buckets_.size() && buckets_[next_].pending == 0) send(next_++);
    }
  }
  void send(std::size_t b);
  void rebuild();
  void detach();
  [[nodiscard]] bool trainable_changed() const {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      if (parameters_[i].requires_grad() != (bucket_of_[i] != none)) return true;
    }
    return false;
  }

  static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

  process_group& group_;
  std::int64_t first_bucket_bytes_, bucket_bytes_;
  std::vector<torch::Tensor> parameters_;  // model.parameters(), in its order
  std::vector<std::size_t> bucket_of_;     // per parameter; none when it is frozen
  std::vector<bucket> buckets_;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, std::uintptr_t>> hooks_;
  std::shared_ptr<gradient_buckets*> self_ = std::make_shared<gradient_buckets*>(this);
  std::size_t next_ = 0;  // the first bucket not sent yet: buckets go out in order
  bool armed_ = false;
};

/// Every process's parameter and buffer names and shapes are rank 0's; throws naming the first
/// difference and the ranks.
inline void check_same_model(process_group& group, torch::nn::Module& model);

}  // namespace detail

/// Data-parallel training over a c10d process group; see the file comment.
///
///   kiln::data_parallel<kiln::gloo>{}                                  // torchrun's environment
///   kiln::data_parallel<kiln::gloo>{.timeout = std::chrono::seconds{60}}
///   kiln::data_parallel<kiln::gloo>{.join = kiln::rendezvous{.store = store, .rank = r, .world_size = 2}}
template <Backend B = gloo>
struct data_parallel {
  using kiln_role = role::distributed;
  using backend = B;

  /// How long a collective may wait for the other processes before the fit fails.
  std::chrono::milliseconds timeout = std::chrono::minutes{30};
  double bucket_mb = 25.0;       ///< gradient bytes per bucket, in MiB
  double first_bucket_mb = 1.0;  ///< the first bucket's (the last layers'), smaller so that it leaves early
  /// Where the processes meet; torchrun's environment when empty.
  std::optional<rendezvous> join;

  void validate() const {
    detail::check_positive("kiln::data_parallel", "bucket_mb", bucket_mb);
    detail::check_positive("kiln::data_parallel", "first_bucket_mb", first_bucket_mb);
    detail::check_option(timeout.count() > 0, "kiln::data_parallel", "timeout", "positive",
                         std::chrono::duration<double>(timeout).count());
  }

  class state_type {
   public:
    explicit state_type(const data_parallel& policy)
        : group_(std::make_unique<process_group>(policy.join ? process_group::join<B>(*policy.join, policy.timeout)
                                                             : process_group::from_environment<B>(policy.timeout))),
          buckets_(std::make_unique<detail::gradient_buckets>(*group_, bytes(policy.first_bucket_mb),
                                                              bytes(policy.bucket_mb))) {}

    [[nodiscard]] std::int64_t rank() const noexcept { return group_->rank(); }
    [[nodiscard]] std::int64_t world_size() const noexcept { return group_->world_size(); }
    /// The process group: collectives of one's own, the device collectives run on.
    [[nodiscard]] process_group& group() noexcept { return *group_; }

    [[gnu::cold]] void begin_fit(torch::nn::Module& model) {
      if (world_size() == 1) return;
      detail::check_same_model(*group_, model);
      torch::NoGradGuard no_grad;
      for (auto& p : model.parameters()) group_->broadcast(p, "the broadcast of rank 0's parameters");
      for (auto& b : model.buffers()) group_->broadcast(b, "the broadcast of rank 0's buffers");
      buckets_->attach(model);
    }
    void before_backward(bool steps) {
      if (world_size() > 1) buckets_->arm(steps);
    }
    void reduce_gradients(torch::nn::Module&) {
      if (world_size() > 1) buckets_->average();
    }
    void reduce_sums(torch::Tensor& loss_sum, std::int64_t& samples) {
      if (world_size() == 1) return;
      std::vector<torch::Tensor> sums{torch::stack({loss_sum.to(torch::kDouble).reshape({}),
                                                    torch::tensor(static_cast<double>(samples), loss_sum.options().dtype(torch::kDouble))})
                                          .to(group_->device())};
      group_->finish(group_->start_sum(sums), "the sum of the loss over the processes");
      const auto total = sums[0].to(torch::kCPU);
      loss_sum.copy_(total[0]);
      samples = static_cast<std::int64_t>(total[1].item<double>());
    }
    template <class Metrics>
    void reduce_metrics(Metrics& metrics) {
      if (world_size() > 1) metrics.reduce(*group_);
    }
    /// After rank 0 has written files: every process waits for it.
    void barrier() { group_->barrier("the barrier after rank 0 wrote its files"); }

   private:
    static std::int64_t bytes(double mib) { return static_cast<std::int64_t>(mib * 1024.0 * 1024.0); }

    std::unique_ptr<process_group> group_;  // the buckets' hooks hold its address
    std::unique_ptr<detail::gradient_buckets> buckets_;
  };
};

namespace detail {

inline void gradient_buckets::attach(torch::nn::Module& model) {
  detach();
  parameters_ = model.parameters();
  rebuild();
}

inline void gradient_buckets::rebuild() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
  hooks_.clear();
  buckets_.clear();
  bucket_of_.assign(parameters_.size(), none);
  std::int64_t filled = 0;
  std::vector<std::size_t> members;
  auto close = [&] {
    if (members.empty()) return;
    const auto& first = parameters_[members.front()];
    std::int64_t values = 0;
    for (const auto i : members) values += parameters_[i].numel();
    bucket made;
    made.flat.push_back(torch::zeros({values + static_cast<std::int64_t>(members.size())}, first.options().requires_grad(false)));
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < members.size(); ++k) {
      const auto& p = parameters_[members[k]];
      made.members.push_back({members[k], made.flat[0].narrow(0, offset, p.numel()).view(p.sizes()),
                              made.flat[0].narrow(0, values + static_cast<std::int64_t>(k), 1)});
      bucket_of_[members[k]] = buckets_.size();
      offset += p.numel();
    }
    buckets_.push_back(std::move(made));
    members.clear();
    filled = 0;
  };
  // Reverse order of registration: the last layers' gradients are the first to be complete.
  for (std::size_t i = parameters_.size(); i-- > 0;) {
    const auto& p = parameters_[i];
    if (!p.requires_grad()) continue;
    const std::int64_t size = p.numel() * static_cast<std::int64_t>(p.element_size());
    const std::int64_t cap = buckets_.empty() ? first_bucket_bytes_ : bucket_bytes_;
    if (!members.empty() && (filled + size > cap || p.scalar_type() != parameters_[members.front()].scalar_type() ||
                             p.device() != parameters_[members.front()].device())) {
      close();
    }
    members.push_back(i);
    filled += size;
  }
  close();
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (bucket_of_[i] == none) continue;
    auto accumulator = torch::autograd::impl::grad_accumulator(parameters_[i]);
    const auto key = accumulator->add_post_hook(std::make_unique<ready_hook>(self_, i));
    hooks_.emplace_back(std::move(accumulator), key);
  }
  armed_ = false;
}

inline void gradient_buckets::detach() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
  hooks_.clear();
  buckets_.clear();
}

inline void gradient_buckets::send(std::size_t b) {
  auto& bucket = buckets_[b];
  torch::NoGradGuard no_grad;
  for (auto& m : bucket.members) {
    const auto& grad = parameters_[m.parameter].grad();
    if (grad.defined()) {
      m.slot.copy_(grad);
      m.present.fill_(1);
    } else {
      m.slot.zero_();
      m.present.zero_();
    }
  }
  bucket.work = group_.start_sum(bucket.flat);
}

inline void gradient_buckets::average() {
  // Without a hook-armed backward (the epoch's last, partial accumulation window), or with
  // gradients that never came (unused parameters), the rest go now, in order.
  while (next_ < buckets_.size()) send(next_++);
  torch::NoGradGuard no_grad;
  const double processes = static_cast<double>(group_.world_size());
  for (auto& bucket : buckets_) {
    group_.finish(bucket.work, "gradient averaging");
    bucket.work.reset();
    bucket.flat[0].div_(processes);
    for (auto& m : bucket.members) {
      auto& p = parameters_[m.parameter];
      if (p.grad().defined()) {
        p.mutable_grad().copy_(m.slot);
      } else if (m.present.item<double>() > 0) {  // another process had one: read back, rarely
        p.mutable_grad() = m.slot.clone();
      }
    }
  }
  armed_ = false;
}

inline void check_same_model(process_group& group, torch::nn::Module& model) {
  std::ostringstream described;
  for (const auto& item : model.named_parameters()) described << "parameter " << item.key() << ' ' << item.value().sizes() << '\n';
  for (const auto& item : model.named_buffers()) described << "buffer " << item.key() << ' ' << item.value().sizes() << '\n';
  const std::string mine = described.str();
  const auto text = torch::from_blob(const_cast<char*>(mine.data()), {static_cast<std::int64_t>(mine.size())}, torch::kUInt8);
  const auto all = group.all_gather(text.clone());
  auto lines = [](const torch::Tensor& t) {
    const auto host = t.to(torch::kCPU).contiguous();
    std::vector<std::string> out;
    std::istringstream in(std::string(static_cast<const char*>(host.data_ptr()), static_cast<std::size_t>(host.numel())));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  const auto reference = lines(all[0]);
  for (std::size_t r = 1; r < all.size(); ++r) {
    const auto theirs = lines(all[r]);
    if (theirs == reference) continue;
    std::size_t i = 0;
    while (i < reference.size() && i < theirs.size() && reference[i] == theirs[i]) ++i;
    const std::string in_zero = i < reference.size() ? "'" + reference[i] + "'" : "nothing more";
    const std::string in_other = i < theirs.size() ? "'" + theirs[i] + "'" : "nothing more";
    throw distributed_error(concat("kiln::data_parallel: the processes' models differ: at tensor ", i + 1, " rank 0 has ",
                                   in_zero, " and rank ", r, " has ", in_other,
                                   "; every process must build the same model (same architecture, options and head)"));
  }
}

}  // namespace detail
}  // namespace kiln
