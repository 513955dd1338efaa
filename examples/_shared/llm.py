"""A pluggable language-model client for the examples.

When ``FLOWCRAFT_LLM_BASE_URL`` is set, :func:`default_client` talks to any
OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, a local llama.cpp / vLLM /
Ollama server, ...) with ``FLOWCRAFT_LLM_API_KEY`` and ``FLOWCRAFT_LLM_MODEL``. Otherwise
it returns :class:`LocalClient`, a deterministic stand-in that runs offline: every call
site passes a ``local`` function computing a plain, rule-based answer, and the client's
``name`` says which one is in use so the examples print it.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Protocol


class LLMClient(Protocol):
    """What the examples' language-model steps call."""

    name: str

    async def complete(self, prompt: str, *, system: str | None = None, local: Callable[[], str]) -> str:
        """The model's answer to ``prompt``; ``local`` computes the offline stand-in."""
        ...


class LLMError(RuntimeError):
    """The configured endpoint could not be reached or answered with an error."""


class LocalClient:
    """Deterministic and offline: returns ``local()`` for every prompt."""

    name = "local deterministic stand-in (set FLOWCRAFT_LLM_BASE_URL to use a real model)"

    async def complete(self, prompt: str, *, system: str | None = None, local: Callable[[], str]) -> str:
        """Return the rule-based answer computed by ``local``."""
        return local()


class OpenAICompatibleClient:
    """Calls ``POST {base_url}/chat/completions`` with the standard library only."""

    def __init__(self, base_url: str, api_key: str | None, model: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self.name = f"{model} at {self.base_url}"

    async def complete(self, prompt: str, *, system: str | None = None, local: Callable[[], str]) -> str:
        """Ask the endpoint (in a thread, so the event loop keeps running other nodes)."""
        return await asyncio.to_thread(self._post, prompt, system)

    def _post(self, prompt: str, system: str | None) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as error:
            raise LLMError(f"LLM endpoint {self.base_url} failed: {error}") from error
        try:
            return str(payload["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as error:
            raise LLMError(f"LLM endpoint {self.base_url} returned an unexpected body: {payload!r:.200}") from error


def default_client() -> LLMClient:
    """The endpoint configured by ``FLOWCRAFT_LLM_*`` variables, else :class:`LocalClient`."""
    base_url = os.environ.get("FLOWCRAFT_LLM_BASE_URL")
    if not base_url:
        return LocalClient()
    return OpenAICompatibleClient(
        base_url, os.environ.get("FLOWCRAFT_LLM_API_KEY"), os.environ.get("FLOWCRAFT_LLM_MODEL", "gpt-4o-mini")
    )
