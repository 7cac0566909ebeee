"""The export-review service: automated disclosure checks, committee votes, signed release."""
