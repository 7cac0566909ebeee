"""A hub service listens on one address, never a wildcard (issue 13, item 2)."""

from __future__ import annotations

import pytest

from enclave.gateway.app import GatewayApp
from export_review.web.app import ExportReviewApp


@pytest.mark.parametrize("app", [GatewayApp, ExportReviewApp])
def test_services_refuse_to_listen_on_every_interface(app: type) -> None:
    for wildcard in ("0.0.0.0", "::", "[::]"):
        with pytest.raises(ValueError, match="every interface"):
            app(ip=wildcard)
    for not_one_address in ("", "localhost", "*"):
        with pytest.raises(ValueError, match="not an IP address"):
            app(ip=not_one_address)
    assert app().ip == "127.0.0.1"
    assert app(ip="[::1]").ip == "::1"
