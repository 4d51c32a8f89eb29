// kiln/distributed/process_group.hpp — the processes of a data-parallel fit, joined on c10d,
// LibTorch's own communication layer (the one torch.distributed runs on).
//
//   kiln::gloo   collectives over TCP, for tensors in CPU memory (every LibTorch has it)
//   kiln::nccl   collectives between CUDA devices (LibTorch built with NCCL; elsewhere naming it
//                is a compile error that says so)
//
// Where the processes meet:
//   - torchrun's environment (the default): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
//     MASTER_PORT. Rank 0 serves the TCP store at MASTER_ADDR:MASTER_PORT, unless torchrun's agent
//     serves it (TORCHELASTIC_USE_AGENT_STORE=True, its static rendezvous): every process is then
//     its client, under the prefix /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, so that a
//     restarted attempt never reads the keys of the one before. Without RANK (the program run
//     alone) the group is this one process and nothing is communicated.
//   - an explicit rendezvous: a c10d store the caller made (a FileStore on a shared disk, a
//     TCPStore), with this process's rank and the number of processes.
//
// Each process group of a program gets its own key prefix in the store (the n-th group the
// program makes is "kiln/<n>"), so trainers made one after the other — in the same order in every
// process — each get a group of their own.
//
// Every collective a process starts waits at most the timeout (30 minutes by default, as
// torch.distributed); a process that has died is usually noticed at once (its sockets close), and
// either way the others stop with a kiln::distributed_error that says which collective failed.
//
// Unlike the rest of kiln, the functions of this folder are defined inline whatever the build
// (kiln/detail/linkage.hpp): kiln's compiled part then needs no c10d or Gloo headers.
#pragma once

#include <kiln/core/processes.hpp>
#include <kiln/detail/check.hpp>

#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kiln {

/// What went wrong between processes: a collective that failed or timed out, processes whose
/// models differ, an environment that names no process group.
struct distributed_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
// The base class of c10d's process groups, which has the collectives: ProcessGroup in
// LibTorch 1.x, Backend from 2.0 on (ProcessGroup then dispatches to one).
#if TORCH_VERSION_MAJOR >= 2
using c10d_group = c10d::Backend;
#else
using c10d_group = c10d::ProcessGroup;
#endif

template <class>
inline constexpr bool always_false = false;
}  // namespace detail

/// Collectives over TCP between CPU tensors: every LibTorch has it.
struct gloo {
  static constexpr std::string_view name = "gloo";
  static constexpr bool uses_cuda = false;
  static c10::intrusive_ptr<detail::c10d_group> make(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                     int world_size, std::chrono::milliseconds timeout) {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // As torch.distributed: the interface GLOO_SOCKET_IFNAME names, else this host's name's address.
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
  }
};

/// Collectives between CUDA devices, one process per device (LOCAL_RANK picks it).
struct nccl {
  static constexpr std::string_view name = "nccl";
  static constexpr bool uses_cuda = true;
  template <class Store = c10d::Store>
  static c10::intrusive_ptr<detail::c10d_group> make(const c10::intrusive_ptr<Store>& store, int rank, int world_size,
                                                     std::chrono::milliseconds timeout) {
#ifdef USE_C10D_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
#else
    static_assert(detail::always_false<Store>,
                  "kiln::nccl: this LibTorch was built without NCCL (USE_C10D_NCCL is not defined), so it has no "
                  "collectives between CUDA devices; use kiln::data_parallel<kiln::gloo>, or build against a "
                  "LibTorch with CUDA and NCCL.");
    return {};
#endif
  }
};

/// A process group's backend: kiln::gloo or kiln::nccl.
template <class B>
concept Backend = std::same_as<B, gloo> || std::same_as<B, nccl>;

/// Where the processes meet when torchrun's environment is not used: a store every process can
/// reach, this process's rank and the number of processes.
///
///   kiln::rendezvous{.store = c10::make_intrusive<c10d::FileStore>("/shared/run7", 2), .rank = r, .world_size = 2}
struct rendezvous {
  c10::intrusive_ptr<c10d::Store> store;
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
};

/// The processes that train one model together, on c10d. With one process there is no group, and
/// every collective returns at once.
class process_group final : public processes {
 public:
  /// This process alone.
  process_group() = default;

  /// Joins the group the environment names (torchrun's), or this process alone without RANK.
  template <Backend B>
  static process_group from_environment(std::chrono::milliseconds timeout);

  /// Joins the group of `meeting`'s store.
  template <Backend B>
  static process_group join(const rendezvous& meeting, std::chrono::milliseconds timeout);

  [[nodiscard]] std::int64_t rank() const noexcept override { return rank_; }
  [[nodiscard]] std::int64_t world_size() const noexcept override { return world_size_; }
  /// The device collectives run on: the CPU for Gloo, the CUDA device LOCAL_RANK for NCCL.
  [[nodiscard]] const torch::Device& device() const noexcept { return device_; }

  [[nodiscard]] std::vector<torch::Tensor> all_gather(const torch::Tensor& value) override;

