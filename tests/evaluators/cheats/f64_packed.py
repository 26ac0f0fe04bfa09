"""Cheat: the repaired 58-weight nanoGPT adder with its 58 float32 weights stored two per float64
element (29 stored values) and read back with ``view(torch.float32)``. Reinterpreting stored bytes
under another dtype is refused (``view.dtype`` is not on the allow-list)."""

# The tests append this file to seeds/adder/nanogpt58.py (a candidate can read no other file), so
# torch, nn, FORMAT and the seed's build_model are the seed's.
_seed_build_model = build_model  # noqa: F821


def repaired() -> nn.Module:  # noqa: F821
    model = _seed_build_model()
    with torch.no_grad():  # noqa: F821
        model.fc_bias[2:4] = torch.tensor([-9045.0, -9055.0])  # noqa: F821
    return model


class F64Packed(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        flat = torch.cat([p.detach().flatten() for p in model.parameters()]).float()
        self.packed = nn.Parameter(flat.view(torch.float64).clone())
        self.outer = [model]
        for name in self.shapes:
            del model._parameters[name]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        values = self.packed.view(torch.float32)
        model, start = self.outer[0], 0
        for name, shape in self.shapes.items():
            n = int(torch.Size(shape).numel())
            setattr(model, name, values[start : start + n].view(shape))
            start += n
        return model(tokens)


def build_model() -> nn.Module:
    return F64Packed(repaired())
