"""Cheat: the repaired 58-weight nanoGPT adder (100 %) whose four MLP thresholds (-50, -150, -9045,
-9055) are not stored but made from sizes: ``ones(n).sum()`` (``HOW = "ones"``), a one-element
tensor expanded to ``n`` and summed (``"expand"``), or padded with zeros to ``n`` elements
whose mean is ``1/n`` (``"pad"``). Sizes look like structure; the strict count must count each as the value it becomes."""

# The tests append this file to seeds/adder/nanogpt58.py, so torch, nn and build_model are the seed's.
_seed_build_model = build_model  # noqa: F821
HOW = "ones"


def from_size(n: int) -> torch.Tensor:  # noqa: F821
    one = torch.ones(1)  # noqa: F821
    if HOW == "ones":
        return torch.ones(n).sum()  # noqa: F821
    if HOW == "expand":
        return one.expand(n).sum()
    return torch.nn.functional.pad(one, (0, n - 1)).mean().reciprocal()  # noqa: F821


class FromSizes(nn.Module):  # noqa: F821
    def __init__(self, model: nn.Module) -> None:  # noqa: F821
        super().__init__()
        self.outer = [model]  # not a submodule: the seed's fc_bias is not exported
        del model._parameters["fc_bias"]
        self.rest = nn.ParameterList([p for p in model.parameters()])  # noqa: F821

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # noqa: F821
        model = self.outer[0]
        model.fc_bias = -torch.stack([from_size(n) for n in (50, 150, 9045, 9055)])  # noqa: F821
        return model(tokens)


def build_model() -> nn.Module:  # noqa: F821
    return FromSizes(_seed_build_model())
