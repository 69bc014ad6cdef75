"""Hypothesis runs without per-example deadlines: a time limit per example is a timed
assertion, and on a busy machine it fails tests whose logic is right.

``RUMOR_HYPOTHESIS=ci`` (set by ``.ci/run``) also derandomizes the examples: CI
judges a change by the same examples every run, while local runs keep drawing new
ones (and remember what they found in ``.hypothesis/``)."""

import os

from hypothesis import settings

settings.register_profile("rumor", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("RUMOR_HYPOTHESIS") == "ci" else "rumor")
