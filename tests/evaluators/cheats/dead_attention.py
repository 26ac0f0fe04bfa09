"""Cheat: the 58-weight nanoGPT adder whose attention still runs (scores from the sequence against
itself, a softmax over the keys, weights mixing positions) but is multiplied by a stored zero, so
it cannot change a single logit. Such an attention satisfies ``attention_ops >= 1`` on paper only;
the ablation on the probe run (each query reading only itself leaves the logits unchanged) must
not count it."""

# The tests append this file to seeds/adder/nanogpt58.py, so torch, nn and NanoAdder are the seed's.
_seed_build_model = build_model  # noqa: F821


class DeadAttention(NanoAdder):  # noqa: F821
    def __init__(self) -> None:
        super().__init__()
        self.dead = nn.Parameter(torch.zeros(1))  # noqa: F821

    def attention(self, x: torch.Tensor) -> torch.Tensor:  # noqa: F821
        return self.dead * super().attention(x)


def build_model() -> nn.Module:  # noqa: F821
    model = DeadAttention()
    model.load_state_dict(_seed_build_model().state_dict(), strict=False)
    return model.eval()
