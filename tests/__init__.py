"""Enclave's tests: unit and integration tests mirror the code folders; harness/, e2e/ and soak/ serve all."""