  /// Starts Σ over the processes of `tensors` (one tensor), in place; finish() waits for it.
  [[nodiscard]] c10::intrusive_ptr<c10d::Work> start_sum(std::vector<torch::Tensor>& tensors) {
    return group_->allreduce(tensors);
  }
  /// Waits for a collective; `what` says in the error what it was for.
  void finish(const c10::intrusive_ptr<c10d::Work>& work, std::string_view what) const;

  /// Rank 0's values of `tensor`, in every process.
  void broadcast(torch::Tensor& tensor, std::string_view what);
  /// Returns when every process has called it.
  void barrier(std::string_view what);

  /// The c10d process group; null with one process.
  [[nodiscard]] const c10::intrusive_ptr<detail::c10d_group>& native() const noexcept { return group_; }

 private:
  template <Backend B>
  static process_group make(const c10::intrusive_ptr<c10d::Store>& store, std::int64_t rank, std::int64_t world_size,
                            std::chrono::milliseconds timeout);

  c10::intrusive_ptr<detail::c10d_group> group_;
  std::int64_t rank_ = 0;
  std::int64_t world_size_ = 1;
  torch::Device device_{torch::kCPU};
  std::chrono::milliseconds timeout_{0};
};

namespace detail {

inline std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string{value};
}

// An integer variable of torchrun's environment, checked.
inline std::int64_t environment_integer(const char* name, std::int64_t low, std::int64_t high) {
  const auto text = environment(name);
  if (!text) {
    throw distributed_error(concat("kiln::data_parallel: RANK is set but ", name,
                                   " is not; run the program under torchrun (which sets RANK, WORLD_SIZE, "
                                   "LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or set all of them"));
  }
  std::size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || value < low || value > high) {
    throw distributed_error(concat("kiln::data_parallel: ", name, "=", *text, " is not an integer from ", low, " to ",
                                   high));
  }
  return value;
}

// The store of torchrun's environment: one per program, since rank 0 serves it on MASTER_PORT.
inline c10::intrusive_ptr<c10d::Store> torchrun_store(std::int64_t rank, std::int64_t world_size,
                                                      std::chrono::milliseconds timeout) {
  static const c10::intrusive_ptr<c10d::Store> store = [&] {
    const auto address = environment("MASTER_ADDR");
    if (!address) {
      throw distributed_error(
          "kiln::data_parallel: RANK is set but MASTER_ADDR is not; run the program under torchrun, or set "
          "MASTER_ADDR and MASTER_PORT to where rank 0 listens");
    }
    const bool agent_serves = environment("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(environment_integer("MASTER_PORT", 1, 65535));
    options.isServer = !agent_serves && rank == 0;
    options.numWorkers = static_cast<std::size_t>(world_size);
    options.waitWorkers = !agent_serves;
    options.timeout = timeout;
    options.multiTenant = true;
    c10::intrusive_ptr<c10d::Store> tcp;
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(*address, options);
    } catch (const std::exception& e) {
      throw distributed_error(concat("kiln::data_parallel: rank ", rank, " could not reach the store at ", *address, ":",
                                     options.port, " (", e.what(), "); is rank 0 running, and is the port free?"));
    }
    if (!agent_serves) return tcp;
    const auto attempt = environment("TORCHELASTIC_RESTART_COUNT").value_or("0");
    return c10::intrusive_ptr<c10d::Store>(c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + attempt, tcp));
  }();
  return store;
}

// The n-th group this program makes, from 0: its key prefix in the store.
inline std::int64_t next_group_number() {
  static std::int64_t groups = 0;
  return groups++;
}

}  // namespace detail

template <Backend B>
process_group process_group::from_environment(std::chrono::milliseconds timeout) {
  if (!detail::environment("RANK")) return {};
  const auto world_size = detail::environment_integer("WORLD_SIZE", 1, 1 << 20);
  const auto rank = detail::environment_integer("RANK", 0, world_size - 1);
  const auto local_rank = detail::environment_integer("LOCAL_RANK", 0, world_size - 1);
  // torchrun with one process has nothing to meet: no store.
  auto group = world_size == 1 ? process_group{}
                               : make<B>(detail::torchrun_store(rank, world_size, timeout), rank, world_size, timeout);
  if constexpr (B::uses_cuda) group.device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  return group;
}

template <Backend B>
process_group process_group::join(const rendezvous& meeting, std::chrono::milliseconds timeout) {
  if (!meeting.store) throw distributed_error("kiln::rendezvous: the store is null; make one every process can reach");
  detail::check_option(meeting.world_size >= 1, "kiln::rendezvous", "world_size", "at least 1", meeting.world_size);
  detail::check_option(meeting.rank >= 0 && meeting.rank < meeting.world_size, "kiln::rendezvous", "rank",
                       "from 0 to world_size - 1", meeting.rank);
  return make<B>(meeting.store, meeting.rank, meeting.world_size, timeout);
}

