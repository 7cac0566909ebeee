"""What every handler shares: the export-review operations on the state database and the enclave paths."""

from export_review.service import ExportService as WebContext

__all__ = ["WebContext"]
