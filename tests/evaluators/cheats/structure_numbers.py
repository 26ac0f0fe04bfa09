"""Cheat: the repaired 58-weight nanoGPT adder (100 %) whose four MLP thresholds (-50, -150, -9045,
-9055) are not stored but built in ``forward`` from structure, with no literal that says them:

- ``"doubling"``: ``one = ones(1)``, then ``one + one``, ... summed along the binary expansion;
- ``"w_over_w"``: ``one = q_scale / q_scale`` from a stored weight, then the same doubling;
- ``"cat"``: ``cat([ones(1)] * n).sum()`` (in blocks of 100);
- ``"new_ones"``: ``x.new_ones(n).sum()`` on an activation;
- ``"eye"``: ``one = eye(1)``, then doubling (``eye(n).sum()`` would allocate n * n);
- ``"shape"``: ``tokens.shape[1]`` used as a value (``T / T`` is one), then doubling;
- ``"arange_index"``: ``arange(T)[1]`` (an index is structure) is one, then doubling;
- ``"ones_sum"``: ``ones(n).sum()``.

Each number depends on neither the tokens nor the stored values, so the checker's constant folding
(rule ``folded-constant``) must count the thresholds as the 4 numbers the model reads."""

# The tests append this file to seeds/adder/nanogpt58.py, so torch, nn and build_model are the seed's.
_seed_build_model = build_model  # noqa: F821
HOW = "doubling"
THRESHOLDS = (50, 150, 9045, 9055)


def doubled(one: torch.Tensor, n: int) -> torch.Tensor:  # noqa: F821
    """``n`` from ``one`` by additions alone: no literal in the graph says ``n``."""
    total, power = None, one
    while n:
        if n & 1:
            total = power if total is None else total + power
        power, n = power + power, n >> 1
    return total


def threshold(n: int, tokens: torch.Tensor, x: torch.Tensor, model: nn.Module) -> torch.Tensor:  # noqa: F821
    if HOW == "doubling":
        return doubled(torch.ones(1), n)  # noqa: F821
    if HOW == "w_over_w":
        return doubled(model.q_scale / model.q_scale, n)
    if HOW == "cat":  # the loader refuses lists past 4096 entries: blocks of 100 ones
        one = torch.ones(1)  # noqa: F821
        return torch.cat([torch.cat([one] * 100)] * (n // 100) + [one] * (n % 100)).sum(0, keepdim=True)  # noqa: F821
    if HOW == "new_ones":
        return x.new_ones(n).sum(0, keepdim=True)
    if HOW == "eye":
        return doubled(torch.eye(1).view(1), n)  # noqa: F821
    if HOW == "shape":
        t = tokens.shape[1]
        return doubled(torch.ones(1) * t / t, n)  # noqa: F821
    if HOW == "arange_index":
        return doubled(torch.arange(tokens.shape[1], dtype=torch.float32)[1:2], n)  # noqa: F821
    return torch.ones(n).sum(0, keepdim=True)  # noqa: F821


class FromStructure(nn.Module):  # noqa: F821
    def __init__(self, model: nn.Module) -> None:  # noqa: F821
        super().__init__()
        self.outer = [model]  # not a submodule: the seed's fc_bias is not exported
        del model._parameters["fc_bias"]
        self.rest = nn.ParameterList([p for p in model.parameters()])  # noqa: F821

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # noqa: F821
        model = self.outer[0]
        x = model.digit_value[:1]
        model.fc_bias = -torch.cat([threshold(n, tokens, x, model) for n in THRESHOLDS])  # noqa: F821
        return model(tokens)


def build_model() -> nn.Module:  # noqa: F821
    return FromStructure(_seed_build_model())
