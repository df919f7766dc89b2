"""docs/operations.md: the service recipes it gives run commands that exist, and check routes that exist.

No container engine runs on the test machines, so the Containerfile is not built here; what can
be checked without one is that every ``opslineage`` command in the systemd units and the recipe
parses with the real CLI, and that the health checks name the server's real routes.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from opslineage.cli.main import build_parser
from opslineage.server import ServerSettings, create_app

DOC = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def _commands() -> list[list[str]]:
    """Every opslineage command line of the units and the recipe, without the program name."""
    found = []
    for unit in _blocks("ini"):
        for line in re.findall(r"^ExecStart=\S*opslineage (.*)$", unit, flags=re.MULTILINE):
            found.append(shlex.split(line))
    (recipe,) = _blocks("dockerfile")
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", recipe, flags=re.MULTILINE)[1])  # type: ignore[index]
    assert entry == ["opslineage"]
    found.append(json.loads(re.search(r"^CMD (.*)$", recipe, flags=re.MULTILINE)[1]))  # type: ignore[index]
    for line in re.findall(r"`podman run [^`]*? opslineage( [^`]*)?`", DOC.replace("\n", " ")):
        if line:
            found.append(shlex.split(line))
    return found


def test_every_service_command_parses_with_the_real_cli() -> None:
    commands = _commands()
    assert {command[0] for command in commands} == {"serve", "worker"}
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command)
        assert callable(args.run), command


def test_health_checks_name_real_routes(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=f"sqlite:///{tmp_path / 's.db'}"))
    routes = {getattr(route, "path", None) for route in app.routes}
    (recipe,) = _blocks("dockerfile")
    checked = re.findall(r"http://127\.0\.0\.1:5000(/\w+)", recipe)
    assert checked == ["/readyz"] and set(checked) <= routes
    assert {"/healthz", "/readyz"} <= routes
    assert "EXPOSE 5000" in recipe and "USER opslineage" in recipe
