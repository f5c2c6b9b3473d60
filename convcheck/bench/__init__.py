"""``convcheck bench``: time an implementation against PyTorch on real network layers.

One module per idea: ``corpus`` (load and validate the shape sets), ``flops``
(operation counts), ``stats`` and ``timing`` (measurement), ``threads``
(thread counts), ``memory`` (the memory guard), ``baseline`` (PyTorch's own
functions), ``correctness`` (the check against the oracle), ``runner`` (one
entry end to end), ``record`` (bench.json's section, built and read back),
``rows`` (its tables as rows of text), ``markdown`` (bench.md), ``html``
(bench.html, from jinja2 templates), ``plots`` (the figures), ``output``
(writing the report files), ``console`` (tables and progress bar),
``diff`` (timing regressions between two runs), ``overhead`` (the harness
against ``torch.utils.benchmark``) and ``cli`` (the subcommand).
"""
