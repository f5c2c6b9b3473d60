"""Meta-tests of the benchmark corpora: the shipped files, and the loader's messages for bad ones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from convcheck.bench import corpus
from convcheck.corpus import DIRECTORY, SCHEMA_PATH

NETWORKS = ("course_toy", "course_two_conv", "lenet5", "alexnet", "vgg16", "resnet50", "sweep")


def _doc(name: str) -> dict[str, Any]:
    return json.loads((DIRECTORY / f"{name}.json").read_text())


# --------------------------------------------------------------------------- shipped corpora


def test_every_network_is_shipped() -> None:
    assert set(NETWORKS) <= set(corpus.shipped())


@pytest.mark.parametrize("name", NETWORKS)
def test_shipped_corpus_is_valid(name: str) -> None:
    """Each file follows the schema, loads, is named after its file and says where every shape comes from."""
    doc = _doc(name)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    c = corpus.load(name)
    assert c.name == name and c.version == corpus.VERSION
    assert c.source and c.description
    assert all(e.source for e in c.entries)
    assert len({e.id for e in c.entries}) == len(c.entries)


def _out_hw(c: corpus.Corpus, entry_id: str) -> tuple[int, int]:
    e = next(e for e in c.entries if e.id == entry_id)
    _, _, h, w = e.output_shape(e.batch)
    return h, w


def test_network_shapes_chain_as_published() -> None:
    """The shapes reproduce the published layer sizes (each source's table)."""
    toy = corpus.load("course_toy")
    conv = toy.entries[0]
    assert conv.shapes(1)["w"] == (1, 1, 3, 3) and conv.bias  # 9 weights + 1 bias of the 15 parameters
    assert _out_hw(toy, "pool") == (2, 2)  # 4 features into the 4 -> 1 dense layer
    assert _out_hw(corpus.load("lenet5"), "C1") == (28, 28)
    assert _out_hw(corpus.load("lenet5"), "C5") == (1, 1)
    alexnet = corpus.load("alexnet")
    assert _out_hw(alexnet, "conv1") == (55, 55) and _out_hw(alexnet, "pool5") == (6, 6)
    vgg = corpus.load("vgg16")
    assert sum(e.count for e in vgg.entries if e.op == "conv2d") == 13
    assert _out_hw(vgg, "pool5") == (7, 7)
    resnet = corpus.load("resnet50")
    assert sum(e.count for e in resnet.entries if e.op == "conv2d") == 53
    assert _out_hw(resnet, "conv1") == (112, 112) and _out_hw(resnet, "pool1") == (56, 56)
    assert _out_hw(resnet, "conv5.c") == (7, 7) and _out_hw(resnet, "avgpool") == (1, 1)


def test_sweep_varies_one_dimension_per_series() -> None:
    sweep = corpus.load("sweep")
    series: dict[str, set[str]] = {}
    for e in sweep.entries:
        assert e.series is not None
        series.setdefault(e.series.name, set()).add(e.series.dimension)
    assert all(len(dims) == 1 for dims in series.values())
    assert {d for dims in series.values() for d in dims} == {"spatial", "channels", "batch", "kernel"}


def test_batch_override_spares_the_batch_series() -> None:
    sweep = corpus.load("sweep")
    on_batch = next(e for e in sweep.entries if e.series and e.series.dimension == "batch" and e.batch == 16)
    other = next(e for e in sweep.entries if e.series and e.series.dimension == "spatial")
    assert on_batch.batch_for(2) == 16
    assert other.batch_for(2) == 2 and other.batch_for(None) == other.batch


def test_user_corpus_file_loads_by_path(tmp_path: Path) -> None:
    doc = _doc("course_toy")
    doc["name"] = "mine"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    c = corpus.load(str(path))
    assert c.name == "mine" and c.path == str(path) and c.entries[0].key == "mine/conv"


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(_doc("course_toy")))
    with pytest.raises(corpus.CorpusError, match=r"name 'course_toy' is already used by .*course_toy.json"):
        corpus.load_many(["course_toy", str(path)])


# --------------------------------------------------------------------------- bad files

Mutation = Callable[[dict[str, Any]], Any]

