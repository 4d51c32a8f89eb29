// kiln/core/mode.hpp — whether smaller or larger values of a monitored metric are better.
#pragma once

namespace kiln {

/// Used by kiln::early_stopping and kiln::model_checkpoint.
enum class mode { min, max };

}  // namespace kiln
