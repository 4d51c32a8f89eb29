// Every scheduler's learning rates (and one-cycle's momenta) against torch.optim.lr_scheduler
// itself: each case is run by kiln::lr_scheduler here and by tests/reference/torch_schedulers.py,
// with one Python process for all of them. Equal within 1e-12 relative, at every advance.
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../reference/reference.hpp"
#include "../support.hpp"

namespace {

using nlohmann::json;

// The PyTorch spelling of each policy, for the reference script.
json describe(const kiln::constant_lr&) { return {{"kind", "constant"}}; }
json describe(const kiln::step_lr& s) { return {{"kind", "step"}, {"step_size", s.step_size}, {"gamma", s.gamma}}; }
json describe(const kiln::multi_step_lr& s) {
  return {{"kind", "multi_step"}, {"milestones", s.milestones}, {"gamma", s.gamma}};
}
json describe(const kiln::exponential_lr& s) { return {{"kind", "exponential"}, {"gamma", s.gamma}}; }
json describe(const kiln::cosine_annealing& s) {
  return {{"kind", "cosine"}, {"T_max", s.t_max}, {"eta_min", s.eta_min}};
}
json describe(const kiln::cosine_warm_restarts& s) {
  return {{"kind", "warm_restarts"}, {"T_0", s.t_0}, {"T_mult", s.t_mult}, {"eta_min", s.eta_min}};
}
template <kiln::detail::name_chars M>
json describe(const kiln::reduce_on_plateau<M>& s) {
  return {{"kind", "plateau"},
          {"mode", s.mode == kiln::monitor_mode::min ? "min" : "max"},
          {"factor", s.factor},
          {"patience", s.patience},
          {"threshold", s.threshold},
          {"threshold_mode", s.threshold_mode == kiln::threshold_mode::rel ? "rel" : "abs"},
          {"cooldown", s.cooldown},
          {"min_lr", s.min_lr.size() == 1 ? json(s.min_lr[0]) : json(s.min_lr)},
          {"eps", s.eps}};
}
json describe(const kiln::one_cycle& s) {
  return {{"kind", "one_cycle"},
          {"total_steps", s.total_steps},
          {"pct_start", s.pct_start},
          {"anneal_strategy", s.anneal == kiln::anneal::cos ? "cos" : "linear"},
          {"three_phase", s.three_phase},
          {"div_factor", s.div_factor},
          {"final_div_factor", s.final_div_factor},
          {"cycle_momentum", s.cycle_momentum},
          {"base_momentum", s.base_momentum},
          {"max_momentum", s.max_momentum}};
}
template <class S>
json describe(const kiln::warmup<S>& s) {
  return {{"kind", "warmup"}, {"length", s.length}, {"start_factor", s.start_factor}, {"then", describe(s.then)}};
}

// A case: what the reference script reads, and kiln's own sequence for it.
struct scheduler_case {
  json spec;
  std::function<json()> run;
};

struct setup {
  std::vector<double> lrs{0.1};
  bool adam = false;
  double momentum = 0.9;
  std::int64_t advances = 30;
  std::vector<double> metrics{};
};

template <class Optimizer, class Options, class S>
json kiln_sequence(const S& policy, const setup& how) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const double lr : how.lrs) {
    auto options = std::make_unique<Options>(lr);
    if constexpr (std::is_same_v<Options, torch::optim::AdamOptions>) {
      options->betas(std::make_tuple(how.momentum, 0.999));
    } else {
      options->momentum(how.momentum);
    }
    groups.emplace_back(std::vector<torch::Tensor>{torch::zeros({1}, torch::requires_grad())}, std::move(options));
  }
  Optimizer optimizer(std::move(groups), Options(how.lrs[0]));
  kiln::lr_scheduler<S, Options> scheduler{policy, optimizer};
  json lrs = json::array(), momenta = json::array();
  auto record = [&] {
    json lr = json::array(), momentum = json::array();
    for (auto& group : optimizer.param_groups()) {
      const auto& options = static_cast<const Options&>(group.options());
      lr.push_back(options.lr());
      if constexpr (std::is_same_v<Options, torch::optim::AdamOptions>) {
        momentum.push_back(std::get<0>(options.betas()));
      } else {
        momentum.push_back(options.momentum());
      }
    }
    lrs.push_back(lr);
    momenta.push_back(momentum);
  };
  scheduler.start(how.advances);
  record();
  for (std::int64_t t = 0; t < how.advances; ++t) {
    if constexpr (kiln::lr_scheduler<S, Options>::monitors_metric) {
      scheduler.advance(how.metrics.at(static_cast<std::size_t>(t)));
    } else {
      scheduler.advance();
    }
    record();
  }
  return {{"lr", lrs}, {"momentum", momenta}};
}

