#!/usr/bin/env bash
# Wheels for what the harness needs beyond the GPU machines' image (Python 3.12 with torch, numpy,
# scipy, scikit-learn, rich, typer, matplotlib, pytest, pytest-benchmark already there), into .whl
# here. The lent machine has no network: carry .whl and install with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
set -eu
DEST="${1:-.whl}"
mkdir -p "$DEST"
pure=(fvcore==0.1.5.post20221221 iopath==0.1.10 yacs==0.1.8 termcolor==3.3.0 torch-pruning==1.6.1
      pydantic==2.13.4 annotated-types==0.7.0 typing-inspection==0.4.2
      optuna==5.0.0 alembic==1.20.1 colorlog==6.12.0 mako==1.4.3)
compiled=(pydantic-core==2.46.4 sqlalchemy==2.1.9 greenlet)
python3 -m pip wheel -q --no-deps -w "$DEST" "${pure[@]}"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" "${compiled[@]}"
ls "$DEST"
