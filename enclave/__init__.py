"""Enclave: a secure data enclave (trusted research environment) for health data."""

__version__ = "0.1.0"
