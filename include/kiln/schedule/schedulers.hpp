// kiln/schedule/schedulers.hpp — learning-rate scheduler policies, each equal to PyTorch's.
//
//   kiln::constant_lr           the rate never changes (the default)                 decay.hpp
//   kiln::step_lr               × gamma every step_size advances (StepLR)            decay.hpp
//   kiln::multi_step_lr         × gamma at milestones (MultiStepLR)                  decay.hpp
//   kiln::exponential_lr        × gamma every advance (ExponentialLR)                decay.hpp
//   kiln::cosine_annealing      cosine down to eta_min, recursive (CosineAnnealingLR)  cosine.hpp
//   kiln::cosine_warm_restarts  cosine with restarts (CosineAnnealingWarmRestarts)   cosine.hpp
//   kiln::reduce_on_plateau     lower the rate when a metric stalls (ReduceLROnPlateau)  plateau.hpp
//   kiln::warmup<S>             linear warmup, then S (SequentialLR(LinearLR, S))    warmup.hpp
//   kiln::one_cycle             1cycle, with momentum (OneCycleLR)                   one_cycle.hpp
//
// A scheduler advances once per epoch (after validation) or once per optimizer step, as its
// `interval` says (reduce_on_plateau: per epoch only). What a policy must provide is in
// scheduler.hpp; lr_scheduler.hpp binds one to an optimizer and keeps its state. Each names its
// runtime options in `each_option`, so that kiln::config can set them ("scheduler.gamma").
//
//   kiln::step_lr{.step_size = 30, .gamma = 0.1}
//   kiln::warmup<kiln::cosine_annealing>{.length = 500, .start_factor = 0.1,
//                                        .then = {.t_max = 9500, .interval = kiln::interval::step}}
//   kiln::reduce_on_plateau<"val/accuracy">{.mode = kiln::monitor_mode::max, .patience = 3}
#pragma once

#include <kiln/schedule/cosine.hpp>
#include <kiln/schedule/decay.hpp>
#include <kiln/schedule/lr_scheduler.hpp>
#include <kiln/schedule/one_cycle.hpp>
#include <kiln/schedule/plateau.hpp>
#include <kiln/schedule/scheduler.hpp>
#include <kiln/schedule/warmup.hpp>
