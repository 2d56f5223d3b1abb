"""Which integration an outbound call goes to, from the host it is sent to.

Spans are named after the integration ("openai", "pinecone"), never the URL: URLs carry ids and
query strings, and every distinct name costs a live aggregate, a rollup row and a metric label.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_HOSTS: Mapping[str, str] = {
    "api.openai.com": "openai",
    "*.openai.azure.com": "azure-openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "aiplatform.googleapis.com": "vertex-ai",
    "api.mistral.ai": "mistral",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "xai",
    "api.perplexity.ai": "perplexity",
    "openrouter.ai": "openrouter",
    "api.replicate.com": "replicate",
    "api-inference.huggingface.co": "huggingface",
    "router.huggingface.co": "huggingface",
    "api.stability.ai": "stability",
    "api.voyageai.com": "voyage",
    "api.elevenlabs.io": "elevenlabs",
    "api.deepgram.com": "deepgram",
    "api.assemblyai.com": "assemblyai",
    "api.d-id.com": "d-id",
    "api.heygen.com": "heygen",
    "*.pinecone.io": "pinecone",
    "*.weaviate.cloud": "weaviate",
    "*.qdrant.io": "qdrant",
}
"""Hosts of common AI services. ``*.domain`` matches every subdomain of ``domain``."""

NAME_LIMIT = 64
CACHE_LIMIT = 1_024


class HostMap:
    """Maps a host to an integration name; later mappings override earlier ones.

    A host nobody mapped is named after itself, cut to :data:`NAME_LIMIT` characters, so calls
    to an unknown API are still grouped by service rather than dropped.
    """

    def __init__(self, *mappings: Mapping[str, str]) -> None:
        self._exact: dict[str, str] = {}
        self._suffixes: dict[str, str] = {}
        for mapping in (DEFAULT_HOSTS, *mappings):
            for given, name in mapping.items():
                pattern = given.strip().lower()
                if pattern.startswith("*."):
                    self._suffixes[pattern[2:]] = name
                else:
                    self._exact[pattern] = name
        self._cache: dict[str, str | None] = {}

    def name_for(self, host: str) -> str:
        """The integration ``host`` belongs to, or the host itself when nobody mapped it."""
        return self.lookup(host) or host.lower()[:NAME_LIMIT] or "unknown"

    def lookup(self, host: str) -> str | None:
        """The integration ``host`` is mapped to, if any."""
        try:
            return self._cache[host]
        except KeyError:
            pass
        name = self._resolve(host.lower().rstrip("."))
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = name
        return name

    def _resolve(self, host: str) -> str | None:
        exact = self._exact.get(host)
        if exact is not None:
            return exact
        domain = host
        while "." in domain:
            domain = domain.split(".", 1)[1]
            suffix = self._suffixes.get(domain)
            if suffix is not None:
                return suffix
        return None
