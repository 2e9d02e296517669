"""Workflows that cross the stages: submitting a method, verifying records, timing the engines and testing
that a fast engine keeps accuracy."""