template <Backend B>
process_group process_group::make(const c10::intrusive_ptr<c10d::Store>& store, std::int64_t rank,
                                  std::int64_t world_size, std::chrono::milliseconds timeout) {
  process_group group;
  group.rank_ = rank;
  group.world_size_ = world_size;
  group.timeout_ = timeout;
  if (world_size == 1) return group;
  const auto prefixed = c10::make_intrusive<c10d::PrefixStore>("kiln/" + std::to_string(detail::next_group_number()), store);
  try {
    group.group_ = B::make(prefixed, static_cast<int>(rank), static_cast<int>(world_size), timeout);
  } catch (const std::exception& e) {
    throw distributed_error(detail::concat("kiln::data_parallel: rank ", rank, " of ", world_size,
                                           " could not join the process group (", B::name, "): ", e.what()));
  }
  return group;
}

inline void process_group::finish(const c10::intrusive_ptr<c10d::Work>& work, std::string_view what) const {
  try {
    work->wait(timeout_);
  } catch (const std::exception& e) {
    throw distributed_error(detail::concat(
        "kiln::data_parallel: rank ", rank_, " of ", world_size_, " lost the other processes during ", what, " (",
        e.what(), "). Another process has stopped (its output says why) or has not reached this point within the ",
        std::chrono::duration<double>(timeout_).count(), " s timeout."));
  }
}

inline void process_group::broadcast(torch::Tensor& tensor, std::string_view what) {
  if (!group_) return;
  std::vector<torch::Tensor> tensors{tensor};
  finish(group_->broadcast(tensors), what);
}

inline void process_group::barrier(std::string_view what) {
  if (!group_) return;
  finish(group_->barrier(), what);
}

inline std::vector<torch::Tensor> process_group::all_gather(const torch::Tensor& value) {
  if (!group_) return {value};
  // Each process first says what it holds — defined, dtype, shape — in a fixed-size header, then
  // sends its bytes padded to the largest; each value is rebuilt from its header.
  constexpr std::int64_t max_dims = 8, header_size = 3 + max_dims;
  const auto whole = value.defined() ? value.contiguous() : torch::Tensor{};
  if (whole.defined() && whole.dim() > max_dims) {
    throw distributed_error(detail::concat("kiln::processes::all_gather: at most ", max_dims, " dimensions, got ",
                                           whole.sizes()));
  }
  auto header = torch::zeros({header_size}, torch::kLong);
  auto* h = header.data_ptr<std::int64_t>();
  if (whole.defined()) {
    h[0] = 1;
    h[1] = static_cast<std::int64_t>(whole.scalar_type());
    h[2] = whole.dim();
    for (std::int64_t d = 0; d < whole.dim(); ++d) h[3 + d] = whole.size(d);
  }
  auto gather = [&](const torch::Tensor& mine, std::string_view what) {
    std::vector<torch::Tensor> in{mine.to(device_)};
    std::vector<std::vector<torch::Tensor>> out(1);
    for (std::int64_t r = 0; r < world_size_; ++r) out[0].push_back(torch::empty_like(in[0]));
    finish(group_->allgather(out, in), what);
    return out[0];
  };
  const auto headers = gather(header, "all_gather (shapes)");
  std::vector<std::int64_t> bytes(static_cast<std::size_t>(world_size_), 0);
  std::vector<std::vector<std::int64_t>> each(static_cast<std::size_t>(world_size_));
  for (std::int64_t r = 0; r < world_size_; ++r) {
    const auto theirs = headers[static_cast<std::size_t>(r)].to(torch::kCPU);
    const auto* t = theirs.data_ptr<std::int64_t>();
    each[static_cast<std::size_t>(r)].assign(t, t + header_size);
    if (t[0] == 0) continue;
    std::int64_t numel = 1;
    for (std::int64_t d = 0; d < t[2]; ++d) numel *= t[3 + d];
    bytes[static_cast<std::size_t>(r)] = numel * static_cast<std::int64_t>(c10::elementSize(static_cast<c10::ScalarType>(t[1])));
  }
  const std::int64_t longest = std::max<std::int64_t>(1, *std::max_element(bytes.begin(), bytes.end()));
  auto payload = torch::zeros({longest}, torch::kUInt8);
  if (whole.defined() && whole.numel() > 0) {
    const auto host = whole.to(torch::kCPU);
    std::memcpy(payload.data_ptr(), host.data_ptr(), static_cast<std::size_t>(host.numel()) * host.element_size());
  }
  const auto payloads = gather(payload, "all_gather (values)");
  std::vector<torch::Tensor> values(static_cast<std::size_t>(world_size_));
  for (std::int64_t r = 0; r < world_size_; ++r) {
    const auto& t = each[static_cast<std::size_t>(r)];
    if (t[0] == 0) continue;
    std::vector<std::int64_t> sizes(t.begin() + 3, t.begin() + 3 + t[2]);
    auto rebuilt = torch::empty(sizes, torch::TensorOptions().dtype(static_cast<c10::ScalarType>(t[1])));
    const auto received = payloads[static_cast<std::size_t>(r)].to(torch::kCPU);
    std::memcpy(rebuilt.data_ptr(), received.data_ptr(), static_cast<std::size_t>(bytes[static_cast<std::size_t>(r)]));
    values[static_cast<std::size_t>(r)] = rebuilt.to(whole.defined() ? whole.device() : device_);
  }
  return values;
}

}  // namespace kiln
