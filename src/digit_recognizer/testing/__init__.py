"""Helpers for tests and benchmarks only (synthetic images on paper, a server on a free local port).

Nothing in the library imports them.
"""
