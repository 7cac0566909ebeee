"""``enclave console``: run the steward console (JupyterHub starts it as the managed service ``console``)."""

from __future__ import annotations

from typing import Annotated

import typer

from enclave.cli.common import command_errors, get_context

NAME = "console"
app = typer.Typer(
    help="The steward console: applications, reviews, agreements, projects. / 数据治理控制台。",
    no_args_is_help=True,
)


@app.command("serve")
@command_errors
def serve(
    ctx: typer.Context,
    ip: Annotated[str, typer.Option("--ip", help="Address to listen on (keep it internal).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8767,
) -> None:
    """Run the steward console web UI as a JupyterHub service (HubOAuth).

    The hub's service settings come from the environment JupyterHub sets for a service.
    """
    from enclave.console.app import ConsoleApp

    enclave = get_context(ctx)
    service = ConsoleApp(ip=ip, port=port, enclave_home=str(enclave.home), database_url=enclave.database_url)
    service.start()
