"""Benchmark corpora: named, versioned sets of real network layers for ``convcheck bench``.

One JSON file per network (``course_toy``, ``course_two_conv``, ``lenet5``,
``alexnet``, ``vgg16``, ``resnet50``) plus ``sweep``, a synthetic set that
scales one dimension at a time for scaling curves. ``--corpus NAME`` picks a
shipped file by name; ``--corpus PATH.json`` reads a user's file in the same
format. ``corpus.schema.json`` is the JSON Schema the loader
(``convcheck.bench.corpus``) validates against; a malformed file is rejected
with a message naming the file, the entry and the field.

Format, version 1::

    {
      "format": "convcheck-corpus",     # fixed
      "version": 1,                     # format version
      "name": "resnet50",               # what --corpus takes: [A-Za-z0-9_.-]+
      "title": "ResNet-50",             # optional
      "description": "...",             # what the corpus is, and what it leaves out
      "source": "He et al., CVPR 2016, Table 1",   # where the shapes come from
      "network": "...",                 # optional: the spec/networks.py network whose conv and pool
                                        #   layers are the first entries (checked by the meta-tests)
      "entries": [
        {
          "id": "conv2.b",              # unique in the file
          "op": "conv2d",               # conv2d | max_pool2d | avg_pool2d
          "input": [64, 56, 56],        # (C, H, W); the batch is separate
          "batch": 8,                   # default batch; --batch N overrides it
          "count": 3,                   # optional: layers of the network with this shape (default 1)
          "source": "Table 1, conv2_x, 3x3, 64",       # where this layer comes from
          # every hyper-parameter in the contract's form:
          "kernel_size": [3, 3],        # (KH, KW)
          "stride": [1, 1],             # (h, w)
          "padding": [1, 1, 1, 1],      # (top, bottom, left, right)
          # conv2d:     out_channels, kernel_size, stride, padding, dilation, groups, bias
          # max_pool2d: kernel_size, stride, padding, dilation, ceil_mode
          # avg_pool2d: kernel_size, stride, padding, ceil_mode, count_include_pad
          "out_channels": 64, "dilation": [1, 1], "groups": 1, "bias": false,
          "series": {"name": "conv spatial", "dimension": "spatial", "value": 32},  # optional
          "note": "..."                 # optional free text
        }
      ]
    }

Every hyper-parameter of the entry's operation must be present (no defaults,
so a file says exactly what it measures) and no other operation's may be.
``series`` puts an entry on a scaling curve: entries sharing a ``name`` form
one curve of the scaling plot, ``dimension`` is the one that varies
(``spatial``, ``channels``, ``batch`` or ``kernel``) and ``value`` its value.
An entry on a ``batch`` curve keeps its own batch under ``--batch``; every
other entry takes the overriding batch.
"""

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
"""Where the shipped corpus files and the schema lie."""

SCHEMA_PATH = DIRECTORY / "corpus.schema.json"
"""The JSON Schema of the format above."""

__all__ = ["DIRECTORY", "SCHEMA_PATH"]
