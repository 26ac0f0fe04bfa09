"""Cheat: the repaired 58-weight nanoGPT adder (100 %) with no stored weights at all. Every weight
is rebuilt in ``forward`` from scalar literals (``RATIOS``: as a ratio of two integer literals, which
a float-literal scan does not even see), so the AdderBoard convention counts 0 parameters. The
strict count must count each literal: the search minimises numbers, wherever they are written."""

# The tests append this file to seeds/adder/nanogpt58.py (a candidate can read no other file), so
# torch, nn, FORMAT and the seed's build_model are the seed's.
from fractions import Fraction  # noqa: E402

_seed_build_model = build_model  # noqa: F821


def repaired() -> nn.Module:  # noqa: F821
    model = _seed_build_model()
    with torch.no_grad():  # noqa: F821
        model.fc_bias[2:4] = torch.tensor([-9045.0, -9055.0])  # noqa: F821
    return model


RATIOS = False


def literal(value: float) -> torch.Tensor:
    if not RATIOS:
        return torch.scalar_tensor(value)
    ratio = Fraction(value).limit_denominator(10**6)
    return torch.scalar_tensor(ratio.numerator) / ratio.denominator


class FromLiterals(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        self.values = {name: p.detach().flatten().tolist() for name, p in model.named_parameters()}
        self.outer = [model]  # not a submodule: its parameters are not exported
        for name in self.shapes:
            del model._parameters[name]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.outer[0]
        for name, shape in self.shapes.items():
            setattr(model, name, torch.stack([literal(v) for v in self.values[name]]).view(shape))
        return model(tokens)


def build_model() -> nn.Module:
    return FromLiterals(repaired())
