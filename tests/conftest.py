"""Hypothesis runs without per-example deadlines: a time limit per example is a timed
assertion, and on a busy machine it fails tests whose logic is right."""

from hypothesis import settings

settings.register_profile("rumor", deadline=None)
settings.load_profile("rumor")
