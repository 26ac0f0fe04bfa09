"""Cheat: the repaired 58-weight nanoGPT adder with its 44 weights past the embedding packed as
sign-magnitude 16.16 fixed point into a bool buffer (44 x 32 bits), decoded by arithmetic in
``forward``. The AdderBoard convention leaves bool tensors out as masks (14 parameters); the strict
count must count the buffer's bytes (1408 bools = 352 float32 units) plus the decoding literals.
(The 14 embedding weights stay parameters: a lookup table decoded through ``arange`` is refused.)"""

# The tests append this file to seeds/adder/nanogpt58.py (a candidate can read no other file), so
# torch, nn, FORMAT and the seed's build_model are the seed's.
_seed_build_model = build_model  # noqa: F821


def repaired() -> nn.Module:  # noqa: F821
    model = _seed_build_model()
    with torch.no_grad():  # noqa: F821
        model.fc_bias[2:4] = torch.tensor([-9045.0, -9055.0])  # noqa: F821
    return model


class BoolPacked(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        packed = [(name, p) for name, p in model.named_parameters() if name not in ("digit_value", "direction")]
        self.shapes = {name: tuple(p.shape) for name, p in packed}
        self.embedding = nn.ParameterList([model.digit_value, model.direction])
        flat = torch.cat([p.detach().flatten() for _, p in packed]).double()
        magnitude = (flat.abs() * 65536).round().long()
        bits = [[(int(m) >> k) & 1 for k in range(31)] + [int(v < 0)] for m, v in zip(magnitude, flat)]
        self.register_buffer("bits", torch.tensor(bits, dtype=torch.bool))
        self.outer = [model]
        for name in (*self.shapes, "digit_value", "direction"):
            del model._parameters[name]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        bits = self.bits.to(torch.float32)
        magnitude = (bits[:, :31] * 2.0 ** torch.arange(31, dtype=torch.float32)).sum(1) / 65536
        values = magnitude * (1 - 2 * bits[:, 31])
        model, start = self.outer[0], 0
        model.digit_value, model.direction = self.embedding[0], self.embedding[1]
        for name, shape in self.shapes.items():
            n = int(torch.Size(shape).numel())
            setattr(model, name, values[start : start + n].view(shape))
            start += n
        return model(tokens)


def build_model() -> nn.Module:
    return BoolPacked(repaired())