class case_list {
 public:
  template <class S>
  void add(std::string name, const S& policy, setup how = {}) {
    json spec = {{"name", name},
                 {"scheduler", describe(policy)},
                 {"lrs", how.lrs},
                 {"optimizer", how.adam ? "adam" : "sgd"},
                 {"momentum", how.momentum},
                 {"advances", how.advances},
                 {"metrics", how.metrics}};
    cases_.push_back({std::move(spec), [policy, how] {
                        return how.adam ? kiln_sequence<torch::optim::Adam, torch::optim::AdamOptions>(policy, how)
                                        : kiln_sequence<torch::optim::SGD, torch::optim::SGDOptions>(policy, how);
                      }});
  }
  [[nodiscard]] const std::vector<scheduler_case>& cases() const noexcept { return cases_; }

 private:
  std::vector<scheduler_case> cases_;
};

// One or two parameter groups (backbone, head), and three to show nothing assumes fewer.
const std::vector<std::vector<double>> group_lrs{{0.1}, {0.01, 0.1}, {1.0, 0.3, 0.05}};

// Compares kiln's sequences with PyTorch's; returns the worst relative error and where it was.
struct comparison {
  double worst = 0;
  std::string where = "(none)";
  std::size_t values = 0;
};
void compare(const json& kiln_side, const json& torch_side, const std::string& name, const char* key,
             comparison& result) {
  const auto& k = kiln_side.at(key);
  const auto& p = torch_side.at(key);
  REQUIRE_MESSAGE(k.size() == p.size(), name);
  for (std::size_t t = 0; t < k.size(); ++t) {
    REQUIRE_MESSAGE(k[t].size() == p[t].size(), name);
    for (std::size_t g = 0; g < k[t].size(); ++g) {
      const double a = k[t][g].get<double>(), b = p[t][g].get<double>();
      const double error = kiln::test::relative_error(a, b);
      ++result.values;
      if (error > result.worst || error != error) {
        result.worst = error;
        char text[256];
        std::snprintf(text, sizeof text, "%s: %s at t=%zu group %zu: kiln %.17g, torch %.17g", name.c_str(), key, t,
                      g, a, b);
        result.where = text;
      }
    }
  }
}

std::vector<double> random_metrics(std::mt19937_64& rng, int shape, std::size_t n) {
  std::uniform_real_distribution<double> noise(-1.0, 1.0);
  std::vector<double> out;
  double level = shape == 1 ? -1.0 : 5.0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (shape) {
      case 0:
        level *= 0.97;
        out.push_back(level + 0.05 * noise(rng));
        break;  // falls, noisily
      case 1:
        level -= 0.1;
        out.push_back(level + 0.2 * noise(rng));
        break;  // negative, falling
      case 2:
        out.push_back(static_cast<double>(static_cast<int>(3 * noise(rng))) / 2);
        break;  // plateaus, repeats
      default:
        level += 0.05;
        out.push_back(level + 0.2 * noise(rng));
        break;  // rises (mode max)
    }
  }
  return out;
}

