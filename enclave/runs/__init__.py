"""Batch runs (issue 12, ARCHITECTURE §6): an analyst's notebook executed with papermill, with
parameters, in a fresh workspace container under the same lock-down and the analyst's gateway
identity. The run record (notebook hash, parameters, image digest, data version, queries, output
hashes) is the provenance of an export, and the export review reruns it to check the results.

``states`` (the state machine), ``notebooks`` (what a notebook and its parameters may be),
``tokens`` (a run's gateway identity), ``service`` (submit, list, cancel, templates), ``queue`` and
``worker`` (claiming and executing runs), ``compare`` (the reproducibility comparison).
"""
