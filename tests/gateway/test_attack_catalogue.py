"""SECURITY.md's attack catalogue for the gateway, run as written: every command of the section, in order,
in bash against a real gateway started with the settings the section names, and its output compared with
the text the section says it returns. The document cannot drift from the gateway."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from gateway.credentials import Credentials
from infra.settings import KafkaSettings
from tests.gateway.live import gateway_settings, running_gateway

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Gateway (chargers' side)"
_BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def catalogue() -> tuple[str, list[tuple[str, str]]]:
    """The preamble (shell) and the (command, expected output) pairs of the gateway's catalogue section."""
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    section = text.split("## Attack catalogue", 1)[1].split(SECTION, 1)[1]
    section = re.split(r"^##+ ", section, maxsplit=1, flags=re.MULTILINE)[0]
    blocks = [(kind, indent_strip(indent, body)) for indent, kind, body in _BLOCK.findall(section)]
    assert blocks and blocks[0][0] == "sh", "the section starts with the shell preamble"
    pairs = list(zip(blocks[1::2], blocks[2::2]))
    assert all(c[0] == "sh" and r[0] == "text" for c, r in pairs), "each command block is followed by its output"
    return blocks[0][1], [(c[1], r[1]) for c, r in pairs]


def indent_strip(indent: str, body: str) -> str:
    """A block's lines without the indentation of its list item (output keeps its own leading blanks)."""
    return "\n".join(line[len(indent):] if line.startswith(indent) else line for line in body.splitlines()) + "\n"


def test_the_catalogue_is_well_formed() -> None:
    preamble, steps = catalogue()
    assert "OCPP_GATEWAY_SECURITY_PROFILE=1" in preamble and len(steps) >= 8


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="the catalogue is curl in bash")
def test_every_attack_returns_what_security_md_says(kafka_settings: KafkaSettings, unique: str, tmp_path: Path) -> None:
    preamble, steps = catalogue()
    right = re.search(r"RIGHT_PASSWORD=(\S+)", preamble).group(1)
    for charge_point in ("CP-1", "CP-2"):
        Credentials.set_entry(tmp_path / "creds.json", charge_point, right)
    named = dict(re.findall(r"(OCPP_GATEWAY_\w+)=(\S*)", preamble))
    overrides = {name.removeprefix("OCPP_GATEWAY_").lower(): value for name, value in named.items()}
    overrides["credentials_file"] = tmp_path / "creds.json"
    settings = gateway_settings(**overrides)

    async def run() -> list[tuple[str, str, str]]:
        async with running_gateway(settings, kafka_settings, f"test.catalogue.{unique}") as gateway:
            ours = f"GW=127.0.0.1:{gateway.port} ADMIN=127.0.0.1:{gateway.admin_port} RIGHT_PASSWORD={right}\n"
            results = []
            for command, expected in steps:
                shell = await asyncio.create_subprocess_exec(
                    "bash", "-c", preamble + ours + "exec 2>&1\n" + command, cwd=ROOT,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(shell.communicate(), 120)
                results.append((command, expected, out.decode()))
            return results

    def shown(text: str) -> str:  # as a reader sees it: trailing blanks are invisible in Markdown
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    wrong = [f"{command}returned:\n{output}SECURITY.md says:\n{expected}"
             for command, expected, output in asyncio.run(run()) if shown(output) != shown(expected)]
    assert not wrong, "\n\n".join(wrong)
