"""The course's networks, as data: layers, parameter shapes and the loss.

A network checker (``convcheck.networks``) assembles an implementation's layer
functions into these networks and compares the loss, every parameter gradient
and one SGD step with PyTorch autograd; the shapes below are checked by the
same spec rules as a single operation, so a network that does not fit its
input fails when it is built, not halfway through a run.

- ``toy_cnn``: the 15-parameter network of the handwritten notes (note 002):
  a 1x6x6 input, conv 3x3 with one filter and a bias (10), ReLU, 2x2 max pool,
  flatten (4), dense to one unit (5), sigmoid and binary cross-entropy.
- ``two_conv``: the network of the video lectures (note 004): two conv, two
  pool and two fully connected layers with three sigmoid layers, softmax
  cross-entropy over K = 5 classes, on a 3x16x16 RGB input.
- ``lenet5``: LeNet-5 (note 003) on 1x32x32: conv 5x5x6, pool, conv 5x5x16,
  pool, dense 120, dense 84, dense 10, with tanh and average pooling as in the
  original, softmax cross-entropy over 10 classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from .errors import UsageError
from .ops import OPERATIONS
from .params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, NoParams, Params

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One layer: a contract operation, its hyper-parameters and the shapes of its weights.

    ``weights`` maps the operation's parameter inputs (``w``, ``b``) to their
    shapes; ``label`` names the layer in reports (``conv1``, ``relu1``, ...).
    """

    label: str
    op: str
    params: Params = field(default_factory=NoParams)
    weights: dict[str, Shape] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    """A sequence of layers ending in a loss over ``classes`` outputs.

    ``input_shape`` is one sample's shape (``(C, H, W)``); ``loss`` is
    ``softmax_cross_entropy`` (integer labels) or ``sigmoid_binary_cross_entropy``
    (one logit, targets in ``{0, 1}``).
    """

    name: str
    title: str
    input_shape: Shape
    layers: tuple[Layer, ...]
    loss: str
    classes: int
    source: str

    def parameter_count(self) -> int:
        """Trainable parameters: every weight and bias element."""
        return sum(prod(shape) for layer in self.layers for shape in layer.weights.values())

    def activation_shapes(self, batch: int) -> list[Shape]:
        """The input's shape and every layer's output shape, checked with the spec's rules."""
        shapes = [(batch, *self.input_shape)]
        for layer in self.layers:
            op = OPERATIONS[layer.op]
            arrays: dict[str, Shape | None] = {"x": shapes[-1], **layer.weights}
            if "b" in op.inputs and "b" not in layer.weights:
                arrays["b"] = None
            op.check(arrays, layer.params)
            shapes.append(op.output_shape(arrays, layer.params))
        return shapes

    def labels(self) -> list[str]:
        return [layer.label for layer in self.layers]

    def window_layers(self) -> list[tuple[Layer, Shape]]:
        """The convolution and pooling layers, each with the one-sample input shape it receives:
        what a benchmark corpus of this network times (``corpus/*.json`` with ``"network"``)."""
        shapes = self.activation_shapes(batch=1)
        return [
            (layer, shapes[i][1:])
            for i, layer in enumerate(self.layers)
            if OPERATIONS[layer.op].family in ("conv", "max_pool", "avg_pool")
        ]


def _conv(label: str, c_in: int, c_out: int, k: int) -> Layer:
    return Layer(label, "conv2d", Conv2dParams(), {"w": (c_out, c_in, k, k), "b": (c_out,)})


def _dense(label: str, n_in: int, n_out: int) -> Layer:
    return Layer(label, "linear", NoParams(), {"w": (n_out, n_in), "b": (n_out,)})


def _pool(label: str, op: str) -> Layer:
    params = MaxPool2dParams() if op == "max_pool2d" else AvgPool2dParams()
    return Layer(label, op, params)


TOY_CNN = Network(
    name="toy_cnn",
    title="15-parameter toy CNN",
    input_shape=(1, 6, 6),
    layers=(
        _conv("conv1", 1, 1, 3),
        Layer("relu1", "relu"),
        _pool("pool1", "max_pool2d"),
        Layer("flatten", "flatten"),
        _dense("dense1", 4, 1),
    ),
    loss="sigmoid_binary_cross_entropy",
    classes=1,
    source="course note 002 (handwritten notes): conv 3x3, ReLU, max pool, flatten, dense 1x4, sigmoid, BCE",
)

TWO_CONV = Network(
    name="two_conv",
    title="two-conv, two-pool, two-dense sigmoid network, 5 classes",
    input_shape=(3, 16, 16),
    layers=(
        _conv("conv1", 3, 4, 3),
        Layer("sigmoid1", "sigmoid"),
        _pool("pool1", "max_pool2d"),
        _conv("conv2", 4, 8, 3),
        Layer("sigmoid2", "sigmoid"),
        _pool("pool2", "max_pool2d"),
        Layer("flatten", "flatten"),
        _dense("dense1", 32, 16),
        Layer("sigmoid3", "sigmoid"),
        _dense("dense2", 16, 5),
    ),
    loss="softmax_cross_entropy",
    classes=5,
    source="course note 004 (video lectures 12.2-12.5): 2 conv, 2 pool, 2 FC, 3 sigmoid layers, softmax, K=5",
)

LENET5 = Network(
    name="lenet5",
    title="LeNet-5 on 32x32x1",
    input_shape=(1, 32, 32),
    layers=(
        _conv("conv1", 1, 6, 5),
        Layer("tanh1", "tanh"),
        _pool("pool1", "avg_pool2d"),
        _conv("conv2", 6, 16, 5),
        Layer("tanh2", "tanh"),
        _pool("pool2", "avg_pool2d"),
        Layer("flatten", "flatten"),
        _dense("dense1", 400, 120),
        Layer("tanh3", "tanh"),
        _dense("dense2", 120, 84),
        Layer("tanh4", "tanh"),
        _dense("dense3", 84, 10),
    ),
    loss="softmax_cross_entropy",
    classes=10,
    source="course note 003 (EE655 lecture 9): LeNet-5, conv 5x5x6, pool, conv 5x5x16, pool, FC 120, 84, 10",
)

NETWORKS: dict[str, Network] = {n.name: n for n in (TOY_CNN, TWO_CONV, LENET5)}


def required_functions(net: Network) -> list[str]:
    """Every contract function the network needs, in first-use order."""
    out: list[str] = []
    for op_name in [*(layer.op for layer in net.layers), net.loss]:
        for fn in OPERATIONS[op_name].functions:
            if fn not in out:
                out.append(fn)
    return out


ALL_NETWORKS = "networks"
"""The ``--ops`` word that selects every network check."""


def selection(names: list[str] | tuple[str, ...]) -> list[str]:
    """What a ``--ops`` list selects: operation and network names, as checks are keyed.

    Nothing listed: every operation and every network. ``networks`` stands for
    every network; an operation's name selects that operation's checks only
    (not the networks that use it). Raises ``UsageError`` naming the unknown ones.
    """
    if not names:
        return [*OPERATIONS, *NETWORKS]
    unknown = [n for n in names if n not in OPERATIONS and n not in NETWORKS and n != ALL_NETWORKS]
    if unknown:
        raise UsageError(
            f"--ops: unknown operation(s) {', '.join(unknown)}; choose from {', '.join(OPERATIONS)}, "
            f"'{ALL_NETWORKS}' or a network ({', '.join(NETWORKS)})"
        )
    out: list[str] = []
    for n in names:
        out += list(NETWORKS) if n == ALL_NETWORKS else [n]
    return list(dict.fromkeys(out))
