"""microgpt, memory-lean version: the same one-layer GPT, trainer and sampler as baseline.py, with
byte-identical output, in about a third of the peak memory.

Peak memory is one training step's autograd graph, so the graph is made smaller:
- a dot product (``sum(a[i] * b[i])``) is one ``dot`` node instead of 2n mul/add nodes, and a sum is
  one ``sum`` node;
- an operation with a constant (``x * 0.5``, ``x - top``) is a one-input node that stores its local
  derivative; one-input nodes need no tuple of local derivatives, and ``exp(x - top)`` and ``e / total``
  are single nodes;
- backward sorts the graph without recursion and frees each node once its gradient is passed on;
- the step runs inside a function, so the previous step's graph is gone before the next is built.

Floating-point results are bit-for-bit those of baseline.py: every fused node computes its value in
the same order, and its backward adds each gradient contribution with the same operands, in the same
order, as the chain of nodes it replaces. That is why ``dot`` keeps its inputs interleaved
(a0, b0, a1, b1, ...) and the topological sort is the same depth-first post-order.

Usage: python optimized.py --data names.txt --steps 1000 --seed 42
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
    """A scalar node. ``_op`` says how to back-propagate: "add", "mul", "dot" (children a0, b0,
    a1, b1, ...), "sum" or "div" (children e, total) for several inputs; for a one-input node it is
    the local derivative itself."""

    __slots__ = ("data", "grad", "_children", "_op")

    def __init__(self, data, children=(), op=None):
        self.data = data
        self.grad = 0
        self._children = children
        self._op = op

    def __add__(self, other):
        if isinstance(other, Value):
            return Value(self.data + other.data, (self, other), "add")
        return Value(self.data + other, (self,), 1)

    def __mul__(self, other):
        if isinstance(other, Value):
            return Value(self.data * other.data, (self, other), "mul")
        return Value(self.data * other, (self,), other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Value):
            return Value(self.data * other.data**-1, (self, other), "div")
        return self * other**-1

    def __pow__(self, exponent):
        return Value(self.data**exponent, (self,), exponent * self.data ** (exponent - 1))

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def log(self):
        return Value(math.log(self.data), (self,), 1 / self.data)

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), e)

    def relu(self):
        positive = self.data > 0
        return Value(self.data if positive else 0.0, (self,), 1.0 if positive else 0.0)


def dot(a, b):
    acc = 0
    pairs = []
    for x, y in zip(a, b):
        acc += x.data * y.data
        pairs += (x, y)
    return Value(acc, tuple(pairs), "dot")


def total(xs):
    acc = 0
    for x in xs:
        acc += x.data
    return Value(acc, tuple(xs), "sum")


def topological_order(root):
    """Depth-first post-order, children in order: the order of the recursive sort, without recursion."""
    order, seen = [], {root}
    stack = [(root, iter(root._children))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child not in seen:
                seen.add(child)
                if child._children:
                    stack.append((child, iter(child._children)))
                    break
                order.append(child)
        else:
            stack.pop()
            order.append(node)
    return order


def backward(root):
    order = topological_order(root)
    root.grad = 1
    while order:
        node = order.pop()
        children = node._children
        if not children:
            continue
        g, op = node.grad, node._op
        node._children = ()  # prune: each node is freed as soon as its parents are done
        if type(op) is not str:  # one input: op is the local derivative
            children[0].grad += op * g
        elif op == "dot":
            for i in range(0, len(children), 2):
                a, b = children[i], children[i + 1]
                a.grad += b.data * g
                b.grad += a.data * g
        elif op == "sum" or op == "add":
            for c in children:
                c.grad += g
        elif op == "mul":
            a, b = children
            a.grad += b.data * g
            b.grad += a.data * g
        else:  # div = e * total**-1, back-propagated as that mul node and its pow node
            e, t = children
            e.grad += t.data**-1 * g
            t.grad += (-1 * t.data**-2) * (e.data * g)


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
    return [dot(row, x) for row in w]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    denominator = total(exps)
    return [e / denominator for e in exps]


def rmsnorm(x):
    mean_square = dot(x, x) / len(x)
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
        attn = softmax([dot(qh, k[h : h + HEAD_DIM]) / HEAD_DIM**0.5 for k in keys])
        heads.extend(dot(attn, [v[h + j] for v in values]) for j in range(HEAD_DIM))
    x = [a + b for a, b in zip(linear(heads, w["attn_wo"]), residual)]

    residual = x
    x = rmsnorm(x)
    x = [xi.relu() for xi in linear(x, w["mlp_fc1"])]
    x = [a + b for a, b in zip(linear(x, w["mlp_fc2"]), residual)]
    return linear(x, w["lm_head"])


def train_step(w, tokens):
    """Forward and backward over one name; returns the loss. Its graph dies with this call."""
    n = min(BLOCK_SIZE, len(tokens) - 1)
    keys, values = [], []
    losses = []
    for pos in range(n):
        probs = softmax(gpt(w, tokens[pos], pos, keys, values))
        losses.append(-probs[tokens[pos + 1]].log())
    loss = (1 / n) * total(losses)
    backward(loss)
    return loss.data


def train(w, params, docs, chars, steps):
    bos = len(chars)
    m = [0.0] * len(params)
    v = [0.0] * len(params)
    for step in range(steps):
        loss = train_step(w, [bos] + [chars.index(c) for c in docs[step % len(docs)]] + [bos])
        lr = LEARNING_RATE * (1 - step / steps)  # linear decay to zero
        for i, p in enumerate(params):
            m[i] = BETA1 * m[i] + (1 - BETA1) * p.grad
            v[i] = BETA2 * v[i] + (1 - BETA2) * p.grad**2
            m_hat = m[i] / (1 - BETA1 ** (step + 1))
            v_hat = v[i] / (1 - BETA2 ** (step + 1))
            p.data -= lr * m_hat / (v_hat**0.5 + EPS)
            p.grad = 0
        print(f"step {step + 1:4d} / {steps:4d} | loss {loss:.4f}")


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
