"""microgpt, plain version: a one-layer GPT trained on names with a scalar autograd engine.

Everything is pure Python and dependency-free. Every number in the model is a ``Value`` node that
remembers its inputs and local derivatives; one training step builds the whole graph for one name,
back-propagates through it, and applies Adam. Afterwards the model samples new names.

Usage: python baseline.py --data names.txt --steps 1000 --seed 42
"""

import math
import random
import sys

N_EMBD = 16  # model width
N_HEAD = 4  # attention heads
HEAD_DIM = N_EMBD // N_HEAD
BLOCK_SIZE = 16  # longest context the model sees (the longest name has 15 letters)
INIT_STD = 0.08
LEARNING_RATE, BETA1, BETA2, EPS = 0.01, 0.85, 0.99, 1e-8
TEMPERATURE = 0.5  # sampling temperature: below 1 favours likely letters
NUM_SAMPLES = 20


def parse_args(argv):
    """``--data PATH --steps N --seed S`` (argparse would cost ~0.5 MiB of peak RSS)."""
    opts = {"data": "names.txt", "steps": "1000", "seed": "42"}
    args = list(argv)
    while args:
        flag = args.pop(0)
        name, eq, value = flag.partition("=")
        if not name.startswith("--") or name[2:] not in opts or not (eq or args):
            sys.exit(f"usage: {sys.argv[0]} [--data PATH] [--steps N] [--seed S] (bad argument {flag!r})")
        opts[name[2:]] = value if eq else args.pop(0)
    return opts["data"], int(opts["steps"]), int(opts["seed"])


class Value:
    """A scalar node of the computation graph: its value, its gradient, its inputs and the local
    derivative of this node with respect to each input (so backward needs no per-op code)."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, exponent):
        return Value(self.data**exponent, (self,), (exponent * self.data ** (exponent - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def relu(self):
        positive = self.data > 0
        return Value(self.data if positive else 0.0, (self,), (1.0 if positive else 0.0,))

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def __rtruediv__(self, other):
        return other * self**-1

    def backward(self):
        """Chain rule over the graph, each node after everything that consumes it."""
        order, seen = [], set()

        def visit(node):
            if node not in seen:
                seen.add(node)
                for child in node._children:
                    visit(child)
                order.append(node)

        visit(self)
        self.grad = 1
        for node in reversed(order):
            for child, local in zip(node._children, node._local_grads):
                child.grad += local * node.grad


def matrix(rows, cols):
    return [[Value(random.gauss(0, INIT_STD)) for _ in range(cols)] for _ in range(rows)]


def init_params(vocab_size):
    """Weights in a fixed order: the order fixes which random draws each matrix gets."""
    weights = {
        "wte": matrix(vocab_size, N_EMBD),
        "wpe": matrix(BLOCK_SIZE, N_EMBD),
        "lm_head": matrix(vocab_size, N_EMBD),
        "attn_wq": matrix(N_EMBD, N_EMBD),
        "attn_wk": matrix(N_EMBD, N_EMBD),
        "attn_wv": matrix(N_EMBD, N_EMBD),
        "attn_wo": matrix(N_EMBD, N_EMBD),
        "mlp_fc1": matrix(4 * N_EMBD, N_EMBD),
        "mlp_fc2": matrix(N_EMBD, 4 * N_EMBD),
    }
    return weights, [p for mat in weights.values() for row in mat for p in row]


def linear(x, w):
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    mean_square = sum(xi * xi for xi in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def gpt(w, token, pos, keys, values):
    """Logits for the token after ``token`` at ``pos``; appends this position's key and value."""
    x = [t + p for t, p in zip(w["wte"][token], w["wpe"][pos])]
    x = rmsnorm(x)

    residual = x
    x = rmsnorm(x)
    q = linear(x, w["attn_wq"])
    keys.append(linear(x, w["attn_wk"]))
    values.append(linear(x, w["attn_wv"]))
    heads = []
    for h in range(0, N_EMBD, HEAD_DIM):
        qh = q[h : h + HEAD_DIM]
        scores = [sum(qh[j] * k[h + j] for j in range(HEAD_DIM)) / HEAD_DIM**0.5 for k in keys]
        attn = softmax(scores)
        heads.extend(sum(attn[t] * values[t][h + j] for t in range(len(values))) for j in range(HEAD_DIM))
    x = [a + b for a, b in zip(linear(heads, w["attn_wo"]), residual)]

    residual = x
    x = rmsnorm(x)
    x = [xi.relu() for xi in linear(x, w["mlp_fc1"])]
    x = [a + b for a, b in zip(linear(x, w["mlp_fc2"]), residual)]
    return linear(x, w["lm_head"])


def train(w, params, docs, chars, steps):
    bos = len(chars)
    m = [0.0] * len(params)
    v = [0.0] * len(params)
    for step in range(steps):
        tokens = [bos] + [chars.index(c) for c in docs[step % len(docs)]] + [bos]
        n = min(BLOCK_SIZE, len(tokens) - 1)
        keys, values = [], []
        losses = []
        for pos in range(n):
            probs = softmax(gpt(w, tokens[pos], pos, keys, values))
            losses.append(-probs[tokens[pos + 1]].log())
        loss = (1 / n) * sum(losses)
        loss.backward()

        lr = LEARNING_RATE * (1 - step / steps)  # linear decay to zero
        for i, p in enumerate(params):
            m[i] = BETA1 * m[i] + (1 - BETA1) * p.grad
            v[i] = BETA2 * v[i] + (1 - BETA2) * p.grad**2
            m_hat = m[i] / (1 - BETA1 ** (step + 1))
            v_hat = v[i] / (1 - BETA2 ** (step + 1))
            p.data -= lr * m_hat / (v_hat**0.5 + EPS)
            p.grad = 0
        print(f"step {step + 1:4d} / {steps:4d} | loss {loss.data:.4f}")


def sample(w, chars):
    bos = len(chars)
    tokens = range(bos + 1)
    print("\n--- inference (new, hallucinated names) ---")
    for i in range(NUM_SAMPLES):
        keys, values = [], []
        token, name = bos, []
        for pos in range(BLOCK_SIZE):
            probs = softmax([logit / TEMPERATURE for logit in gpt(w, token, pos, keys, values)])
            token = random.choices(tokens, weights=[p.data for p in probs])[0]
            if token == bos:
                break
            name.append(chars[token])
        print(f"sample {i + 1:2d}: {''.join(name)}")


def main():
    path, steps, seed = parse_args(sys.argv[1:])
    random.seed(seed)
    with open(path) as f:
        docs = [line.strip() for line in f if line.strip()]
    random.shuffle(docs)
    print(f"num docs: {len(docs)}")
    chars = sorted(set("".join(docs)))  # token ids 0..n-1; id n is BOS, the name delimiter
    print(f"vocab size: {len(chars) + 1}")
    w, params = init_params(len(chars) + 1)
    print(f"num params: {len(params)}")
    train(w, params, docs, chars, steps)
    sample(w, chars)


if __name__ == "__main__":
    main()
