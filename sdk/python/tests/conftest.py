from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers import Gateway, S3, Upstream  # noqa: E402


@dataclass
class World:
    gateway: Gateway
    upstream: Upstream
    agent: str
    key: str

    def secret(self, name: str, type_: str, credential: dict, config: dict | None = None, **extra) -> str:
        config = dict(config or {})
        config.setdefault("base_url", self.upstream.url)
        body = {"name": name, "type": type_, "credential": credential, "config": config,
                "allow_private_destinations": True, "allow_insecure_http": True, **extra}
        return self.gateway.secret(body)

    def grant(self, secret: str, policy: dict | None = None) -> str:
        return self.gateway.grant(secret, self.agent, policy)


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    gateway = Gateway("--upstream-first-byte-timeout", "2", "--max-body-bytes", str(8 << 20))
    upstream = Upstream()
    agent = gateway.principal("python-app")
    yield World(gateway, upstream, agent, gateway.key(agent))
    upstream.close()
    gateway.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    server = S3("AKIDPYTHONTEST", "python/secret+KEY")
    yield server
    server.close()
