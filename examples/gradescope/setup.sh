#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (as root, with the autograder
# zip unpacked in /autograder/source). It installs convcheck with the versions it was tested
# against (constraints.txt, copied from convcheck's repository into the zip), so every
# submission is graded by the same code. torch is pinned exactly there: a looser requirement
# pulls its CUDA build, several GB.
#
# CONVCHECK_PACKAGE names what to install: convcheck from the package index [the default], or
# a wheel you put in the zip, e.g. CONVCHECK_PACKAGE=/autograder/source/convcheck-1.0-py3-none-any.whl
set -euo pipefail

source_dir="${AUTOGRADER_SOURCE:-/autograder/source}"
package="${CONVCHECK_PACKAGE:-convcheck}"

apt-get update
apt-get install -y python3 python3-pip python3-venv
python3 -m venv /opt/convcheck
/opt/convcheck/bin/python -m pip install --disable-pip-version-check -c "$source_dir/constraints.txt" "$package" nbformat
ln -sf /opt/convcheck/bin/convcheck /usr/local/bin/convcheck
convcheck --help > /dev/null   # fail the image build now, not on the first submission
