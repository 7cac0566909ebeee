"""Prepared data in the vault: a project's secrets, de-identified views, synthetic twin, certificate and
destruction."""
