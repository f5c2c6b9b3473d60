"""Conformance reports: report.json (versioned schema), report.md, report.html, reproduction scripts.

One module per idea: ``model`` builds the JSON document from the pytest
plug-in's per-test results (environment, records per check and dtype,
coverage, summary); ``writer`` keeps a report folder up to date while the run
goes (an atomic rewrite of report.json after every finished check) and renders
the rest at the end; ``matrix`` derives the conformance matrix (operations x
features); ``plots`` draws the figures; ``markdown`` and ``html`` render;
``repro`` writes standalone reproduction scripts; ``templating`` loads the
jinja2 templates of every HTML page and of the scripts; ``bench`` embeds a
benchmark run found in the folder; ``diff`` compares two reports;
``scoreboard`` puts several side by side; ``cli`` holds ``convcheck report``.

The JSON Schema of report.json is ``convcheck/spec/report.schema.json``.
"""

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPRO_DIR = "repro"
JUNIT_XML = "junit.xml"
