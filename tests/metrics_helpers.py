"""Reading /metrics in tests."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """GET /metrics (no credentials) and return {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    """The value of one sample (0 when absent: a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name: str, **labels) -> float:
    """Sum of every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))
