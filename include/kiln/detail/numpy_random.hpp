// kiln/detail/numpy_random.hpp — numpy's legacy random stream (numpy.random.RandomState), as far
// as scikit-learn's splitters draw from it.
//
// RandomState(seed) is the Mersenne Twister MT19937 seeded with the 32-bit seed exactly as
// std::mt19937 seeds it (Matsumoto and Nishimura's init_genrand), so the two produce the same
// 32-bit words. RandomState.shuffle(x) of a one-dimensional array is the Fisher–Yates shuffle from
// the last element down: for i = n−1 … 1 it swaps x[i] with x[j], j drawn uniformly from [0, i]
// by masking 32-bit words to the smallest all-ones mask ≥ i and drawing again while the result
// exceeds i. Reproducing that draw, not just its distribution, is what makes shuffled folds equal
// scikit-learn's index for index (tests/cv/splitters.cpp checks them against scikit-learn).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>

namespace kiln::detail {

class numpy_random_state {
 public:
  explicit numpy_random_state(std::uint32_t seed) : engine_(seed) {}

  /// A uniform integer in [0, max], drawn as numpy's legacy random_interval draws it.
  std::uint32_t interval(std::uint32_t max) {
    if (max == 0) return 0;
    std::uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    std::uint32_t value = 0;
    do {
      value = static_cast<std::uint32_t>(engine_()) & mask;
    } while (value > max);
    return value;
  }

  /// RandomState.shuffle of a one-dimensional array.
  template <class T>
  void shuffle(std::span<T> values) {
    for (std::size_t i = values.size(); i-- > 1;) {
      std::swap(values[i], values[interval(static_cast<std::uint32_t>(i))]);
    }
  }

 private:
  std::mt19937 engine_;
};

}  // namespace kiln::detail
