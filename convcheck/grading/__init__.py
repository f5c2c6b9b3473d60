"""Batch grading: ``convcheck grade SUBMISSIONS_DIR --report OUT``.

Every submission (a ``.py`` file, a notebook or a folder) is checked in its own
``convcheck run`` subprocess, in parallel, and scored with a rubric. The
pieces, one idea per module:

``discover``
    which entries of the submissions folder are students, and each one's entry module;
``properties``
    which (operation, property) groups the suite checks, read from its test modules;
``rubric``
    the rubric file: its format, defaults and validation (``default_rubric.toml``);
``scoring``
    a run's results turned into group verdicts and a 0-100 score;
``outcome``
    one student's verdict from the child's exit status, results and output;
``runner``
    the child command and running it under a wall-clock limit, killing its process group;
``store``
    the link to the results database (``convcheck.results_db``): each finished submission
    recorded, ``--resume``'s skipping, the verdicts the summary is made from;
``submission``
    one submission graded into one folder: its child, its verdict, its files;
``batch``
    the thread pool that grades many submissions at once, and stopping it on Ctrl-C;
``interrupts``
    ignoring a second Ctrl-C while a stopped run writes what finished;
``cluster``
    where the submissions run: the thread pool, a Dask LocalCluster, or a running Dask cluster;
``dask_batch``
    grading on a Dask cluster: a task per submission, results streamed back, faults recorded;
``units``
    a submission on a cluster as a retryable unit: a folder per try, published whole;
``summary``
    the class summary, ``summary.csv`` and ``summary.html``;
``feedback``
    each student's ``feedback.md``: what failed, the smallest input, the hint, the replay;
``gradescope``
    each student's ``results.json`` in Gradescope's autograder format (``--format gradescope``);
``atomic``
    writing a file so that readers see the old or the new version, never half of one;
``progress``
    progress on the terminal and the final table;
``cli``
    the ``grade`` subcommand tying them together.
"""
