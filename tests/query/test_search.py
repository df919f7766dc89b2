"""The catalog search on both backends: by text (id, name or namespace), exact namespace and facet
value, with a total that agrees with the pages, confined to the reader's namespaces."""

from __future__ import annotations

import pytest

from helpers import Chain
from opslineage.governance import AccessDenied
from opslineage.query import Principal, Reader
from opslineage.store import FACET_WINDOW, NodeQuery, Store


def _admin(store: Store) -> Reader:
    return Reader(store, Principal.local_admin())


def test_a_namespace_search_finds_exactly_the_nodes_of_that_namespace(store: Store, chain: Chain) -> None:
    everything = store.find_nodes(limit=1000)
    expected = [node.id for node in everything if node.namespace == "test.ns"]
    page = _admin(store).page(namespace="test.ns", limit=1000)
    assert [node.id for node in page.nodes] == expected and page.total == len(expected) > 10
    assert _admin(store).page(namespace="test").total == 0  # exact, not a prefix
    assert store.count_nodes(NodeQuery(namespace="test.ns"), limit=1000) == len(expected)
    assert store.count_nodes(NodeQuery(namespace="test.ns"), limit=3) == 3  # a count is bounded


def test_text_matches_the_namespace_as_well_as_the_id_and_name(store: Store, chain: Chain) -> None:
    by_text = _admin(store).page(text="test.n", limit=1000)
    assert {node.namespace for node in by_text.nodes} == {"test.ns"}
    assert by_text.total == _admin(store).page(namespace="test.ns").total
    named = _admin(store).page("policy", text="cpu-gu")
    assert [node.id for node in named.nodes] == ["policy:cpu-guard@1"] and named.total == 1


def test_a_facet_value_finds_the_nodes_whose_payload_holds_it(store: Store, chain: Chain) -> None:
    reader = _admin(store)
    model = reader.page("model", facet="robust-z")
    assert [node.id for node in model.nodes] == ["model:detector@1"] and model.total == 1
    policies = reader.page("policy", facet="cpu_mean > {cpu_mean}")
    assert [node.name for node in policies.nodes] == ["cpu-guard"]
    snapshots = reader.page("snapshot", facet=chain.snapshots[1].id.removeprefix("entity:"))
    assert chain.snapshots[1].id in {node.id for node in snapshots.nodes}
    assert reader.page(facet="no value like this anywhere").total == 0
    assert 0 < reader.page(facet="cpu").total <= reader.page().total
    assert FACET_WINDOW >= 1000


def test_pages_of_a_search_share_one_total(store: Store, chain: Chain) -> None:
    reader = _admin(store)
    first = reader.page("snapshot", limit=2)
    second = reader.page("snapshot", limit=2, offset=2)
    assert (first.total, second.total) == (3, 3)
    assert len(first.nodes) == 2 and len(second.nodes) == 1 and second.next_offset is None
    assert first.to_dict()["total"] == 3 and first.to_dict()["total_capped"] is False
    assert reader.page("snapshot", limit=2, offset=10).total == 3  # past the end, still counted


def test_a_confined_reader_counts_only_its_namespaces_and_cannot_search_facets(
    store: Store, chain: Chain
) -> None:
    elsewhere = Reader(store, Principal.token("elsewhere", "auditor", frozenset({"other.ns"})))
    unnamed = [node.id for node in store.find_nodes(limit=1000) if node.namespace is None]
    page = elsewhere.page(limit=1000)
    assert [node.id for node in page.nodes] == unnamed and page.total == len(unnamed)
    assert elsewhere.page(namespace="test.ns").total == 0
    with pytest.raises(AccessDenied, match="every namespace"):
        elsewhere.page(facet="robust-z")
