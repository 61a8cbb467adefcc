"""The document as clients and stateful tests read it."""

from kit.testing import Harness


async def test_a_create_links_to_the_operations_of_the_item_it_made(sample: Harness) -> None:
    document = (await sample.client().get("/openapi.json")).json()
    links = document["paths"]["/api/v1/widgets"]["post"]["responses"]["201"]["links"]
    targets = {link["operationRef"]: link["parameters"] for link in links.values()}
    assert set(targets) == {
        "#/paths/~1api~1v1~1widgets~1{widget_id}/get",
        "#/paths/~1api~1v1~1widgets~1{widget_id}/patch",
    }
    for parameters in targets.values():
        assert parameters["widget_id"] == "$response.body#/id"
