"""``convcheck bench``: time an implementation against PyTorch on real network layers.

One module per idea: ``corpus`` (load and validate the shape sets), ``flops``
(operation counts), ``stats`` and ``timing`` (measurement), ``threads``
(thread counts), ``memory`` (the memory guard), ``baseline`` (PyTorch's own
functions), ``correctness`` (the check against the oracle), ``runner`` (one
entry end to end), ``output`` (bench.json and bench.md), ``console`` (table
and progress bar), ``plots`` and ``html`` (figures and the HTML page),
``diff`` (timing regressions between two runs), ``overhead`` (the harness
against ``torch.utils.benchmark``) and ``cli`` (the subcommand).
"""
