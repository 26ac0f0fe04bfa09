"""Cheat: the repaired 58-weight nanoGPT adder whose only parameter is a 1-element view of a
58-float storage; ``forward`` re-views the whole storage with ``as_strided``. ``torch.save`` writes
the whole storage, so the numbers are in the artefact but behind the view: the loader refuses a
stored tensor that does not cover its storage exactly."""

# The tests append this file to seeds/adder/nanogpt58.py (a candidate can read no other file), so
# torch, nn, FORMAT and the seed's build_model are the seed's.
_seed_build_model = build_model  # noqa: F821


def repaired() -> nn.Module:  # noqa: F821
    model = _seed_build_model()
    with torch.no_grad():  # noqa: F821
        model.fc_bias[2:4] = torch.tensor([-9045.0, -9055.0])  # noqa: F821
    return model


class Hidden(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        self.total = sum(p.numel() for p in model.parameters())
        flat = torch.cat([p.detach().flatten() for p in model.parameters()]).float()
        self.one = nn.Parameter(flat[:1])  # a view: its storage still holds all 58 values
        self.outer = [model]
        for name in self.shapes:
            del model._parameters[name]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        values = torch.as_strided(self.one, (self.total,), (1,))
        model, start = self.outer[0], 0
        for name, shape in self.shapes.items():
            n = int(torch.Size(shape).numel())
            setattr(model, name, values[start : start + n].view(shape))
            start += n
        return model(tokens)


def build_model() -> nn.Module:
    return Hidden(repaired())