case_list all_cases() {
  case_list list;
  std::mt19937_64 rng(20240607);
  for (const auto& lrs : group_lrs) {
    list.add("constant", kiln::constant_lr{}, {.lrs = lrs});
    for (std::int64_t step_size : {1, 2, 3, 7}) {
      for (double gamma : {0.1, 0.5, 0.9}) {
        list.add("step", kiln::step_lr{.step_size = step_size, .gamma = gamma}, {.lrs = lrs});
      }
    }
    for (const auto& milestones : std::vector<std::vector<std::int64_t>>{{2, 5, 9}, {3, 3, 7}, {1}, {10, 20}, {}}) {
      for (double gamma : {0.1, 0.3}) {
        list.add("multi_step", kiln::multi_step_lr{.milestones = milestones, .gamma = gamma}, {.lrs = lrs});
      }
    }
    for (double gamma : {0.5, 0.9, 0.99, 1.0}) {
      list.add("exponential", kiln::exponential_lr{.gamma = gamma}, {.lrs = lrs, .advances = 40});
    }
    // Past t_max too: several periods of the recursive form, T_max = 1 included.
    for (std::int64_t t_max : {1, 2, 3, 5, 10, 17}) {
      for (double eta_min : {0.0, 1e-3, 0.02}) {
        list.add("cosine", kiln::cosine_annealing{.t_max = t_max, .eta_min = eta_min},
                 {.lrs = lrs, .advances = std::max<std::int64_t>(12, 5 * t_max + 3)});
      }
    }
    for (std::int64_t t_0 : {1, 2, 5}) {
      for (std::int64_t t_mult : {1, 2, 3}) {
        for (double eta_min : {0.0, 1e-3}) {
          list.add("warm_restarts", kiln::cosine_warm_restarts{.t_0 = t_0, .t_mult = t_mult, .eta_min = eta_min},
                   {.lrs = lrs, .advances = 60});
        }
      }
    }
  }

  // Plateau: both modes and threshold modes, patience 0, cooldown, min_lr reached (one value,
  // or one per group), eps skipping tiny reductions, negative metrics.
  for (const auto mode : {kiln::monitor_mode::min, kiln::monitor_mode::max}) {
    for (const auto threshold_mode : {kiln::threshold_mode::rel, kiln::threshold_mode::abs}) {
      for (std::int64_t patience : {0, 1, 3}) {
        for (std::int64_t cooldown : {0, 2}) {
          for (double threshold : {1e-4, 0.1}) {
            for (int shape : {0, 1, 2, 3}) {
              const auto& lrs = group_lrs[static_cast<std::size_t>(shape + patience) % 2];
              std::vector<double> min_lr{shape == 2 ? 1e-3 : 0.0};
              if (lrs.size() == 2 && cooldown == 2) min_lr = {1e-4, 2e-3};
              list.add("plateau",
                       kiln::reduce_on_plateau{.mode = mode,
                                               .factor = patience == 1 ? 0.5 : 0.1,
                                               .patience = patience,
                                               .threshold = threshold,
                                               .threshold_mode = threshold_mode,
                                               .cooldown = cooldown,
                                               .min_lr = min_lr},
                       {.lrs = lrs, .advances = 40, .metrics = random_metrics(rng, shape, 40)});
            }
          }
        }
      }
    }
  }
  // eps: a reduction of less than eps is skipped (min_lr just below the rate), a large eps too.
  list.add("plateau eps", kiln::reduce_on_plateau{.patience = 0, .min_lr = {0.1 - 1e-10}},
           {.advances = 10, .metrics = std::vector<double>(10, 1.0)});
  list.add("plateau eps", kiln::reduce_on_plateau{.factor = 0.9, .patience = 0, .eps = 0.02},
           {.advances = 10, .metrics = std::vector<double>(10, 1.0)});

  // One-cycle: two and three phases, cos and linear, div factors, SGD momentum and Adam beta1.
  for (std::int64_t total : {10, 23, 100}) {
    for (double pct : {0.25, 0.3, 0.5}) {
      for (const auto anneal : {kiln::anneal::cos, kiln::anneal::linear}) {
        for (bool three : {false, true}) {
          for (int variant : {0, 1}) {
            const kiln::one_cycle policy{.total_steps = total,
                                         .pct_start = pct,
                                         .anneal = anneal,
                                         .three_phase = three,
                                         .div_factor = variant == 0 ? 25.0 : 10.0,
                                         .final_div_factor = variant == 0 ? 1e4 : 100.0,
                                         .cycle_momentum = !(three && variant == 1),
                                         .base_momentum = variant == 0 ? 0.85 : 0.8,
                                         .max_momentum = variant == 0 ? 0.95 : 0.99};
            list.add(
                "one_cycle", policy,
                {.lrs = group_lrs[static_cast<std::size_t>(total) % 3], .adam = variant == 1, .advances = total});
          }
        }
      }
    }
  }

  // Warmup before each of the others (SequentialLR(LinearLR, S)); before plateau, its hand-over.
  for (std::int64_t length : {1, 3, 5}) {
    for (double start_factor : {0.1, 1.0 / 3, 1.0}) {
      const setup how{.lrs = group_lrs[static_cast<std::size_t>(length) % 2], .advances = 30};
      list.add("warmup constant", kiln::warmup<kiln::constant_lr>{.length = length, .start_factor = start_factor},
               how);
      list.add("warmup step",
               kiln::warmup<kiln::step_lr>{
                   .length = length, .start_factor = start_factor, .then = {.step_size = 3, .gamma = 0.5}},
               how);
      list.add("warmup multi_step",
               kiln::warmup<kiln::multi_step_lr>{
                   .length = length, .start_factor = start_factor, .then = {.milestones = {2, 6}, .gamma = 0.2}},
               how);
      list.add(
          "warmup exponential",
          kiln::warmup<kiln::exponential_lr>{.length = length, .start_factor = start_factor, .then = {.gamma = 0.9}},
          how);
      for (double eta_min : {0.0, 1e-3}) {
        list.add("warmup cosine",
                 kiln::warmup<kiln::cosine_annealing>{
                     .length = length, .start_factor = start_factor, .then = {.t_max = 10, .eta_min = eta_min}},
                 how);
        list.add(
            "warmup warm_restarts",
            kiln::warmup<kiln::cosine_warm_restarts>{
                .length = length, .start_factor = start_factor, .then = {.t_0 = 4, .t_mult = 2, .eta_min = eta_min}},
            how);
      }
      setup plateau_how = how;
      plateau_how.metrics = random_metrics(rng, 2, 30);
      list.add("warmup plateau",
               kiln::warmup<kiln::reduce_on_plateau<>>{
                   .length = length, .start_factor = start_factor, .then = {.patience = 1, .cooldown = 1}},
               plateau_how);
    }
  }
  return list;
}

}  // namespace

