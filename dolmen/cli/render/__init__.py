"""Renderers: histories, analytics reports and traces as text lines, and as PNG charts.

Each takes what storage read (rows, events, a report, a ``Trace``) and returns lines or
writes a file; none of them reads the database or prints.
"""
