"""The course networks are defined once: a benchmark corpus that names a network
(``"network"`` in ``corpus/*.json``) times exactly that network's convolution and
pooling layers, as ``spec/networks.py`` builds them, in order and with the same shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from convcheck.spec.networks import NETWORKS, Layer, Network, Shape

CORPORA = Path(__file__).resolve().parent.parent / "corpus"
NAMED = {
    p.stem: json.loads(p.read_text()) for p in sorted(CORPORA.glob("*.json")) if p.stem != "corpus.schema"
}


def entry_fields(layer: Layer, shape: Shape) -> dict[str, Any]:
    """The corpus entry fields (besides id, batch, count and source) that time ``layer`` on an
    input of one-sample shape ``shape``: the corpus format of ``corpus/__init__.py``."""
    fields: dict[str, Any] = {"op": layer.op, "input": list(shape)}
    if "w" in layer.weights:
        w = layer.weights["w"]
        fields.update(out_channels=w[0], kernel_size=list(w[2:]), bias="b" in layer.weights)
    for name, value in layer.params.kwargs().items():
        fields[name] = list(value) if isinstance(value, tuple) else value
    return fields


def mismatches(net: Network, corpus: dict[str, Any]) -> list[str]:
    """How the corpus's first entries differ from the network's window layers (nothing: equal)."""
    layers = net.window_layers()
    entries = corpus["entries"]
    problems = [f"{len(entries)} entries for {len(layers)} layers"] if len(entries) < len(layers) else []
    for (layer, shape), entry in zip(layers, entries, strict=False):
        want = entry_fields(layer, shape)
        got = {k: v for k, v in entry.items() if k not in ("id", "batch", "count", "source")}
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                problems.append(
                    f"{entry['id']} ({layer.label}): {key} is {got.get(key)!r}, the network has {want.get(key)!r}"
                )
    return problems


def test_the_course_corpora_name_their_network():
    named = {name: c.get("network") for name, c in NAMED.items()}
    assert named["course_toy"] == "toy_cnn" and named["course_two_conv"] == "two_conv"
    assert named["lenet5"] == "lenet5"
    assert set(filter(None, named.values())) <= set(NETWORKS)


@pytest.mark.parametrize("name", [n for n, c in NAMED.items() if "network" in c])
def test_a_corpus_times_the_network_it_names(name):
    corpus = NAMED[name]
    assert not mismatches(NETWORKS[corpus["network"]], corpus), "\n".join(
        mismatches(NETWORKS[corpus["network"]], corpus)
    )


def test_a_drifted_corpus_is_told_apart():
    drifted = json.loads(json.dumps(NAMED["course_two_conv"]))
    drifted["entries"][2]["kernel_size"] = [5, 5]
    drifted["entries"][3]["input"] = [12, 8, 8]
    problems = mismatches(NETWORKS["two_conv"], drifted)
    assert problems == [
        "conv2 (conv2): kernel_size is [5, 5], the network has [3, 3]",
        "pool2 (pool2): input is [12, 8, 8], the network has [8, 5, 5]",
    ]