TEST_CASE("every scheduler's learning rates equal PyTorch's within 1e-12 relative") {
  const case_list list = all_cases();
  json specs = json::array();
  for (const auto& c : list.cases()) specs.push_back(c.spec);
  const json reference = kiln::test::run_reference("torch_schedulers.py", specs);
  REQUIRE(reference.size() == list.cases().size());

  comparison lr, momentum;
  std::map<std::string, std::size_t> per_kind;
  for (std::size_t i = 0; i < list.cases().size(); ++i) {
    const auto& c = list.cases()[i];
    const std::string name = c.spec.at("name").get<std::string>() + " " + c.spec.at("scheduler").dump();
    const json ours = c.run();
    compare(ours, reference[i], name, "lr", lr);
    compare(ours, reference[i], name, "momentum", momentum);
    ++per_kind[c.spec.at("name").get<std::string>()];
  }
  std::string counts;
  for (const auto& [kind, n] : per_kind) counts += " " + kind + ":" + std::to_string(n);
  MESSAGE("scheduler parity: ", list.cases().size(), " configurations (", counts, " ), ", lr.values,
          " learning rates, worst relative error ", lr.worst, "; momenta worst ", momentum.worst);
  CHECK_MESSAGE(lr.worst <= 1e-12, lr.where);
  CHECK_MESSAGE(momentum.worst <= 1e-12, momentum.where);
}
