"""The family tree of a run's front as an SVG: networkx lays it out, matplotlib draws it.

Nodes are the front's members and every ancestor (both parents of a crossover), one column per
depth (seeds on the left); front members are red, the best candidate has a thick outline, and a node
whose program the report includes links to it. The SVG keeps text as text, so ids are searchable.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable
from typing import Any

from evolve.archive import Candidate

MAX_NODES = 400  # beyond this, first parents only (a readable picture over a complete one)
UNAVAILABLE = "the lineage graph needs networkx (pip install networkx)"


class LineageUnavailable(RuntimeError):
    """The graph library is missing; the report says so instead of drawing."""


def lineage_svg(candidates: Iterable[Candidate], front: set[int], best: int | None,
                link: dict[int, str]) -> str:
    """The ``<svg>`` element of the front's lineage; ``link`` maps ids to URLs."""
    try:
        import networkx as nx
    except ImportError:
        warnings.warn(UNAVAILABLE, RuntimeWarning, stacklevel=2)
        raise LineageUnavailable(UNAVAILABLE) from None
    by_id = {c.id: c for c in candidates}
    graph = nx.DiGraph()
    for edge_parents in (_all_parents, _first_parent):
        graph.clear()
        stack = [i for i in sorted(front | ({best} if best is not None else set())) if i in by_id]
        while stack:
            i = stack.pop()
            graph.add_node(i)
            for p in edge_parents(by_id[i]):
                if p in by_id:
                    if p not in graph:
                        stack.append(p)
                    graph.add_edge(p, i)
        if len(graph) <= MAX_NODES:
            break
    for i in nx.topological_sort(graph):
        graph.nodes[i]["layer"] = max((graph.nodes[p]["layer"] + 1 for p in graph.predecessors(i)),
                                      default=0)
    return _draw(nx, graph, front, best, link)


def _draw(nx: Any, graph: Any, front: set[int], best: int | None, link: dict[int, str]) -> str:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    layers: dict[int, int] = {}
    for _, layer in graph.nodes(data="layer"):
        layers[layer] = layers.get(layer, 0) + 1
    position = nx.multipartite_layout(graph, subset_key="layer", align="vertical")  # seeds left
    nodes = sorted(graph)
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "evolve"}):
        fig = Figure(figsize=(max(3.0, 0.6 * len(layers) + 0.6), max(1.2, 0.55 * max(layers.values()) + 0.4)))
        FigureCanvasSVG(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        nx.draw_networkx_edges(graph, position, ax=ax, edge_color="0.55", arrows=True, arrowsize=8,
                               node_size=420)
        drawn = nx.draw_networkx_nodes(
            graph, position, nodelist=nodes, ax=ax, node_size=420,
            node_color=["#d62728" if i in front else "#dddddd" for i in nodes],
            edgecolors=["black" if i == best else "0.4" for i in nodes],
            linewidths=[2.5 if i == best else 0.6 for i in nodes])
        drawn.set_urls([link.get(i) for i in nodes])
        nx.draw_networkx_labels(graph, position, labels={i: f"#{i}" for i in nodes}, ax=ax, font_size=7,
                                font_color="black")
        ax.margins(0.08)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    text = re.sub(r"^.*?(?=<svg)", "", text, flags=re.S)  # drop the XML prolog and doctype
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _all_parents(c: Candidate) -> tuple[int, ...]:
    return c.parents


def _first_parent(c: Candidate) -> tuple[int, ...]:
    return c.parents[:1]
