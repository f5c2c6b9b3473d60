"""The course networks are defined once: a benchmark corpus that names a network
(``"network"`` in ``corpus/*.json``) times exactly that network's convolution and
pooling layers, as ``spec/networks.py`` builds them, in order and with the same shapes.
Entries are read by the benchmark's own loader (``convcheck.bench.corpus``)."""

from __future__ import annotations

import json

import pytest

from convcheck.bench.corpus import Corpus, load, parse, resolve, shipped
from convcheck.spec.networks import NETWORKS, Network

CORPORA = {name: load(name) for name in shipped()}


def mismatches(net: Network, corpus: Corpus) -> list[str]:
    """How the corpus's first entries differ from the network's window layers (nothing: equal)."""
    layers = net.window_layers()
    entries = corpus.entries
    problems = [f"{len(entries)} entries for {len(layers)} layers"] if len(entries) < len(layers) else []
    for (layer, shape), entry in zip(layers, entries, strict=False):
        want = {"op": layer.op, "params": layer.params, "shapes": {"x": (1, *shape), **layer.weights}}
        got = {"op": entry.op, "params": entry.params, "shapes": entry.shapes(1)}
        if "b" in got["shapes"] and got["shapes"]["b"] is None:
            del got["shapes"]["b"]
        for key in want:
            if want[key] != got[key]:
                problems.append(
                    f"{entry.id} ({layer.label}): {key} is {got[key]}, the network has {want[key]}"
                )
    return problems


def test_the_course_corpora_name_their_network():
    named = {name: c.network for name, c in CORPORA.items()}
    assert named["course_toy"] == "toy_cnn" and named["course_two_conv"] == "two_conv"
    assert named["lenet5"] == "lenet5"
    assert set(filter(None, named.values())) <= set(NETWORKS)


@pytest.mark.parametrize("name", [n for n, c in CORPORA.items() if c.network])
def test_a_corpus_times_the_network_it_names(name):
    corpus = CORPORA[name]
    problems = mismatches(NETWORKS[str(corpus.network)], corpus)
    assert not problems, "\n".join(problems)


def test_a_drifted_corpus_is_told_apart():
    doc = json.loads(resolve("course_two_conv").read_text())
    doc["entries"][2]["kernel_size"] = [5, 5]
    doc["entries"][3]["input"] = [12, 8, 8]
    problems = mismatches(NETWORKS["two_conv"], parse(doc, "drifted"))
    assert [p.split(":")[0] for p in problems] == ["conv2 (conv2)", "pool2 (pool2)"]
    assert "(8, 4, 5, 5)" in problems[0] and "(8, 4, 3, 3)" in problems[0]
    assert "(1, 12, 8, 8)" in problems[1] and "(1, 8, 5, 5)" in problems[1]
