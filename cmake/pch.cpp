// Anchor for the precompiled <torch/torch.h> that kiln's own targets share.