BAD: list[tuple[str, Mutation, str]] = [
    (
        "stride-too-short",
        lambda d: d["entries"][0].update(stride=[2]),
        "entry 'conv' (entries[0]), field 'stride': got [2]; expected (h, w): two integers >= 1",
    ),
    (
        "stride-zero",
        lambda d: d["entries"][0].update(stride=[2, 0]),
        "entry 'conv' (entries[0]), field 'stride': got [2, 0]; expected (h, w): two integers >= 1",
    ),
    (
        "padding-two-values",
        lambda d: d["entries"][1].update(padding=[1, 1]),
        "entry 'pool' (entries[1]), field 'padding': got [1, 1]; "
        "expected (top, bottom, left, right): four integers >= 0",
    ),
    (
        "missing-groups",
        lambda d: d["entries"][0].pop("groups"),
        "entry 'conv' (entries[0]), field 'groups' is missing; conv2d entries give id, op, input, batch, "
        "source, out_channels, kernel_size, stride, padding, dilation, groups, bias",
    ),
    (
        "missing-id",
        lambda d: d["entries"][1].pop("id"),
        "entries[1], field 'id' is missing; max_pool2d entries give id, op, input, batch, source, "
        "kernel_size, stride, padding, dilation, ceil_mode",
    ),
    (
        "typo-field",
        lambda d: d["entries"][0].update(strides=[1, 1]),
        "entry 'conv' (entries[0]), field 'strides' is not a corpus field; the known fields here are batch, "
        "bias, ceil_mode, count, count_include_pad, dilation, groups, id, input, kernel_size, note, op, "
        "out_channels, padding, series, source, stride",
    ),
    (
        "other-ops-field",
        lambda d: d["entries"][0].update(ceil_mode=True),
        "entry 'conv' (entries[0]), field 'ceil_mode' does not apply to conv2d; its hyper-parameters are "
        "out_channels, kernel_size, stride, padding, dilation, groups, bias",
    ),
    (
        "unknown-op",
        lambda d: d["entries"][0].update(op="conv3d"),
        "entry 'conv' (entries[0]), field 'op': got \"conv3d\"; expected one of conv2d, max_pool2d, avg_pool2d",
    ),
    (
        "batch-as-string",
        lambda d: d["entries"][0].update(batch="8"),
        "entry 'conv' (entries[0]), field 'batch': got \"8\"; expected the default batch size: an integer >= 1",
    ),
    (
        "future-version",
        lambda d: d.update(version=2),
        "field 'version': got 2; expected format version 1 (the only version so far)",
    ),
    ("no-source", lambda d: d.pop("source"), "field 'source' is missing"),
    (
        "no-entries",
        lambda d: d.update(entries=[]),
        "field 'entries': got []; expected a non-empty list of entries",
    ),
    (
        "duplicate-id",
        lambda d: d["entries"][1].update(id="conv"),
        "entry 'conv' (entries[1]), field 'id': 'conv' is already used by entries[0]; ids must be unique",
    ),
    (
        "kernel-larger-than-input",
        lambda d: d["entries"][0].update(kernel_size=[7, 7]),
        "entry 'conv' (entries[0]): not a valid conv2d configuration: dilated kernel 7 = dilation*(k-1)+1 "
        "with k=7, dilation=1 is longer than the padded H = 6+0+0",
    ),
    (
        "series-disagrees",
        lambda d: d["entries"][0].update(series={"name": "s", "dimension": "batch", "value": 3}),
        "entry 'conv' (entries[0]), field 'series.value': got 3 on a 'batch' curve, but the entry's batch is 1",
    ),
    (
        "series-unknown-dimension",
        lambda d: d["entries"][0].update(series={"name": "s", "dimension": "time", "value": 3}),
        "entry 'conv' (entries[0]), field 'series.dimension': got \"time\"; "
        "expected the scaled dimension: one of spatial, channels, batch, kernel",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_corpus_message(tmp_path: Path, mutate: Mutation, message: str) -> None:
    """A malformed file is refused with a message naming the file, the entry and the field."""
    doc = copy.deepcopy(_doc("course_toy"))
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load(str(path))
    assert str(info.value) == f"{path}: {message}"


def test_several_problems_are_listed_together(tmp_path: Path) -> None:
    doc = _doc("course_toy")
    doc["entries"][0]["batch"] = 0
    doc["entries"][1]["padding"] = [1, 1]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load(str(path))
    assert str(info.value) == (
        f"{path}: 2 problems:\n"
        "  - entry 'conv' (entries[0]), field 'batch': got 0; expected the default batch size: an integer >= 1\n"
        "  - entry 'pool' (entries[1]), field 'padding': got [1, 1]; "
        "expected (top, bottom, left, right): four integers >= 0"
    )


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "convcheck-corpus",\n  "version": 1,,\n}')
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load(str(path))
    assert (
        str(info.value)
        == f"{path}: not valid JSON: Expecting property name enclosed in double quotes at line 2, column 16"
    )


def test_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load(str(path))
    assert str(info.value) == (
        f"{path}: the file holds a JSON array, but a corpus is a JSON object with the fields "
        "format, version, name, description, source and entries"
    )


def test_unknown_corpus_name() -> None:
    with pytest.raises(corpus.CorpusError) as info:
        corpus.load("googlenet")
    assert str(info.value) == (
        f"no corpus 'googlenet': not a shipped corpus ({', '.join(corpus.shipped())}) and not an existing "
        "file; give a shipped name or the path of a .json corpus file"
    )
